package harness

import (
	"archive/tar"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Docker is a running Docker daemon.
type Docker struct {
	// Host is the daemon's address, unix:///....
	Host string
}

var dockerOnce struct {
	sync.Once
	d   *Docker
	err string
}

// SharedDocker returns the Docker daemon of this test binary: the one named
// by HOIST_TEST_DOCKER_HOST (the test script starts one for all packages),
// else one this package starts (without bridge or iptables) and stops in
// Main.
func SharedDocker(t testing.TB) *Docker {
	t.Helper()
	Need(t, "docker")
	dockerOnce.Do(func() {
		if h := os.Getenv("HOIST_TEST_DOCKER_HOST"); h != "" {
			d := &Docker{Host: h}
			if _, err := RunErr(d.Env(), "docker", "info"); err != nil {
				dockerOnce.err = "HOIST_TEST_DOCKER_HOST=" + h + " does not answer: " + err.Error()
				return
			}
			dockerOnce.d = d
			return
		}
		dockerOnce.d, dockerOnce.err = startDockerd()
	})
	if dockerOnce.d == nil {
		Missing(t, "docker daemon: %s", dockerOnce.err)
	}
	return dockerOnce.d
}

func startDockerd() (*Docker, string) {
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		return nil, "dockerd is not installed (run scripts/setup.sh)"
	}
	// Unix socket paths are short; keep the directory near /.
	dir, err := os.MkdirTemp("/tmp", "hd")
	if err != nil {
		return nil, err.Error()
	}
	d := &Docker{Host: "unix://" + filepath.Join(dir, "docker.sock")}
	p, err := startProcess(filepath.Join(dir, "dockerd.log"), bin, "--iptables=false", "--ip6tables=false", "--bridge=none",
		"--host", d.Host, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "x"),
		"--pidfile", filepath.Join(dir, "docker.pid"))
	if err != nil {
		return nil, err.Error()
	}
	ok := waitFor(60*time.Second, func() bool {
		_, err := RunErr(d.Env(), "docker", "version")
		return err == nil
	})
	if !ok {
		p.stop(10 * time.Second)
		return nil, "dockerd did not start: " + p.logTail(2000)
	}
	atExit(func() {
		p.stop(20 * time.Second)
		// The daemon's overlay mounts are gone with it; remove its files.
		os.RemoveAll(dir)
	})
	return d, ""
}

// Env is the environment that points the docker CLI at this daemon.
func (d *Docker) Env() []string { return []string{"DOCKER_HOST=" + d.Host} }

// Run runs the docker CLI against this daemon and returns its stdout.
func (d *Docker) Run(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, d.Env(), "docker", args...)
}

// Busybox returns the path of a static busybox for arch (amd64 or arm64).
// The arm64 one is installed by scripts/setup.sh from Debian's
// busybox-static:arm64.
func Busybox(t testing.TB, arch string) string {
	t.Helper()
	p := "/bin/busybox"
	if arch == "arm64" {
		p = "/usr/local/lib/hoist-test/busybox.arm64"
	}
	if _, err := os.Stat(p); err != nil {
		Missing(t, "static busybox for %s at %s (run scripts/setup.sh)", arch, p)
	}
	return p
}

// Rootfs writes a tar of a tiny root filesystem: a static busybox for arch
// with its common applets, and /hello.txt holding msg. It is what
// `docker import` turns into a base image: there is no Docker Hub here.
func Rootfs(t testing.TB, arch, msg string) string {
	t.Helper()
	bb, err := os.ReadFile(Busybox(t, arch))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "rootfs-"+arch+".tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	mod := time.Unix(1700000000, 0)
	add := func(h *tar.Header, body []byte) {
		h.ModTime = mod
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if body != nil {
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}, nil)
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))}, bb)
	for _, applet := range []string{"sh", "cat", "echo", "ls", "true", "uname", "dd", "head"} {
		add(&tar.Header{Name: "bin/" + applet, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	}
	add(&tar.Header{Name: "hello.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(msg) + 1)}, []byte(msg+"\n"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// Import makes an image from a root filesystem tar with `docker import`.
func (d *Docker) Import(t testing.TB, rootfs, ref, platform string) {
	t.Helper()
	args := []string{"import", "--change", `CMD ["/bin/sh"]`}
	if platform != "" {
		args = append(args, "--platform", platform)
	}
	d.Run(t, append(args, rootfs, ref)...)
}

// Build builds dir with the daemon's classic builder (host network; there
// is no bridge) and tags the result ref.
func (d *Docker) Build(t testing.TB, dir, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "build", "--network", "host", "-q", "-t", ref, dir)
	cmd.Env = append(os.Environ(), append(d.Env(), "DOCKER_BUILDKIT=0")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build %s: %v\n%s", dir, err, out)
	}
}

// RunImage pulls ref from its registry and runs cmd in it; it returns the
// trimmed output. This proves a pushed image's bytes are right.
func (d *Docker) RunImage(t testing.TB, ref string, cmd ...string) string {
	t.Helper()
	d.Run(t, "pull", "-q", ref)
	args := append([]string{"run", "--rm", "--network", "host", ref}, cmd...)
	return strings.TrimSpace(d.Run(t, args...))
}

// Socket is a unix socket where no daemon answers: it counts the
// connections made to it and closes each at once, so a test sees whether a
// step touched DOCKER_HOST.
type Socket struct {
	// Host is unix://PATH, for DOCKER_HOST.
	Host  string
	mu    sync.Mutex
	count int
}

// Connections is how many connections were made so far.
func (s *Socket) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// CountingSocket listens on a fresh unix socket until the test ends.
func CountingSocket(t testing.TB) *Socket {
	t.Helper()
	dir, err := os.MkdirTemp("", "hoist-sock-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "docker.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := &Socket{Host: "unix://" + path}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.count++
			s.mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		os.RemoveAll(dir)
	})
	return s
}
