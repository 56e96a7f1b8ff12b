#!/usr/bin/env bash
# hoist's main job end to end, on a bare machine: build an image once
# (examples/hello, with the Docker daemon's builder for now), keep it as a
# tarball, then push that tarball to two registries in one push-only run
# and print the per-destination summary. Everything it starts, it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
. scripts/dockerd.sh
. scripts/registry.sh
work=$(mktemp -d /tmp/hoist-demo.XXXXXX)
cleanup() { stop_registries; stop_dockerd; rm -rf "$work"; }
trap cleanup EXIT
start_dockerd

echo "== 1. a base image (static busybox; there is no Docker Hub here)"
mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/"
for a in sh cat echo ls; do ln -sf busybox "$work/rootfs/bin/$a"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
docker import "$work/rootfs.tar" hoist-demo/base:1 >/dev/null

echo "== 2. build examples/hello once and save it as a tarball"
DOCKER_BUILDKIT=0 docker build -q --network host -t hoist-demo/hello:1 examples/hello >/dev/null
docker save -o "$work/hello.tar" hoist-demo/hello:1
ls -l "$work/hello.tar"

echo "== 3. two registries"
p1=$(free_port 5100); start_registry "$work/reg1" "$p1"
p2=$(free_port $((p1 + 1))); start_registry "$work/reg2" "$p2"
echo "registry A: 127.0.0.1:$p1, registry B: 127.0.0.1:$p2"

echo "== 4. hoist: push the tarball to both registries in one run (as a CI plugin step would)"
PLUGIN_PUSH_ONLY=true \
PLUGIN_SOURCE_TAR_PATH="$work/hello.tar" \
PLUGIN_REPO="127.0.0.1:$p1/demo/hello" \
PLUGIN_TAGS="1.0.0,latest" \
PLUGIN_DESTINATIONS="127.0.0.1:$p2/demo/hello:1.0.0" \
PLUGIN_DAEMON_OFF=true \
PLUGIN_PROGRESS=plain \
  bin/hoist

echo "== 5. pull it back from registry B and run it"
docker run --rm --network host "127.0.0.1:$p2/demo/hello:1.0.0"
docker rmi -f "127.0.0.1:$p2/demo/hello:1.0.0" hoist-demo/hello:1 hoist-demo/base:1 >/dev/null 2>&1 || true
echo "demo: ok"
