package build

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hoist-build/hoist/internal/harness"
)

// explainBuildKit is a BuildKit builder on the shared engine.
func explainBuildKit(t *testing.T) *BuildKit {
	t.Helper()
	_, addr := harness.SharedEngine(t)
	c, err := client.New(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &BuildKit{Client: c}
}

// explainContext writes a build context holding the Dockerfile and the
// named files.
func explainContext(t *testing.T, dockerfile string, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	files["Dockerfile"] = []byte(dockerfile)
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A failed solve is a *build.Error: BuildKit's own message (without
// "failed to solve: "), ErrBuild, and the gRPC status BuildKit sent.
func TestBuildKitFailureKeepsItsStatus(t *testing.T) {
	t.Parallel()
	b := explainBuildKit(t)
	dir := explainContext(t, "FROM scratch\nCOPY missing.txt /\n", map[string][]byte{})
	_, err := b.Build(context.Background(), Request{ContextDir: dir, Out: Outputs{LayoutDir: t.TempDir()}})
	if err == nil {
		t.Fatal("the build of a missing file succeeded")
	}
	var berr *Error
	if !errors.As(err, &berr) || !errors.Is(err, ErrBuild) {
		t.Errorf("error %v (%T): want a *build.Error wrapping ErrBuild", err, err)
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() == codes.OK {
		t.Errorf("status.FromError = %v, %v: want BuildKit's gRPC status", st, ok)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "build failed: ") || strings.Contains(msg, "failed to solve") || !strings.Contains(msg, "missing.txt") {
		t.Errorf("message %q: want BuildKit's words naming the file, after \"build failed: \"", msg)
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("a failed build is not cancelled: %v", err)
	}
}

// A build cancelled while a RUN step runs returns context.Canceled; one
// whose deadline passes keeps context.DeadlineExceeded as its cause.
func TestCancelledBuildIsContextCanceled(t *testing.T) {
	t.Parallel()
	b := explainBuildKit(t)
	bb, err := os.ReadFile(harness.Busybox(t, "amd64"))
	if err != nil {
		t.Fatal(err)
	}
	dir := explainContext(t, "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sleep\", \"60\"]\n", map[string][]byte{"busybox": bb})
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(3*time.Second, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 3*time.Second)
		}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, err := b.Build(ctx, Request{ContextDir: dir, NoCache: true, Out: Outputs{LayoutDir: t.TempDir()}})
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v (%T): want %v", err, err, tc.want)
			}
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("the build returned after %s", took)
			}
		})
	}
}

// A Kaniko executor that fails is a *build.Error keeping the exit status
// (*exec.ExitError) as its cause; one stopped by a cancel is also
// context.Canceled. The executor is a stand-in: the real one takes over
// the root filesystem.
func TestKanikoFailureKeepsItsExitStatus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exe := filepath.Join(dir, "executor")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\necho 'error building image'\n[ -e \"$0.sleep\" ] && exec sleep 30\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctxDir := explainContext(t, "FROM scratch\n", map[string][]byte{})

	_, err := (&Kaniko{Executor: exe, TempDir: t.TempDir()}).Build(context.Background(), Request{ContextDir: ctxDir})
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 || !errors.Is(err, ErrBuild) || errors.Is(err, context.Canceled) {
		t.Errorf("error %v: want ErrBuild with the *exec.ExitError of code 7", err)
	}
	if want := "build failed: the kaniko executor exited with code 7; its last lines:\nerror building image"; err == nil || err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}

	if err := os.WriteFile(exe+".sleep", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Second, cancel)
	_, err = (&Kaniko{Executor: exe, TempDir: t.TempDir()}).Build(ctx, Request{ContextDir: ctxDir})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}
