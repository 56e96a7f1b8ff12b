// Package harness starts the real components hoist's tests run against:
// distribution registries (plain, htpasswd, TLS), a Docker daemon, and the
// third-party tools that make test inputs (docker save, skopeo). Nothing
// here is a mock. When a component is missing the test fails under CI=true
// and is skipped elsewhere, with the command that installs it.
package harness

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI, where nothing may skip.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Need returns the path of a tool, or ends the test: a failure in CI, a
// skip elsewhere.
func Need(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	Missing(t, "%s is not installed (run scripts/setup.sh)", tool)
	return ""
}

// Tool returns the path of a pinned tool scripts/setup.sh builds into
// bin/ (crane, buildctl), or one on PATH; or ends the test.
func Tool(t testing.TB, tool string) string {
	t.Helper()
	if root := moduleRoot(); root != "" {
		p := filepath.Join(root, "bin", tool)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return Need(t, tool)
}

// Missing ends a test whose component is unavailable.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("required test component missing (CI=true, so this fails): %s", msg)
	}
	t.Skipf("skipped, component missing: %s", msg)
}

// SilentServer listens on a loopback port, accepts every connection and
// never answers: a server that hangs. It closes when the test ends.
func SilentServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	return l.Addr().String()
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Run runs a command with a bounded time and returns its stdout; on failure
// the test fails with the command's stderr.
func Run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	out, err := RunErr(env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// RunErr runs a command (at most five minutes) and returns its stdout, or
// an error holding its stderr.
func RunErr(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// waitFor polls ok every 50 ms until it returns true or d passes.
func waitFor(d time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ok()
}

// shared holds components that live for a whole test binary; Main stops
// them.
var shared struct {
	mu    sync.Mutex
	stops []func()
}

func atExit(f func()) {
	shared.mu.Lock()
	shared.stops = append(shared.stops, f)
	shared.mu.Unlock()
}

// Main runs the tests of a package, then stops the shared components it
// started. Use it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	for i := len(shared.stops) - 1; i >= 0; i-- {
		shared.stops[i]()
	}
	shared.mu.Unlock()
	return code
}

// process is a daemon this package started, its output in a log file.
type process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when it has exited and its log is closed
}

// startProcess starts bin with its stdout and stderr in logPath. The
// process receives SIGKILL if the test binary dies (a panic or a timeout
// skips the cleanups).
func startProcess(logPath, bin string, args ...string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	p := &process{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process: SIGTERM, then SIGKILL after a grace period.
func (p *process) stop(grace time.Duration) {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// logTail is the last n bytes of the process's log.
func (p *process) logTail(n int) string {
	b, _ := os.ReadFile(p.log)
	return tail(string(b), n)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Untouched writes content to p (a file outside the workspace under test,
// its directory made), dated an hour ago, and returns p; when the test
// ends, p must hold content and that mtime still: nothing wrote through
// a link to it.
func Untouched(t testing.TB, p, content string) string {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b, err := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if err != nil || string(b) != content || fi == nil || !fi.ModTime().Equal(old) {
			t.Errorf("%s, outside the workspace, changed: %q, %v (%v)", p, b, fi, err)
		}
	})
	return p
}

// RefusedAddr is a loopback address where a connection is refused, for
// the test's life: a port bound and never listened on, so that no other
// process can take it between the test choosing it and dialing it (a
// port listened on and closed again can be taken by anyone).
func RefusedAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind 127.0.0.1:0: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}
