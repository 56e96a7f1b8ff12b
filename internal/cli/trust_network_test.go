package cli

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/harness"
)

// loopbackListener is a TCP service on the host's loopback, as a local
// registry or an agent's API is: it counts the connections it accepts and
// keeps what they send.
type loopbackListener struct {
	port     int
	mu       sync.Mutex
	accepted int
	got      strings.Builder
}

func listenLoopback(t *testing.T) *loopbackListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	l := &loopbackListener{port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.accepted++
			l.mu.Unlock()
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(io.LimitReader(c, 1<<10))
				l.mu.Lock()
				l.got.Write(b)
				l.mu.Unlock()
			}()
		}
	}()
	return l
}

func (l *loopbackListener) seen() (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted, l.got.String()
}

// A Dockerfile's RUN does not reach a service on the host's loopback: by
// default it runs in a network namespace of its own, on the running
// embedded engine (the tests' shared one) and on one hoist starts itself.
// The same Dockerfile with PLUGIN_NETWORK=host reaches it, which shows
// that the probe can tell the difference.
func TestRunCannotReachHostLoopback(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	for _, c := range []struct {
		name  string
		fresh bool // an engine this run starts, not the running shared one
	}{{"running engine", false}, {"engine hoist starts", true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			engineDir := filepath.Join(t.TempDir(), "engine")
			for _, network := range []string{"", "host"} {
				l := listenLoopback(t)
				token := fmt.Sprintf("probe-%s-%d", network, l.port)
				ctxDir := buildContext(t, "FROM "+f.Base+"\n"+
					fmt.Sprintf("RUN echo %s | /bin/busybox nc -w 3 127.0.0.1 %d && echo reached-the-host-$((40+2))\n", token, l.port), nil)
				env := buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_NETWORK", network)
				if c.fresh {
					env["PLUGIN_ENGINE_DIR"], env["PLUGIN_BUILDKITD"] = engineDir, harness.Buildkitd(t)
				}
				r := hoist(t, env)
				accepted, got := l.seen()
				if c.fresh {
					assertContains(t, r, "engine: started buildkitd")
				}
				if network == "host" {
					if r.code != 0 || accepted == 0 || !strings.Contains(got, token) {
						t.Errorf("PLUGIN_NETWORK=host: exit %d, the listener accepted %d connections and read %q; want 0, at least 1 and %q:\n%s", r.code, accepted, got, token, r)
					}
					assertContains(t, r, "reached-the-host-42") // the RUN's output, not its command line
					continue
				}
				if r.code != ExitBuild || accepted != 0 || got != "" {
					t.Errorf("default network: exit %d, the listener accepted %d connections and read %q; want %d (the RUN fails), 0 and nothing:\n%s", r.code, accepted, got, ExitBuild, r)
				}
				assertContains(t, r, "nc: can't connect to remote host (127.0.0.1): Connection refused")
				assertNotContains(t, r, "reached-the-host-42")
				if c.fresh {
					assertContains(t, r, "RUN steps on bridge hoist-")
				}
			}
		})
	}
}

var inetRE = regexp.MustCompile(`inet (\d+\.\d+\.\d+\.\d+)/\d+`)

