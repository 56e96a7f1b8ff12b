package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// expensiveRounds is how many times the Dockerfile's RUN step hashes its
// 32 MiB of generated data: about 20 s of CPU on this project's machines,
// standing for a compile.
const expensiveRounds = 100

// cacheDockerfile is a Dockerfile whose RUN step is expensive and whose
// last layer (a stamp file) changes between builds, as a source file does.
func cacheDockerfile(base string) string {
	return fmt.Sprintf(`FROM %s
RUN mkdir -p /opt/app && head -c 33554432 /dev/urandom > /opt/app/data.bin && i=0 && while [ $i -lt %d ]; do sha256sum /opt/app/data.bin > /opt/app/sum.txt; i=$((i+1)); done
COPY stamp.txt /opt/app/stamp.txt
CMD ["cat", "/opt/app/stamp.txt"]
`, base, expensiveRounds)
}

// cacheScenarios measure a rebuild after a change to the last layer on a
// fresh builder (no local cache), as a CI step on a new machine does: hoist
// on a fresh embedded engine without a cache and from a registry cache
// written with mode=max, against buildx on a fresh BuildKit container (see
// buildxBuilder) from the same cache and without one. Every build pushes
// its image. The builders are started before the clock starts, for both
// tools; one more hoist case counts its engine's start.
func (b *bench) cacheScenarios(ctx, reg string, warm v1.Hash) []scenario {
	cacheRef := reg + "/bench/cache:rebuild"
	target := func(m *meas) string { return fmt.Sprintf("%s/bench/rebuild:%d", reg, m.run) }
	// hoist builds on a fresh engine, started before the clock starts
	// unless withStart.
	hoist := func(cached, withStart bool) func(m *meas) error {
		return func(m *meas) error {
			stamp, err := writeStamp(ctx, m)
			if err != nil {
				return err
			}
			dir := filepath.Join(b.dir, fmt.Sprintf("engine-fresh-%d", m.run))
			defer os.RemoveAll(dir)
			if !withStart {
				if err := must(hoistBin, "engine", "start", "--engine-dir", dir, "--buildkitd", buildkitdBin); err != nil {
					return err
				}
				defer runCmd(hoistBin, "engine", "stop", "--engine-dir", dir)
			}
			args := []string{hoistBin, "build", "--context", ctx, "--destination", target(m), "--engine-dir", dir, "--buildkitd", buildkitdBin,
				"--progress", "plain", "--daemon-off"}
			if cached {
				args = append(args, "--cache-from", "type=registry,ref="+cacheRef)
			}
			if err := m.exec(args...); err != nil {
				return err
			}
			return checkRebuild(target(m), stamp, cached, warm)
		}
	}
	buildx := func(cached bool) func(m *meas) error {
		return func(m *meas) error {
			stamp, err := writeStamp(ctx, m)
			if err != nil {
				return err
			}
			builder, _, stop, err := buildxBuilder(m.run)
			if err != nil {
				return err
			}
			defer stop()
			args := []string{"docker", "buildx", "build", "--builder", builder, "--progress", "plain", "--push", "-t", target(m)}
			if cached {
				args = append(args, "--cache-from", "type=registry,ref="+cacheRef)
			}
			if err := m.exec(append(args, ctx)...); err != nil {
				return err
			}
			return checkRebuild(target(m), stamp, cached, warm)
		}
	}
	return []scenario{{suite: "cache", sizeless: true, id: "rebuild", title: "rebuild after a change to the last layer, fresh builder", tools: []tool{
		{id: "hoist-cold", title: "hoist, fresh embedded engine, no cache", run: hoist(false, false)},
		{id: "hoist-cached", title: "hoist, fresh embedded engine, registry cache (mode=max)", run: hoist(true, false)},
		{id: "hoist-cached-start", title: "hoist, registry cache, the engine's start included", run: hoist(true, true)},
		{id: "buildx-cold", title: "buildx, fresh BuildKit container, no cache", run: buildx(false)},
		{id: "buildx-cached", title: "buildx, fresh BuildKit container, the same registry cache", run: buildx(true)},
	}}}
}

