package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The fresh-step suite: every step of a CI job starts a new container, so
// each pays its engine's start. Timed from `docker run` of a plugin image
// to a small image pushed: hoist's BuildKit plugin image (its embedded
// engine started in the step), against a plugin image made here the way
// the buildx peers are (plugins/docker, drone-buildx: a dockerd started
// in the step's container, then the build through the Docker CLI).

const dindImage = "hoist-bench/dind-buildx:bench"

// stepFlags are the `docker run` flags both plugin images run with: the
// capabilities an engine needs (this machine refuses --privileged), the
// host's network (the registries are on its loopback), and a fresh volume
// for the engine's state (overlay on overlay does not mount).
func stepFlags(stateDir string) []string {
	return append([]string{"run", "--rm", "--network", "host", "-v", stateDir}, buildkitFlags...)
}

func (b *bench) freshStepScenarios(ctx string) []scenario {
	const app = "/bench/fresh:1"
	ref := func(m *meas) string { return m.regs[0] + app }
	hoist := func(m *meas) error {
		args := append([]string{"docker"}, stepFlags("/root/.cache/hoist")...)
		args = append(args, "-v", ctx+":/harness", "-w", "/harness", "-e", "PLUGIN_REPO="+strings.TrimSuffix(ref(m), ":1"),
			"-e", "PLUGIN_TAGS=1", "-e", "PLUGIN_PROGRESS=quiet", buildkitImage)
		return m.exec(args...)
	}
	dind := func(m *meas) error {
		args := append([]string{"docker"}, stepFlags("/var/lib/docker")...)
		args = append(args, "-v", ctx+":/harness", "-w", "/harness", "-e", "PLUGIN_REPO="+strings.TrimSuffix(ref(m), ":1"),
			"-e", "PLUGIN_TAGS=1", dindImage)
		return m.exec(args...)
	}
	pushed := func(m *meas) error { return inRegistry(ref(m)) }
	return []scenario{{suite: "freshstep", id: "push", sizeless: true, registries: 1,
		title: "a fresh CI step: docker run of a plugin image to a 1 MiB image pushed", tools: []tool{
			{id: "hoist", title: "hoist's BuildKit plugin image (its embedded engine started in the step)", run: hoist, verify: pushed},
			{id: "dind-buildx", title: "dockerd started in the step, then docker buildx build --push (docker driver)", run: dind, verify: pushed},
		}}}
}

// freshStepSuite makes the suite's context and the peer's image, and
// measures.
func (b *bench) freshStepSuite() error {
	if !b.wanted(b.freshStepScenarios("")) {
		return nil
	}
	ctx := filepath.Join(b.dir, "fresh-context")
	if err := os.MkdirAll(ctx, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(ctx, "data.bin"))
	if err != nil {
		return err
	}
	err = writeRandom(f, 1<<20, 4242)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nCOPY data.bin /data.bin\n"), 0o644)
	}
	if err != nil {
		return err
	}
	if err := b.makeDindImage(); err != nil {
		return fmt.Errorf("making the dockerd-and-buildx plugin image: %w", err)
	}
	return b.measureEach(b.freshStepScenarios(ctx))
}

// makeDindImage builds the peer's plugin image from this machine's Docker
// engine (dockerd, containerd, its shim, runc, the docker CLI with the
// pinned buildx plugin, and the C libraries they link) and the bench
// program as its entrypoint (`bench dind-entry`), with hoist into the
// Docker daemon.
func (b *bench) makeDindImage() error {
	dir := filepath.Join(b.dir, "dind-image")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	script := `set -eu
root=$1/root; self=$2
mkdir -p "$root/usr/bin" "$root/root/.docker/cli-plugins" "$root/tmp" "$root/run" "$root/var/lib/docker"
for p in dockerd containerd containerd-shim-runc-v2 runc docker; do cp "$(command -v $p)" "$root/usr/bin/"; done
cp "$(command -v docker-buildx || echo bin/docker-buildx)" "$root/root/.docker/cli-plugins/docker-buildx"
cp "$self" "$root/usr/bin/entry"
for lib in $(ldd "$root"/usr/bin/* | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | sort -u); do
  mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"
done
printf 'FROM scratch\nCOPY root/ /\nENV PATH=/usr/bin HOME=/root DOCKER_CONFIG=/root/.docker\nENTRYPOINT ["/usr/bin/entry", "dind-entry"]\n' > "$1/Dockerfile"
`
	if _, stderr, err := runCmd("bash", "-c", script, "make-dind", dir, self); err != nil {
		return fmt.Errorf("%w: %s", err, stderr)
	}
	if _, stderr, err := runCmd(hoistBin, "build", "--no-push", "--context", dir, "--repo", strings.Split(dindImage, ":")[0], "--tags", strings.Split(dindImage, ":")[1],
		"--load", "--progress", "quiet", "--engine-dir", filepath.Join(b.dir, "dind-engine")); err != nil {
		return fmt.Errorf("%w: %s", err, stderr)
	}
	runCmd(hoistBin, "engine", "stop", "--engine-dir", filepath.Join(b.dir, "dind-engine"))
	return nil
}

// cmdDindEntry is the peer plugin image's entrypoint: it starts dockerd
// in the step's container (on the host's network, without a bridge or
// iptables rules of its own: the cheapest dockerd, which these
// measurements grant the peer), waits until it answers (every 100 ms;
// plugins/docker asks every second), builds the working directory with
// docker buildx build --push under PLUGIN_REPO:PLUGIN_TAGS, and stops
// dockerd.
func cmdDindEntry(args []string) error {
	repo, tags := os.Getenv("PLUGIN_REPO"), os.Getenv("PLUGIN_TAGS")
	if repo == "" || tags == "" {
		return errors.New("dind-entry: PLUGIN_REPO and PLUGIN_TAGS are needed")
	}
	d := exec.Command("dockerd", "--host", "unix:///run/docker.sock", "--data-root", "/var/lib/docker", "--iptables=false", "--ip6tables=false", "--bridge=none")
	d.Stdout, d.Stderr = os.Stderr, os.Stderr
	if err := d.Start(); err != nil {
		return err
	}
	defer func() {
		d.Process.Signal(syscall.SIGTERM)
		d.Wait()
	}()
	env := append(os.Environ(), "DOCKER_HOST=unix:///run/docker.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		v := exec.CommandContext(ctx, "docker", "version")
		v.Env = env
		if v.Run() == nil {
			break
		}
		select {
		case <-ctx.Done():
			return errors.New("dind-entry: dockerd did not answer within 60 s")
		case <-time.After(100 * time.Millisecond):
		}
	}
	bargs := []string{"buildx", "build", "--progress", "quiet", "--push"}
	for _, t := range strings.Split(tags, ",") {
		bargs = append(bargs, "-t", repo+":"+t)
	}
	build := exec.CommandContext(ctx, "docker", append(bargs, ".")...)
	build.Env, build.Stdout, build.Stderr = env, os.Stdout, os.Stderr
	return build.Run()
}
