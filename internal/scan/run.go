package scan

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hoist-build/hoist/internal/envlist"
)

// run runs Trivy with args under the timeout and returns its standard
// output; a failure is an ErrScanner error with the end of its stderr.
func (s *Scanner) run(ctx context.Context, what string, args ...string) ([]byte, error) {
	return s.runPriority(ctx, false, what, args...)
}

// runPriority runs Trivy; in the background, Trivy runs at a lower CPU
// priority (nice 10): the SBOM is written alongside a push, which it
// must not slow.
//
// Trivy's defaults read files of its working directory: trivy.yaml
// (--config), trivy-secret.yaml (--secret-config), .trivyignore
// (--ignorefile), and, without a home directory, .trivy/modules
// (--module-dir), whose WASM modules rewrite results; and of its home,
// ~/.trivy/modules. A plugin step's working directory is the checkout,
// which the repository writes, and its home may be an earlier step's. So
// every Trivy process runs in an empty directory hoist makes for it (and
// removes after), and an image scan gets a module directory that does
// not exist: what decides a verdict is what hoist passes (the policy's
// flags, PLUGIN_SCAN_IGNOREFILE as --ignorefile, the cache directory),
// nothing else.
func (s *Scanner) runPriority(ctx context.Context, background bool, what string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	wd, err := os.MkdirTemp(s.o.TempDir, ".hoist-trivy-*")
	if err != nil {
		return nil, fmt.Errorf("%w: a working directory for trivy (%s): %w", ErrScanner, what, err)
	}
	defer os.RemoveAll(wd)
	if len(args) > 0 && args[0] == "image" {
		args = append([]string{"image", "--module-dir", filepath.Join(wd, "no-modules")}, args[1:]...)
	}
	cmd := exec.CommandContext(ctx, s.o.Trivy, args...)
	cmd.Dir = wd
	var stdout bytes.Buffer
	stderr := &tail{max: maxStderr}
	cmd.Stdout, cmd.Stderr = &limited{w: &stdout, left: 16 << 20}, stderr
	cmd.WaitDelay = 2 * time.Second
	// Trivy's notice about VEX statements is for project maintainers.
	cmd.Env = append(envlist.Filter(s.o.Env, trivyEnv), "TRIVY_DISABLE_VEX_NOTICE=true")
	err = cmd.Start()
	if err == nil {
		if background {
			// Best effort: a process that cannot be reniced runs as is.
			_ = syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, 10)
		}
		err = cmd.Wait()
	}
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctx.Err() == context.DeadlineExceeded {
		return nil, fmt.Errorf("%w: trivy (%s) did not finish within %s (PLUGIN_SCAN_TIMEOUT)", ErrScanner, what, s.o.Timeout)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = err.Error()
	}
	return nil, fmt.Errorf("%w: trivy (%s) failed: %s", ErrScanner, what, msg)
}

// tail keeps the last max bytes written.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// limited writes at most left bytes and fails after.
type limited struct {
	w    io.Writer
	left int64
}

func (l *limited) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, fmt.Errorf("trivy wrote more than the output bound")
	}
	l.left -= int64(len(p))
	return l.w.Write(p)
}

// absPath is p made absolute against hoist's working directory, or p
// when it is empty or that cannot be read.
func absPath(p string) string {
	if p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
