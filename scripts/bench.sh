#!/usr/bin/env bash
# Runs the benchmarks on a bare machine: installs and builds every tool
# they compare (scripts/setup.sh; the buildx CLI plugin pinned in
# tools/buildx; hoist's plugin images), starts a Docker daemon, then runs
# `go run ./bench "$@"`, and stops what it started.
# Usage: scripts/bench.sh run   [-sizes 32,512] [-runs 5] [-suites push,build,kaniko,cache]
#        scripts/bench.sh check [-runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
export HOIST_BENCH_COMMAND="${HOIST_BENCH_COMMAND:-scripts/bench.sh $*}"
scripts/setup.sh

# The buildx CLI plugin, at the version pinned in tools/buildx/go.mod,
# where the Docker CLI finds it: in a DOCKER_CONFIG of the benchmarks' own
# (the user's ~/.docker is left alone).
buildx_version=$(cd tools/buildx && go list -m -f '{{.Version}}' github.com/docker/buildx)
if ! bin/docker-buildx version 2>/dev/null | grep -q " $buildx_version "; then
  echo "bench: building the buildx CLI plugin $buildx_version (pinned in tools/buildx) into bin/"
  (cd tools/buildx && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-X github.com/docker/buildx/version.Version=$buildx_version" \
    -o ../../bin/docker-buildx github.com/docker/buildx/cmd/buildx)
fi
export DOCKER_CONFIG="$PWD/bin/docker-config"
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -sf "$PWD/bin/docker-buildx" "$DOCKER_CONFIG/cli-plugins/docker-buildx"

. scripts/dockerd.sh
trap stop_dockerd EXIT
start_dockerd
if ! docker buildx version >/dev/null; then
  echo "bench: the Docker CLI does not find the buildx plugin in $DOCKER_CONFIG/cli-plugins" >&2
  exit 1
fi
echo "bench: building hoist's plugin images (hoist/kaniko:bench, hoist/buildkit:bench)"
scripts/images.sh bench >/dev/null
go run ./bench "$@"
