//go:build linux

package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeExecutor writes a stand-in for the Kaniko executor (which takes
// over the root filesystem, so never runs on a host): it fails unless
// marker exists when it starts, and writes the digest file.
func fakeExecutor(t *testing.T, marker string) (exe, ctxDir string) {
	t.Helper()
	dir := t.TempDir()
	exe = filepath.Join(dir, "executor")
	script := "#!/bin/sh\n[ -e '" + marker + "' ] || { echo 'started before the shield'; exit 3; }\n" +
		"for a; do case \"$a\" in --digest-file=*) echo sha256:0000 > \"${a#--digest-file=}\";; esac; done\n"
	if err := os.WriteFile(exe, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctxDir = filepath.Join(dir, "ctx")
	os.MkdirAll(ctxDir, 0o755)
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return exe, ctxDir
}

func dumpable(t *testing.T) int {
	t.Helper()
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A Kaniko build changes nothing of the process on its own: the shield
// (non-dumpable, CA certificates read) is the command layer's hook, run
// before the executor starts, and its failure stops the build there.
// (Not parallel: it reads the process's dumpable flag.)
func TestKanikoShieldIsTheCallersHook(t *testing.T) {
	if dumpable(t) != 1 {
		t.Fatalf("the test process is not dumpable before the build: the test proves nothing")
	}
	marker := filepath.Join(t.TempDir(), "shielded")
	exe, ctxDir := fakeExecutor(t, marker)

	// No hook: the executor runs, the process is as it was.
	if _, err := (&Kaniko{Executor: exe, TempDir: t.TempDir()}).Build(context.Background(), Request{ContextDir: ctxDir}); err == nil {
		t.Errorf("the stand-in executor ran without its marker: the test proves nothing")
	}
	if got := dumpable(t); got != 1 {
		t.Errorf("after a build without a shield the process's dumpable flag is %d: a library call changed the process", got)
	}

	// The hook runs before the executor.
	calls := 0
	k := &Kaniko{Executor: exe, TempDir: t.TempDir(), Shield: func() error {
		calls++
		return os.WriteFile(marker, nil, 0o644)
	}}
	res, err := k.Build(context.Background(), Request{ContextDir: ctxDir})
	if err != nil || calls != 1 || res.Digest != "sha256:0000" {
		t.Errorf("with the hook: %v, %d calls, %+v; want one call before the executor", err, calls, res)
	}

	// A failing hook stops the build before the executor starts.
	os.Remove(marker)
	refused := errors.New("no prctl here")
	k.Shield = func() error { return refused }
	if _, err := k.Build(context.Background(), Request{ContextDir: ctxDir}); !errors.Is(err, refused) || !errors.Is(err, ErrBuild) {
		t.Errorf("a failing hook: %v, want the build failed with its error", err)
	}
}
