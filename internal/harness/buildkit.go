package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buildkitd returns the path of the pinned buildkitd (scripts/setup.sh
// builds it into bin/): on PATH, else in the module's bin directory.
func Buildkitd(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("buildkitd"); err == nil {
		return p
	}
	if root := moduleRoot(); root != "" {
		p := filepath.Join(root, "bin", "buildkitd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Missing(t, "buildkitd is not on PATH nor in bin/ (run scripts/setup.sh)")
	return ""
}

func moduleRoot() string {
	dir, _ := os.Getwd()
	for dir != "/" && dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		dir = filepath.Dir(dir)
	}
	return ""
}

var buildkitOnce struct {
	sync.Once
	dir, addr, err string
}

// SharedBuildKit returns the address of a buildkitd (runc, overlayfs) that
// serves every test of this binary; Main stops it.
func SharedBuildKit(t testing.TB) string {
	t.Helper()
	_, addr := SharedEngine(t)
	return addr
}

// SharedEngine returns the state directory and address of the shared
// buildkitd. It is laid out as hoist's embedded engine is (root/ and
// buildkitd.sock in one directory), so PLUGIN_ENGINE_DIR=dir makes hoist
// use it as a running embedded engine, with direct export from its
// content store, while PLUGIN_BUILDER_REMOTE_CONN=addr uses it as a remote
// builder, through the session.
func SharedEngine(t testing.TB) (dir, addr string) {
	t.Helper()
	bin := Buildkitd(t)
	buildkitOnce.Do(func() {
		dir, err := os.MkdirTemp("/tmp", "hbk")
		if err != nil {
			buildkitOnce.err = err.Error()
			return
		}
		addr := "unix://" + filepath.Join(dir, "buildkitd.sock")
		logf, err := os.Create(filepath.Join(dir, "buildkitd.log"))
		if err != nil {
			buildkitOnce.err = err.Error()
			return
		}
		cmd := exec.Command(bin, "--root", filepath.Join(dir, "root"), "--addr", addr, "--oci-worker-snapshotter", "overlayfs", "--allow-insecure-entitlement", "network.host")
		cmd.Stdout, cmd.Stderr = logf, logf
		dieWithUs(cmd)
		if err := cmd.Start(); err != nil {
			buildkitOnce.err = err.Error()
			return
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); logf.Close(); close(done) }()
		ok := waitFor(60*time.Second, func() bool {
			_, err := os.Stat(filepath.Join(dir, "buildkitd.sock"))
			return err == nil
		})
		if !ok {
			stopProcess(cmd, done, 5*time.Second)
			b, _ := os.ReadFile(filepath.Join(dir, "buildkitd.log"))
			buildkitOnce.err = "buildkitd did not start: " + tail(string(b), 2000)
			return
		}
		atExit(func() {
			stopProcess(cmd, done, 20*time.Second)
			os.RemoveAll(dir)
		})
		buildkitOnce.dir, buildkitOnce.addr = dir, addr
	})
	if buildkitOnce.addr == "" {
		t.Fatalf("buildkitd: %s", strings.TrimSpace(buildkitOnce.err))
	}
	return buildkitOnce.dir, buildkitOnce.addr
}