// cacheSuite sets up a registry with a base image and a warm cache, then
// measures the rebuilds.
func (b *bench) cacheSuite() error {
	if !b.wanted(b.cacheScenarios("", "", v1.Hash{})) {
		return nil
	}
	regs, err := startRegistries(b.dir, 1)
	if err != nil {
		return err
	}
	b.atEnd(regs.stop)
	reg := regs.hosts[0]
	base := reg + "/bench/base:1"
	if err := pushBusybox(base); err != nil {
		return fmt.Errorf("pushing the base image: %w", err)
	}
	ctx := filepath.Join(b.dir, "build-cache")
	if err := os.MkdirAll(ctx, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(cacheDockerfile(base)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ctx, "stamp.txt"), []byte("warm\n"), 0o644); err != nil {
		return err
	}
	// The cache: one build on an engine of its own, exported with mode=max.
	dir := filepath.Join(b.dir, "engine-warm")
	err = must(hoistBin, "build", "--context", ctx, "--destination", reg+"/bench/rebuild:warm", "--engine-dir", dir, "--buildkitd", buildkitdBin,
		"--cache-to", "type=registry,ref="+reg+"/bench/cache:rebuild,mode=max", "--progress", "quiet", "--daemon-off")
	os.RemoveAll(dir)
	if err != nil {
		return fmt.Errorf("writing the registry cache: %w", err)
	}
	ls, err := layersOf(reg + "/bench/rebuild:warm")
	if err != nil {
		return err
	}
	if len(ls) < 3 {
		return fmt.Errorf("the warm build has %d layers, the Dockerfile makes 3", len(ls))
	}
	warm, err := ls[len(ls)-2].Digest()
	if err != nil {
		return err
	}
	return b.measureEach(b.cacheScenarios(ctx, reg, warm))
}

// buildkitFlags grant a container what BuildKit needs to build inside
// it. buildx's docker-container driver runs its container privileged,
// which this machine's sandbox refuses ("unable to apply caps"); these are
// the capabilities and options hoist's own tests grant instead.
var buildkitFlags = []string{
	"--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
	"--security-opt", "systempaths=unconfined", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
}

// buildxBuilder starts a fresh BuildKit in a container, as buildx's
// docker-container driver does (hoist's BuildKit image, the same BuildKit
// version as hoist's engine, its state on a volume of its own), and makes
// it a buildx builder through buildx's remote driver. stop removes both.
func buildxBuilder(run int) (name, addr string, stop func(), err error) {
	name = fmt.Sprintf("hoist-bench-%d", run)
	stop = func() {
		runCmd("docker", "buildx", "rm", name)
		runCmd("docker", "rm", "-f", "-v", name)
	}
	addr, err = freeAddr()
	if err != nil {
		return "", "", nil, err
	}
	stop()
	args := append([]string{"docker", "run", "-d", "--name", name, "--network", "host", "-v", "/var/lib/buildkit"}, buildkitFlags...)
	err = must(append(args, "--entrypoint", "/usr/bin/buildkitd", buildkitImage, "--addr", "tcp://"+addr)...)
	if err == nil {
		err = must("docker", "buildx", "create", "--name", name, "--driver", "remote", "tcp://"+addr, "--bootstrap")
	}
	if err != nil {
		stop()
		return "", "", nil, err
	}
	return name, "tcp://" + addr, stop, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func writeStamp(ctx string, m *meas) (string, error) {
	stamp := fmt.Sprintf("rebuild %d at %s\n", m.run, time.Now().Format(time.RFC3339Nano))
	return stamp, os.WriteFile(filepath.Join(ctx, "stamp.txt"), []byte(stamp), 0o644)
}

// checkRebuild checks that the RUN step's layer came from the cache
// exactly when one was given (a run makes new random data, so its layer
// differs from the cache's), and that the pushed image carries the new
// stamp in its last layer.
func checkRebuild(ref, stamp string, cached bool, warm v1.Hash) error {
	ls, err := layersOf(ref)
	if err != nil {
		return err
	}
	if len(ls) < 3 {
		return fmt.Errorf("%s has %d layers, the Dockerfile makes 3", ref, len(ls))
	}
	run, err := ls[len(ls)-2].Digest()
	if err != nil {
		return err
	}
	if got := run == warm; got != cached {
		return fmt.Errorf("%s: the RUN step's layer %s came from the cache: %t, expected %t", ref, run, got, cached)
	}
	got, err := fileInLayer(ls[len(ls)-1], "opt/app/stamp.txt")
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	if got != stamp {
		return fmt.Errorf("%s holds stamp %q, the build wrote %q", ref, got, stamp)
	}
	return nil
}

func layersOf(ref string) ([]v1.Layer, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	return img.Layers()
}

// fileInLayer reads a file of a layer.
func fileInLayer(l v1.Layer, path string) (string, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			return "", fmt.Errorf("no %s in the layer: %v", path, err)
		}
		if strings.TrimPrefix(h.Name, "/") == path {
			b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			return string(b), err
		}
	}
}

// pushBusybox pushes a base image made of the machine's static busybox.
func pushBusybox(ref string) error {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("a static busybox is needed (Debian's busybox-static): %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))})
	tw.Write(bb)
	for _, a := range []string{"sh", "cat", "head", "mkdir", "sha256sum"} {
		tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox"})
	}
	tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777})
	if err := tw.Close(); err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return err
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "amd64",
		Config: v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/sh"}}, RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		return err
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	return remote.Write(r, img)
}
