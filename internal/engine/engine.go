// Package engine provides the BuildKit daemon hoist builds with: one it
// starts itself (the embedded default: buildkitd with runc and overlayfs,
// state under the user's cache directory), or any running BuildKit named
// by an address (unix://, tcp:// with TLS, docker-container://,
// kube-pod://).
package engine

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
	// Connection helpers for docker-container:// and kube-pod:// addresses.
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer"
	_ "github.com/moby/buildkit/client/connhelper/kubepod"
	wlabel "github.com/moby/buildkit/worker/label"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/hoist-build/hoist/internal/envlist"
)

// ErrEngine marks a builder that cannot be reached or started.
var ErrEngine = errors.New("build engine unavailable")

// Options say which engine to use.
type Options struct {
	// Addr is a running BuildKit; empty means the embedded engine.
	Addr string
	// TLS files for a tcp:// address.
	TLSCA, TLSCert, TLSKey, TLSServerName string
	// Dir holds the embedded engine's state, socket and logs.
	Dir string
	// Binary is the buildkitd executable of the embedded engine: a path,
	// or a name looked for on Env's PATH, then beside hoist.
	Binary string
	// Env is the environment of whoever starts the embedded engine (the
	// step's, or hoist pipeline's own for the engine its steps share):
	// buildkitd runs with it (nil: an empty one), and the programs it
	// runs are looked for on its PATH (iptables, which the CNI plugins
	// run). Nothing here reads the process's environment.
	Env []string
	// Registries configures registry access of the embedded engine.
	Registries []Registry
	// Mirrors of Docker Hub for the embedded engine.
	Mirrors []string
	// Network is the network the run gives RUN steps (PLUGIN_NETWORK:
	// "", "default", "host" or "none"). The embedded engine gives them a
	// network namespace of their own on a bridge; where no bridge can
	// work, only a run that asks for host or none may start it, or use a
	// running one, on the host's network.
	Network string
	// CNIDirs are where the embedded engine looks for the CNI plugins;
	// nil means defaultCNIDirs.
	CNIDirs []string
	// Keep leaves an engine this run started running.
	Keep bool
	// Wait bounds connecting (and starting).
	Wait time.Duration
	Logf func(string, ...any)
}

// Registry is one registry's entry in buildkitd.toml.
type Registry struct {
	Host string
	// HTTP allows plain HTTP (PLUGIN_INSECURE): the engine is told to use
	// it when the registry does not answer TLS (see plainHTTP), and a
	// registry that does is reached over TLS, its certificate verified.
	HTTP     bool
	Insecure bool     // skip TLS verification (PLUGIN_SKIP_TLS_VERIFY)
	CAFiles  []string // extra CAs
	// Mirrors are the registry's mirrors, tried before it for pulls
	// (a buildkitd.toml's mirrors of the host, PLUGIN_BUILDKIT_CONFIG).
	Mirrors []string
	// Base marks the base images' registry (PLUGIN_BASE_IMAGE_REGISTRY):
	// only the engine reaches it, so a running engine without its access
	// cannot serve the step (see Missing).
	Base bool
}

// Engine is a connected BuildKit daemon.
type Engine struct {
	Client *client.Client
	Addr   string
	// Started is set when this run started the daemon.
	Started bool
	// Docker is set for the Docker daemon's built-in BuildKit: it exports
	// into the daemon's image store only.
	Docker bool
	// Network is the worker's network for RUN steps as the daemon reports
	// it: "cni" (a namespace of their own), "host", or "" when unknown.
	Network string
	opts    Options
	// setup is the registry access and mirrors the embedded engine was
	// started with.
	setup setup
	cmd   *exec.Cmd
	done  chan struct{}
	// users is a shared lock on the embedded engine's directory, held while
	// this run uses it (see Close).
	users *os.File
}

// DefaultDir is the embedded engine's state directory:
// $XDG_CACHE_HOME/hoist/buildkit or ~/.cache/hoist/buildkit.
func DefaultDir(lookup func(string) (string, bool)) string {
	if v, ok := lookup("XDG_CACHE_HOME"); ok && v != "" {
		return filepath.Join(v, "hoist", "buildkit")
	}
	home, _ := lookup("HOME")
	if home == "" {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "hoist", "buildkit")
}

// Socket is the embedded engine's address for a state directory.
func Socket(dir string) string { return "unix://" + filepath.Join(dir, "buildkitd.sock") }

