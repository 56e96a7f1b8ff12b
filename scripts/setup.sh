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
# The bridge of RUN steps in hoist's embedded engine (and in its BuildKit
# image): the CNI plugins and the iptables they run.
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/firewall ] || need_pkgs+=(containernetworking-plugins)
have iptables        || need_pkgs+=(iptables)
# A network namespace with a veth pair: a registry at a non-loopback address.
have ip              || need_pkgs+=(iproute2)
have nsenter         || need_pkgs+=(util-linux)
[ -x /bin/busybox ]  || need_pkgs+=(busybox-static)
# GNU time: the benchmarks read each command's own peak RSS from it.
[ -x /usr/bin/time ] || need_pkgs+=(time)
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

# Pinned Go tools, built from the versions in go.mod (tool directives) and
# tools/kaniko/go.mod (and the others under tools/), each stamped with its version; rebuilt when a pin
# changes.
mkdir -p bin
pinned() { (cd "${2:-.}" && go list -m -f '{{.Version}}' "$1"); }
crane_version=$(pinned github.com/google/go-containerregistry)
if ! bin/crane version 2>/dev/null | grep -qx "$crane_version"; then
  echo "setup: building crane $crane_version (pinned go-containerregistry) into bin/"
  go build -o bin/crane github.com/google/go-containerregistry/cmd/crane
fi
bk_version=$(pinned github.com/moby/buildkit)
if ! bin/buildkitd --version 2>/dev/null | grep -q " $bk_version" || [ ! -x bin/buildctl ]; then
  echo "setup: building buildkitd and buildctl $bk_version (pinned github.com/moby/buildkit) into bin/"
  go build -ldflags "-X github.com/moby/buildkit/version.Version=$bk_version" -o bin/ \
    github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl
fi
kaniko_version=$(pinned github.com/GoogleContainerTools/kaniko tools/kaniko)
if [ ! -x bin/kaniko-executor ] || [ "$(cat bin/kaniko-executor.version 2>/dev/null)" != "$kaniko_version" ]; then
  echo "setup: building the Kaniko executor $kaniko_version (pinned in tools/kaniko) into bin/, statically"
  (cd tools/kaniko && CGO_ENABLED=0 go build \
    -ldflags "-X github.com/GoogleContainerTools/kaniko/pkg/version.version=$kaniko_version" \
    -o ../../bin/kaniko-executor github.com/GoogleContainerTools/kaniko/cmd/executor)
  echo "$kaniko_version" > bin/kaniko-executor.version
fi
trivy_version=$(pinned github.com/aquasecurity/trivy tools/trivy)
if [ ! -x bin/trivy ] || [ "$(cat bin/trivy.version 2>/dev/null)" != "$trivy_version" ]; then
  echo "setup: building Trivy $trivy_version (pinned in tools/trivy) into bin/, statically (about 6 minutes)"
  (cd tools/trivy && GOEXPERIMENT=jsonv2 CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=${trivy_version#v}" \
    -o ../../bin/trivy github.com/aquasecurity/trivy/cmd/trivy)
  echo "$trivy_version" > bin/trivy.version
fi
cosign_version=$(pinned github.com/sigstore/cosign/v3 tools/cosign)
if [ ! -x bin/cosign ] || [ "$(cat bin/cosign.version 2>/dev/null)" != "$cosign_version" ]; then
  echo "setup: building cosign $cosign_version (pinned in tools/cosign) into bin/, for the signing tests (about 3.5 minutes)"
  (cd tools/cosign && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$cosign_version" \
    -o ../../bin/cosign github.com/sigstore/cosign/v3/cmd/cosign)
  echo "$cosign_version" > bin/cosign.version
fi
# Drone's docker runner, the real CI runner the drone tests run the plugin
# images with (pinned in tools/drone-runner/VERSION). Its go.mod replaces
# github.com/docker/docker, which holds only inside its own module: build in
# a writable copy of the downloaded module, not with go install.
runner_version=$(tr -d '[:space:]' < tools/drone-runner/VERSION)
if [ ! -x bin/drone-runner-docker ] || [ "$(cat bin/drone-runner-docker.version 2>/dev/null)" != "$runner_version" ]; then
  echo "setup: building Drone's docker runner $runner_version (pinned in tools/drone-runner/VERSION) into bin/"
  runner_mod=github.com/drone-runners/drone-runner-docker@$runner_version
  runner_dir=$(go mod download -json "$runner_mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$runner_dir" ] || { echo "setup: go mod download $runner_mod printed no directory" >&2; exit 1; }
  runner_tmp=$(mktemp -d)
  cp -r "$runner_dir" "$runner_tmp/src"
  chmod -R u+w "$runner_tmp/src"
  bin_dir=$(cd bin && pwd -P)
  (cd "$runner_tmp/src" && GOFLAGS=-mod=mod go build -o "$bin_dir/drone-runner-docker" .)
  rm -rf "$runner_tmp"
  echo "$runner_version" > bin/drone-runner-docker.version
fi
vgw_version=$(pinned github.com/versity/versitygw tools/versitygw)
if [ ! -x bin/versitygw ] || [ "$(cat bin/versitygw.version 2>/dev/null)" != "$vgw_version" ]; then
  echo "setup: building versitygw $vgw_version (pinned in tools/versitygw) into bin/, the S3 server of the s3 layer-cache tests (about 4.5 minutes)"
  (cd tools/versitygw && CGO_ENABLED=0 go build -trimpath -o ../../bin/versitygw github.com/versity/versitygw/cmd/versitygw)
  echo "$vgw_version" > bin/versitygw.version
fi
hoist_version=$(git describe --always --dirty 2>/dev/null || echo dev)
go build -ldflags "-X github.com/hoist-build/hoist/internal/cli.Version=$hoist_version" -o bin/hoist ./cmd/hoist
echo "setup: ok"