// A RUN has a working network namespace of its own: its loopback and an
// eth0 with an address that none of the host's interfaces has, a default
// route, and through it a service on the bridge's host end (where its
// traffic to a registry or a package mirror goes, NATed). The same RUN
// with PLUGIN_NETWORK=host lists the host's addresses, so the probe shows
// them when they are there.
func TestRunHasANetworkOfItsOwn(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	host := map[string]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			host[n.IP.String()] = true
		}
	}
	if len(host) == 0 {
		t.Fatal("the host has no IPv4 address besides loopback to compare with")
	}
	// A service on the engine's bridge, at the host's end (the gateway):
	// where a RUN's traffic to the world goes.
	dir, _ := harness.SharedEngine(t)
	n, err := engine.BridgeFor(dir, nil, os.Getenv("PATH"))
	if err != nil {
		t.Fatal(err)
	}
	br, err := net.InterfaceByName(n.Bridge)
	if err != nil {
		t.Fatalf("the shared engine has no bridge %s: %v", n.Bridge, err)
	}
	brAddrs, _ := br.Addrs()
	gw := ""
	for _, a := range brAddrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			gw = ipn.IP.String()
			break
		}
	}
	if gw == "" {
		t.Fatalf("bridge %s has no IPv4 address: %v", n.Bridge, brAddrs)
	}
	ln, err := net.Listen("tcp", gw+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	gwGot := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(io.LimitReader(c, 1<<10))
		gwGot <- string(b)
	}()
	for _, network := range []string{"host", ""} {
		l := listenLoopback(t) // only for a token of its own: a cached RUN would print nothing
		run := fmt.Sprintf("RUN echo run-%d && /bin/busybox ip -4 addr && /bin/busybox ip route\n", l.port)
		if network == "" {
			run = fmt.Sprintf("RUN echo run-%d && /bin/busybox ip -4 addr && /bin/busybox ip route && echo via-the-bridge | /bin/busybox nc -w 3 %s %d\n", l.port, gw, ln.Addr().(*net.TCPAddr).Port)
		}
		ctxDir := buildContext(t, "FROM "+f.Base+"\n"+run, nil)
		r := mustPush(t, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_NETWORK", network))
		out := r.stdout + r.stderr
		var seen, shared []string
		for _, m := range inetRE.FindAllStringSubmatch(out, -1) {
			seen = append(seen, m[1])
			if host[m[1]] {
				shared = append(shared, m[1])
			}
		}
		if network == "host" {
			if len(shared) == 0 {
				t.Errorf("PLUGIN_NETWORK=host: the RUN lists none of the host's addresses %v (it lists %v):\n%s", host, seen, r)
			}
			continue
		}
		if len(shared) != 0 {
			t.Errorf("default network: the RUN has the host's addresses %v:\n%s", shared, r)
		}
		assertContains(t, r, "inet 127.0.0.1/8", ": eth0@", "default via 10.177.")
		own := false
		for _, a := range seen {
			own = own || strings.HasPrefix(a, "10.177.")
		}
		if !own {
			t.Errorf("default network: the RUN's addresses %v hold none on the engine's bridge (10.177.0.0/16):\n%s", seen, r)
		}
		select {
		case got := <-gwGot:
			if got != "via-the-bridge\n" {
				t.Errorf("the service on the bridge's gateway %s read %q", gw, got)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("the RUN did not reach the service on the bridge's gateway %s", gw)
		}
	}
}

// A Dockerfile cannot give itself the host's network: `RUN --network=host`
// needs the network.host entitlement, which hoist asks BuildKit for only
// with PLUGIN_NETWORK=host.
func TestRunCannotAskForHostNetwork(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	for _, network := range []string{"", "host"} {
		l := listenLoopback(t)
		token := fmt.Sprintf("asked-%s-%d", network, l.port)
		ctxDir := buildContext(t, "FROM "+f.Base+"\n"+
			fmt.Sprintf("RUN --network=host echo %s | /bin/busybox nc -w 3 127.0.0.1 %d && echo reached-the-host-$((40+2))\n", token, l.port), nil)
		r := hoist(t, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_NETWORK", network))
		accepted, got := l.seen()
		if network == "host" {
			if r.code != 0 || accepted == 0 || !strings.Contains(got, token) {
				t.Errorf("PLUGIN_NETWORK=host: exit %d, the listener accepted %d connections and read %q; want 0, at least 1 and %q:\n%s", r.code, accepted, got, token, r)
			}
			continue
		}
		if r.code != ExitBuild || accepted != 0 || got != "" {
			t.Errorf("default network: exit %d, the listener accepted %d connections and read %q; want %d, 0 and nothing:\n%s", r.code, accepted, got, ExitBuild, r)
		}
		assertContains(t, r, "network.host")
		assertNotContains(t, r, "reached-the-host-42")
	}
}