// Open connects to the engine the options name, starting the embedded one
// when needed.
func Open(ctx context.Context, o Options) (*Engine, error) {
	if o.Wait <= 0 {
		o.Wait = 60 * time.Second
	}
	if o.Addr != "" {
		c, network, err := connect(ctx, o.Addr, o, o.Wait, nil)
		if err != nil {
			return nil, err
		}
		if network == "host" && !hostAllowed(o.Network) {
			// Its configuration is its owner's: say what it does.
			logf(o, "engine: the BuildKit at %s runs RUN steps on its host's network (its worker's network is host); hoist does not configure a BuildKit it did not start", o.Addr)
		}
		return &Engine{Client: c, Addr: o.Addr, Network: network, opts: o}, nil
	}
	// Several runs may share one embedded engine (parallel steps on one
	// machine): each holds a shared lock on users.lock while it uses it,
	// and only one at a time may start it.
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: engine directory %s: %w", ErrEngine, o.Dir, err)
	}
	startLock, err := lockFile(filepath.Join(o.Dir, "start.lock"), syscall.LOCK_EX)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEngine, err)
	}
	defer unlockFile(startLock)
	users, err := lockFile(filepath.Join(o.Dir, "users.lock"), syscall.LOCK_SH)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEngine, err)
	}
	addr := Socket(o.Dir)
	// A running engine (hoist engine start, or another run's) is used as
	// it was started: what the step asks of it and it lacks is said.
	// Without its socket none runs; with it, one answers at once (whoever
	// started it held start.lock until it did), unless its recorded
	// process lives (busy, or still starting for a run that was killed):
	// that one is given the probe's 2 s, so that no second buildkitd is
	// started on its state.
	probe := time.Duration(0)
	if pidAlive(o.Dir) {
		probe = 2 * time.Second
	}
	if !socketExists(addr) && probe == 0 {
		// Started below.
	} else if c, network, err := connect(ctx, addr, o, probe, nil); err == nil {
		if !isolated(network) && !hostAllowed(o.Network) {
			c.Close()
			unlockFile(users)
			return nil, fmt.Errorf("%w: the running embedded engine at %s runs RUN steps on the host's network (its worker's network is %q: it was started where no bridge could work, for a run with PLUGIN_NETWORK=host or none, or by an earlier hoist), where a RUN step reaches every service on this machine's loopback; stop it (hoist engine stop) so that this run starts one that gives RUN steps a network of their own, or set PLUGIN_NETWORK=host to accept the host's network", ErrEngine, o.Dir, network)
		}
		e := &Engine{Client: c, Addr: addr, Network: network, opts: o, users: users, setup: readSetup(o.Dir)}
		m := e.Missing(o)
		if err := m.Err(o.Dir); err != nil {
			c.Close()
			unlockFile(users)
			return nil, err
		}
		logf(o, "engine: using the running embedded engine at %s", addr)
		if n := m.Note(o.Dir); n != "" {
			logf(o, "%s", n)
		}
		if o.Keep {
			os.Remove(filepath.Join(o.Dir, "ephemeral"))
		}
		return e, nil
	}
	e, err := start(ctx, o)
	if err != nil {
		unlockFile(users)
		return nil, err
	}
	e.users = users
	if !o.Keep {
		// Stopped by the last run that uses it.
		os.WriteFile(filepath.Join(o.Dir, "ephemeral"), nil, 0o644)
	} else {
		os.Remove(filepath.Join(o.Dir, "ephemeral"))
	}
	return e, nil
}

