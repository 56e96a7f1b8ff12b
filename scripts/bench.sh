#!/usr/bin/env bash
# Side-by-side push benchmark: hoist, crane (pinned go-containerregistry),
# skopeo and docker load + docker push, on the same images in one run.
# Usage: scripts/bench.sh [-sizes 32,512] [-runs 5]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/dockerd.sh
trap stop_dockerd EXIT
start_dockerd
scripts/images.sh bench >/dev/null   # hoist/kaniko:bench for the kaniko suite
mkdir -p bench/out
go run ./bench "$@" | tee bench/out/results.md
