#!/usr/bin/env bash
# Builds hoist's plugin images with hoist itself (its embedded BuildKit
# engine) and loads them into the Docker daemon:
#   hoist/kaniko:dev   hoist + the static Kaniko executor, FROM scratch
# Usage: scripts/images.sh [TAG]   (also writes bin/hoist-kaniko.tar)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-dev}
scripts/setup.sh >/dev/null
. scripts/dockerd.sh
trap stop_dockerd EXIT
start_dockerd
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"; stop_dockerd' EXIT
CGO_ENABLED=0 go build -trimpath -o "$ctx/hoist" ./cmd/hoist
cp bin/kaniko-executor "$ctx/executor"
cp images/kaniko/Dockerfile "$ctx/Dockerfile"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then cp /etc/ssl/certs/ca-certificates.crt "$ctx/"; else : > "$ctx/ca-certificates.crt"; fi
bin/hoist build --no-push --context "$ctx" --repo hoist/kaniko --tags "$tag" --load \
  --tar-path bin/hoist-kaniko.tar --progress plain
echo "images: hoist/kaniko:$tag loaded; bin/hoist-kaniko.tar written"
