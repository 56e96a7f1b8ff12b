package harness

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/engine"
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

// SharedEngine returns the state directory and address of the shared
// buildkitd. It is laid out as hoist's embedded engine is (root/ and
// buildkitd.sock in one directory), so PLUGIN_ENGINE_DIR=dir makes hoist
// use it as a running embedded engine, with direct export from its
// content store, while PLUGIN_BUILDER_REMOTE_CONN=addr uses it as a remote
// builder, through the session. Its RUN steps get the network hoist's
// embedded engine gives them (engine.BridgeFor): a namespace of their own
// on a bridge, not the host's network.
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
		n, err := engine.BridgeFor(dir, nil, os.Getenv("PATH"))
		if err != nil {
			buildkitOnce.err = err.Error() + " (install containernetworking-plugins: scripts/setup.sh)"
			return
		}
		cfg := filepath.Join(dir, "buildkitd.toml")
		if err := os.WriteFile(cfg, []byte(engine.Config(nil, nil, n)+engine.TraceSocket(dir)), 0o644); err != nil {
			buildkitOnce.err = err.Error()
			return
		}
		p, err := startProcess(filepath.Join(dir, "buildkitd.log"), bin, "--root", filepath.Join(dir, "root"), "--addr", addr,
			"--config", cfg, "--oci-worker-snapshotter", "overlayfs", "--allow-insecure-entitlement", "network.host")
		if err != nil {
			buildkitOnce.err = err.Error()
			return
		}
		ok := waitFor(60*time.Second, func() bool {
			_, err := os.Stat(filepath.Join(dir, "buildkitd.sock"))
			return err == nil
		})
		if !ok {
			p.stop(5 * time.Second)
			buildkitOnce.err = "buildkitd did not start: " + p.logTail(2000)
			return
		}
		atExit(func() {
			p.stop(20 * time.Second)
			os.RemoveAll(dir)
		})
		buildkitOnce.dir, buildkitOnce.addr = dir, addr
	})
	if buildkitOnce.addr == "" {
		t.Fatalf("buildkitd: %s", strings.TrimSpace(buildkitOnce.err))
	}
	return buildkitOnce.dir, buildkitOnce.addr
}

// TLSBuildKit is a buildkitd listening on tcp:// with mutual TLS.
type TLSBuildKit struct {
	Addr                      string
	CAFile, CertFile, KeyFile string // what a client presents
}

// StartTLSBuildKit starts a buildkitd of its own on a loopback TCP port
// that demands a client certificate from the CA; it stops with the test.
func StartTLSBuildKit(t testing.TB) *TLSBuildKit {
	t.Helper()
	bin := Buildkitd(t)
	dir, err := os.MkdirTemp("/tmp", "hbkt")
	if err != nil {
		t.Fatal(err)
	}
	ca := NewCA(t, dir)
	srvCert, srvKey := ca.Issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.Issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	b := &TLSBuildKit{CAFile: ca.File, CertFile: cliCert, KeyFile: cliKey}
	for attempt := 0; attempt < 3; attempt++ {
		b.Addr = fmt.Sprintf("tcp://127.0.0.1:%d", FreePort(t))
		p, err := startProcess(filepath.Join(dir, fmt.Sprintf("buildkitd-%d.log", attempt)), bin, "--root", filepath.Join(dir, "root"), "--addr", b.Addr,
			"--tlscacert", ca.File, "--tlscert", srvCert, "--tlskey", srvKey, "--oci-worker-snapshotter", "overlayfs")
		if err != nil {
			t.Fatal(err)
		}
		up := waitFor(30*time.Second, func() bool {
			if p.exited() {
				return true
			}
			c, err := net.DialTimeout("tcp", strings.TrimPrefix(b.Addr, "tcp://"), 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		if p.exited() {
			continue // the port was taken meanwhile
		}
		if up {
			t.Cleanup(func() { p.stop(20 * time.Second); os.RemoveAll(dir) })
			return b
		}
		p.stop(5 * time.Second)
	}
	t.Fatalf("buildkitd with TLS did not start; logs in %s", dir)
	return nil
}

// KanikoExecutor returns the static Kaniko executor scripts/setup.sh
// builds into bin/ (from tools/kaniko).
func KanikoExecutor(t testing.TB) string {
	t.Helper()
	if root := moduleRoot(); root != "" {
		p := filepath.Join(root, "bin", "kaniko-executor")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Missing(t, "bin/kaniko-executor is not built (run scripts/setup.sh)")
	return ""
}

// ModuleRoot is the directory of hoist's go.mod.
func ModuleRoot() string { return moduleRoot() }
