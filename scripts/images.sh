#!/usr/bin/env bash
# Builds hoist's plugin images with hoist itself (its embedded BuildKit
# engine) and loads them into the Docker daemon:
#   hoist/kaniko:TAG    hoist + the static Kaniko executor, FROM scratch
#   hoist/buildkit:TAG  hoist + buildkitd + buildctl + runc, and the CNI
#                       plugins and iptables that give RUN steps a network
#                       of their own (with their C libraries); run with
#                       --entrypoint buildkitd it is also a BuildKit for
#                       docker-container:// builders
#   hoist/kaniko-scan:TAG, hoist/buildkit-scan:TAG
#                       the same plus the pinned Trivy, in one more layer
#                       (the scan gate; see docs/ci.md for why a variant)
# and writes bin/hoist-kaniko.tar and bin/hoist-buildkit.tar.
# Usage: scripts/images.sh [TAG]    (TAG defaults to dev)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-dev}
scripts/setup.sh >/dev/null
. scripts/dockerd.sh
work=$(mktemp -d)
trap 'rm -rf "$work"; stop_dockerd' EXIT
start_dockerd
CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/hoist-build/hoist/internal/cli.Version=$(git describe --always --dirty 2>/dev/null || echo dev)" -o "$work/hoist" ./cmd/hoist
certs=/etc/ssl/certs/ca-certificates.crt
# The tarballs go to bin's real path: bin may be a link out of the
# checkout (a worktree sharing another's tools), and hoist writes nothing
# through a link that leads out of its workspace.

# The Kaniko image.
k="$work/kaniko"; mkdir -p "$k"
cp "$work/hoist" bin/kaniko-executor images/kaniko/Dockerfile "$k/"
mv "$k/kaniko-executor" "$k/executor"
cp bin/kaniko-executor.version "$k/executor.version"
ln bin/trivy "$k/trivy" 2>/dev/null || cp bin/trivy "$k/trivy"
if [ -f "$certs" ]; then cp "$certs" "$k/"; else : > "$k/ca-certificates.crt"; fi
bin/hoist build --no-push --context "$k" --target plugin --repo hoist/kaniko --tags "$tag" --load \
  --tar-path "$(cd bin && pwd -P)/hoist-kaniko.tar" --image-store "$work/store" --progress plain
bin/hoist build --no-push --context "$k" --target scan --repo hoist/kaniko-scan --tags "$tag" --load \
  --image-store "$work/store" --progress plain

# The BuildKit image: buildkitd and runc with the libraries ldd names; the
# CNI plugins of BuildKit's bridge network (Debian's
# containernetworking-plugins, at the path hoist looks in first) and the
# iptables they run (xtables-nft-multi under its names, with the
# extensions it loads at run time).
b="$work/buildkit"; mkdir -p "$b/bin" "$b/lib" "$b/tmp" "$b/cni"
cp "$work/hoist" bin/buildkitd bin/buildctl "$b/bin/"
cp "$(command -v runc)" "$b/bin/runc"
cni=(/usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback /usr/lib/cni/firewall)
cp "${cni[@]}" "$b/cni/"
xt=$(readlink -f "$(command -v iptables)")
cp "$xt" "$b/bin/"
for n in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -s "$(basename "$xt")" "$b/bin/$n"
done
xtdir=$(ls -d /usr/lib/*/xtables | head -n 1)
mkdir -p "$b/lib$xtdir"
cp "$xtdir"/*.so "$b/lib$xtdir/"
for lib in $(ldd bin/buildkitd bin/buildctl "$(command -v runc)" "${cni[@]}" "$xt" "$xtdir"/*.so | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | sort -u); do
  mkdir -p "$b/lib$(dirname "$lib")"
  cp -L "$lib" "$b/lib$lib"
done
: > "$b/tmp/.keep"
cp images/buildkit/Dockerfile "$b/"
ln bin/trivy "$b/trivy" 2>/dev/null || cp bin/trivy "$b/trivy"
if [ -f "$certs" ]; then cp "$certs" "$b/"; else : > "$b/ca-certificates.crt"; fi
bin/hoist build --no-push --context "$b" --target plugin --repo hoist/buildkit --tags "$tag" --load \
  --tar-path "$(cd bin && pwd -P)/hoist-buildkit.tar" --image-store "$work/store" --progress plain
bin/hoist build --no-push --context "$b" --target scan --repo hoist/buildkit-scan --tags "$tag" --load \
  --image-store "$work/store" --progress plain

echo "images: hoist/kaniko:$tag, hoist/buildkit:$tag and their -scan variants loaded; bin/hoist-kaniko.tar, bin/hoist-buildkit.tar written"