func lockFile(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

func unlockFile(f *os.File) {
	if f != nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

func logf(o Options, format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

var knownScheme = map[string]bool{"unix": true, "tcp": true, "docker-container": true, "kube-pod": true}

// connect dials addr and waits until the daemon lists its workers (or
// exited is closed); it returns the network of RUN steps its first worker
// reports.
func connect(ctx context.Context, addr string, o Options, wait time.Duration, exited <-chan struct{}) (*client.Client, string, error) {
	u, err := url.Parse(addr)
	if err != nil || !knownScheme[u.Scheme] {
		return nil, "", fmt.Errorf("%w: builder address %q: want unix://PATH, tcp://HOST:PORT, docker-container://NAME or kube-pod://NAME", ErrEngine, addr)
	}
	var opts []client.ClientOpt
	if o.TLSCA != "" || o.TLSCert != "" {
		server := o.TLSServerName
		if server == "" {
			server = u.Hostname()
		}
		if o.TLSCA != "" {
			opts = append(opts, client.WithServerConfig(server, o.TLSCA))
		} else {
			opts = append(opts, client.WithServerConfigSystem(server))
		}
		if o.TLSCert != "" {
			opts = append(opts, client.WithCredentials(o.TLSCert, o.TLSKey))
		}
	}
	// An engine this run started (exited is its end) is asked often: it
	// answers within a second, and every step of a CI job pays its start.
	// gRPC's own wait between connection attempts (1 s, then growing)
	// is made as short: the socket does not exist until the engine is up.
	poll := 200 * time.Millisecond
	if exited != nil {
		poll = 25 * time.Millisecond
		opts = append(opts, client.WithGRPCDialOption(grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: poll, Multiplier: 1.5, Jitter: 0.1, MaxDelay: 250 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		})))
	}
	c, err := client.New(ctx, addr, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("%w: builder %s: %w", ErrEngine, addr, err)
	}
	deadline := time.Now().Add(wait)
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var ws []*client.WorkerInfo
		ws, last = c.ListWorkers(pctx)
		cancel()
		if last == nil {
			network := ""
			if len(ws) > 0 {
				network = ws[0].Labels[wlabel.Network]
			}
			return c, network, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		select {
		case <-exited:
			c.Close()
			return nil, "", fmt.Errorf("%w: builder %s exited: %w", ErrEngine, addr, last)
		case <-time.After(poll):
		}
	}
	c.Close()
	return nil, "", fmt.Errorf("%w: builder %s did not answer within %s: %w", ErrEngine, addr, wait, last)
}

// start runs the embedded buildkitd in o.Dir, which Open made, with a
// bridge network for RUN steps; on the host's network only where no
// bridge can work and the run asks for host or none.
func start(ctx context.Context, o Options) (*Engine, error) {
	bin, err := findBinary(o.Binary, envlist.Value(o.Env, "PATH"))
	if err != nil {
		return nil, err
	}
	n, err := BridgeFor(o.Dir, o.CNIDirs, envlist.Value(o.Env, "PATH"))
	if err == nil {
		var e *Engine
		if e, err = launch(ctx, o, bin, n); err == nil || !errors.Is(err, ErrNoBridge) {
			return e, err
		}
	}
	if !hostAllowed(o.Network) {
		return nil, fmt.Errorf("%w: %w; hoist does not fall back to the host's network, where a RUN step reaches every service on this machine's loopback: install the CNI plugins and iptables (Debian: apt-get install containernetworking-plugins iptables) and run the engine as root (in a container: privileged), or set PLUGIN_NETWORK=host to run RUN steps on the host's network (none: no network), or build on a BuildKit of your own (PLUGIN_BUILDER_REMOTE_CONN)", ErrEngine, err)
	}
	logf(o, "engine: %v; starting the engine on the host's network, which only runs with PLUGIN_NETWORK=host or none will use", err)
	return launch(ctx, o, bin, Network{Mode: "host"})
}

// launch starts buildkitd with network n and waits until it answers. A
// bridge it cannot set up is an ErrNoBridge.
func launch(ctx context.Context, o Options, bin string, n Network) (*Engine, error) {
	cfg := filepath.Join(o.Dir, "buildkitd.toml")
	regs := make([]Registry, len(o.Registries))
	for i, r := range o.Registries {
		// BuildKit's http = true is plain HTTP only; with insecure = true
		// it tries TLS first but verifies nothing. Plain HTTP that is
		// merely allowed is asked for only when the registry has no TLS.
		if r.HTTP && !r.Insecure {
			r.HTTP = plainHTTP(ctx, r.Host, o.Wait)
			if !r.HTTP {
				logf(o, "engine: %s answers TLS: reached over TLS, its certificate verified (PLUGIN_INSECURE allows plain HTTP only)", r.Host)
			}
		}
		regs[i] = r
	}
	if err := os.WriteFile(cfg, []byte(Config(regs, o.Mirrors, n)+TraceSocket(o.Dir)), 0o644); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEngine, err)
	}
	addr := Socket(o.Dir)
	os.Remove(strings.TrimPrefix(addr, "unix://"))
	logPath := filepath.Join(o.Dir, "buildkitd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEngine, err)
	}
	// The snapshotter is buildkitd's "auto": overlayfs where the state
	// directory allows it, native (copies) elsewhere, as inside a container.
	cmd := exec.Command(bin, "--root", filepath.Join(o.Dir, "root"), "--addr", addr,
		"--config", cfg,
		// PLUGIN_NETWORK=host needs it; the engine is this user's own.
		"--allow-insecure-entitlement", "network.host")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// buildkitd gets what it runs with, not the step's secrets: its PATH
	// (runc, the CNI plugins, iptables), its home and temporary
	// directories, the CA settings and the proxies of its pulls. Never
	// nil: nil would be the process's environment.
	cmd.Env = append([]string{}, envlist.Filter(o.Env, buildkitdEnv)...)
	// Its own process group: a Ctrl-C to hoist does not kill it mid-export,
	// hoist stops it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%w: start %s: %w", ErrEngine, bin, err)
	}
	os.WriteFile(filepath.Join(o.Dir, "buildkitd.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	done := make(chan struct{})
	go func() { cmd.Wait(); logFile.Close(); close(done) }()
	e := &Engine{Addr: addr, Started: true, opts: o, cmd: cmd, done: done, setup: setupOf(regs, o.Mirrors)}
	start := time.Now()
	c, network, err := connect(ctx, e.Addr, o, o.Wait, done)
	if err != nil {
		e.stop()
		b, _ := os.ReadFile(logPath)
		if n.Mode == "bridge" && strings.Contains(string(b), "CNI setup error") {
			dropNamespaces(o.Dir)
			return nil, fmt.Errorf("%w: buildkitd could not set up the bridge %s (%s); its log (%s) %s", ErrNoBridge, n.Bridge, n.Subnet, logPath, logSays(string(b)))
		}
		return nil, fmt.Errorf("%w: the embedded buildkitd did not start: %v; its log (%s) %s", ErrEngine, err, logPath, logSays(string(b)))
	}
	e.Client, e.Network = c, network
	runs := "RUN steps on the host's network"
	if n.Mode == "bridge" {
		runs = fmt.Sprintf("RUN steps on bridge %s, %s", n.Bridge, n.Subnet)
	}
	logf(o, "engine: started buildkitd (pid %d, state %s, %s) in %.1fs", cmd.Process.Pid, o.Dir, runs, time.Since(start).Seconds())
	return e, nil
}

// logSays is what a buildkitd log that ends in a fatal error says: that
// error's first line (buildkitd prints its stack after it), else the
// log's last lines.
func logSays(log string) string {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if msg, ok := strings.CutPrefix(lines[i], "buildkitd: "); ok && !strings.HasPrefix(msg, "got SIGTERM") {
			return "says: " + tail(msg, 800)
		}
	}
	return "ends: " + tail(log, 800)
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// findBinary looks for buildkitd on pathList (the PATH of Options.Env),
// then beside the hoist executable.
func findBinary(name, pathList string) (string, error) {
	if name == "" {
		name = "buildkitd"
	}
	if p, ok := envlist.LookPath(name, pathList, envlist.SelfDir()); ok {
		return p, nil
	}
	if strings.Contains(name, "/") {
		return "", fmt.Errorf("%w: buildkitd not found at %s (or not executable)", ErrEngine, name)
	}
	return "", fmt.Errorf("%w: buildkitd is not on PATH nor beside hoist; install it (scripts/setup.sh builds the pinned one into bin/), set PLUGIN_BUILDKITD to its path, or point PLUGIN_BUILDER_REMOTE_CONN at a running BuildKit", ErrEngine)
}

// ContentDir is the engine's content store when it is the embedded engine
// (its files are on this machine and readable), else "".
func (e *Engine) ContentDir() string {
	if e.opts.Addr != "" || e.Docker || e.opts.Dir == "" {
		return ""
	}
	// root/runc-<snapshotter>/content
	matches, _ := filepath.Glob(filepath.Join(e.opts.Dir, "root", "runc-*", "content"))
	if len(matches) != 1 {
		return ""
	}
	return matches[0]
}

// socketExists reports whether the unix socket of addr exists.
func socketExists(addr string) bool {
	_, err := os.Stat(strings.TrimPrefix(addr, "unix://"))
	return err == nil
}

// pidAlive reports whether the process buildkitd.pid of dir records
// exists.
func pidAlive(dir string) bool {
	pid, err := recordedPid(dir)
	return err == nil && syscall.Kill(pid, 0) == nil
}

// recordedPid is the pid in dir's buildkitd.pid, written by the run that
// started the engine.
func recordedPid(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "buildkitd.pid"))
	if err != nil {
		return 0, fmt.Errorf("no embedded engine is recorded in %s", dir)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file in %s", dir)
	}
	return pid, nil
}
