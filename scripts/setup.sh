#!/usr/bin/env bash
# Installs what hoist's tests, demo and benchmarks need on a bare Debian 12
# machine, and nothing that is already there. Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have dockerd         || need_pkgs+=(docker.io)
have docker-registry || need_pkgs+=(docker-registry)
have skopeo          || need_pkgs+=(skopeo)
have umoci           || need_pkgs+=(umoci)
have htpasswd        || need_pkgs+=(apache2-utils)
have runc            || need_pkgs+=(runc)
[ -x /bin/busybox ]  || need_pkgs+=(busybox-static)
[ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || need_pkgs+=(qemu-user-static)
arm_busybox=/usr/local/lib/hoist-test/busybox.arm64

if [ ${#need_pkgs[@]} -gt 0 ] || [ ! -x "$arm_busybox" ]; then
  echo "setup: installing ${need_pkgs[*]:-} (and an arm64 busybox)"
  dpkg --add-architecture arm64
  apt-get update -qq
  if [ ${#need_pkgs[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  fi
fi

if [ ! -x "$arm_busybox" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq busybox-static:arm64 >/dev/null && dpkg-deb -x busybox-static_*_arm64.deb x)
  mkdir -p "$(dirname "$arm_busybox")"
  install -m 0755 "$tmp/x/bin/busybox" "$arm_busybox"
  rm -rf "$tmp"
fi

# Run arm64 binaries through qemu (for multi-platform images).
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
fi
if [ -e /proc/sys/fs/binfmt_misc/register ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register 2>/dev/null || true
fi

# Pinned Go tools, built from the versions in go.mod (tool directives).
mkdir -p bin
if [ ! -x bin/crane ]; then
  echo "setup: building crane (pinned go-containerregistry) into bin/"
  go build -o bin/crane github.com/google/go-containerregistry/cmd/crane
fi
if [ ! -x bin/buildkitd ] || [ ! -x bin/buildctl ]; then
  echo "setup: building buildkitd and buildctl (pinned github.com/moby/buildkit) into bin/"
  go build -o bin/ github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl
fi
if [ ! -x bin/kaniko-executor ]; then
  echo "setup: building the Kaniko executor (pinned in tools/kaniko) into bin/, statically"
  (cd tools/kaniko && CGO_ENABLED=0 go build -o ../../bin/kaniko-executor github.com/GoogleContainerTools/kaniko/cmd/executor)
fi
go build -o bin/hoist ./cmd/hoist
echo "setup: ok"
