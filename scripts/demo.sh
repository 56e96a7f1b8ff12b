#!/usr/bin/env bash
# hoist's main job end to end, on a bare machine, on its embedded defaults:
# build examples/hello once with hoist's embedded BuildKit engine into a
# tarball (build-only), then push that tarball to two registries in one
# push-only run, print the per-destination summary, and pull the image back
# from the second registry and run it; then run the mission's build / scan /
# push pipeline YAML with hoist pipeline run --local. Everything it starts,
# it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
. scripts/dockerd.sh
. scripts/registry.sh
work=$(mktemp -d /tmp/hoist-demo.XXXXXX)
cleanup() { stop_registries; stop_dockerd; rm -rf "$work"; }
trap cleanup EXIT
hoist=bin/hoist

echo "== 1. two registries"
p1=$(free_port 5100); start_registry "$work/reg1" "$p1"
p2=$(free_port $((p1 + 1))); start_registry "$work/reg2" "$p2"
A=127.0.0.1:$p1 B=127.0.0.1:$p2
echo "registry A: $A, registry B: $B"

echo "== 2. a base image: a static busybox in an OCI layout made by umoci, pushed with hoist"
mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/"
for a in sh cat echo ls; do ln -sf busybox "$work/rootfs/bin/$a"; done
umoci init --layout "$work/base"
umoci new --image "$work/base:1"
umoci insert --image "$work/base:1" "$work/rootfs" / >/dev/null
umoci config --image "$work/base:1" --os linux --architecture amd64 --config.cmd /bin/sh
$hoist push --source-tar-path "$work/base" --destination "$A/demo/base:1" --progress quiet --daemon-off >/dev/null

echo "== 3. build examples/hello once, with the embedded engine, into a tarball (build-only)"
$hoist build --no-push --context examples/hello --build-args "BASE=$A/demo/base:1" \
  --repo "$A/demo/hello" --tags 1.0.0 --tar-path "$work/out/hello.tar" \
  --image-store "$work/.hoist/images" --progress plain --daemon-off
ls -l "$work/out/hello.tar"

echo "== 4. push that tarball to both registries in one run, as a CI plugin step would"
PLUGIN_PUSH_ONLY=true \
PLUGIN_SOURCE_TAR_PATH="$work/out/hello.tar" \
PLUGIN_REPO="$A/demo/hello" \
PLUGIN_TAGS="1.0.0,latest" \
PLUGIN_DESTINATIONS="$B/demo/hello:1.0.0" \
PLUGIN_DAEMON_OFF=true \
PLUGIN_PROGRESS=plain \
  $hoist

echo "== 5. pull it back from registry B and run it"
start_dockerd
docker run --rm --network host "$B/demo/hello:1.0.0"
docker rmi -f "$B/demo/hello:1.0.0" >/dev/null 2>&1 || true

echo "== 6. the mission's build / scan / push pipeline, run here against local registries"
# The document's "Build, Scan, and Push" (examples/pipelines): build-only
# into a tarball, the AquaTrivy step (hoist's gate, Trivy's secret scanner:
# there is no vulnerability database offline), then push-only to ECR and
# Docker Hub, each stood in for by a local registry hoist starts.
PLUGIN_SCAN_SCANNERS=secret $hoist pipeline run examples/pipelines/build-scan-push.yaml --local \
  --state "$work/state" --report "$work/report.json"
echo "demo: ok"
