package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hoist-build/hoist/internal/envlist"
)

// LocalRegistry is a distribution registry hoist started on loopback to
// stand in for a registry a pipeline pushes to.
type LocalRegistry struct {
	// Host is the registry the pipeline names; Addr where it really is.
	Host, Addr string
	Dir        string
	PID        int
	cmd        *exec.Cmd
}

// ErrLocal marks local registries that cannot be started.
var ErrLocal = errors.New("local registries")

// findRegistryBinary finds the distribution registry: bin, else
// docker-registry (Debian's package) or registry, on pathList (hoist
// pipeline's own PATH).
func findRegistryBinary(bin, pathList string) (string, error) {
	names := []string{"docker-registry", "registry"}
	if bin != "" {
		names = []string{bin}
	}
	for _, n := range names {
		if p, ok := envlist.LookPath(n, pathList); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: --local needs the CNCF distribution registry (%s) on PATH: apt-get install docker-registry, or give its path with --registry-binary", ErrLocal, strings.Join(names, " or "))
}

// StartLocalRegistries starts one registry per host, each on a loopback
// port of its own (see startLocal) with its storage under dir/<host>. On
// error the ones started are stopped.
func StartLocalRegistries(ctx context.Context, bin, dir string, hosts []string) ([]*LocalRegistry, error) {
	var out []*LocalRegistry
	for _, h := range hosts {
		r, err := startLocal(ctx, bin, filepath.Join(dir, strings.ReplaceAll(h, ":", "_")), h)
		if err != nil {
			StopLocalRegistries(out)
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// listening is the registry's log line that says where it listens.
var listening = regexp.MustCompile(`msg="listening on (127\.0\.0\.1:[0-9]+)"`)

// startLocal starts a registry that binds a port the kernel picks
// (127.0.0.1:0) itself and says which in its log: no port is chosen,
// released and bound again, so no other process on this machine can take
// it in between and receive the pipeline's pushes.
func startLocal(ctx context.Context, bin, dir, host string) (*LocalRegistry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLocal, err)
	}
	// Info, for the "listening on" line; no access log.
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: info, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:0}\n",
		filepath.Join(dir, "data"))
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLocal, err)
	}
	logPath := filepath.Join(dir, "registry.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLocal, err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C to hoist reaches hoist, which
	// stops it; with --keep it outlives hoist.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%w: start %s: %w", ErrLocal, bin, err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	r := &LocalRegistry{Host: host, Dir: dir, PID: cmd.Process.Pid, cmd: cmd}
	r.Addr, err = waitListening(ctx, logPath, exited)
	if err == nil {
		err = waitReady(ctx, r.Addr, exited)
	}
	if err != nil {
		r.Stop()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%w: the registry for %s did not start: %w\n%s", ErrLocal, host, err, strings.TrimSpace(string(log)))
	}
	return r, nil
}

// waitListening waits, at most 15 s, for the registry's log to say where
// it listens.
func waitListening(ctx context.Context, logPath string, exited <-chan struct{}) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		if b, err := os.ReadFile(logPath); err == nil {
			if m := listening.FindSubmatch(b); m != nil {
				return string(m[1]), nil
			}
		}
		select {
		case <-exited:
			return "", errors.New("it exited")
		case <-ctx.Done():
			return "", fmt.Errorf("its log never said where it listens: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitReady waits, at most 15 s, until the registry answers /v2/.
func waitReady(ctx context.Context, addr string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("it exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the registry (by its PID) and waits for it, at most 10 s.
func (r *LocalRegistry) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := r.cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.cmd.Process.Kill()
}

// StopLocalRegistries stops every registry.
func StopLocalRegistries(rs []*LocalRegistry) {
	for _, r := range rs {
		r.Stop()
	}
}

// Routes maps each registry's host to its address.
func Routes(rs []*LocalRegistry) map[string]string {
	out := map[string]string{}
	for _, r := range rs {
		out[r.Host] = r.Addr
	}
	return out
}

// Content is one tag in a local registry.
type Content struct {
	Ref    string // as the pipeline names it
	Digest string
}

// List reads what the registry holds: every repository and tag, with its
// digest (bounded: 1000 repositories).
func (r *LocalRegistry) List(ctx context.Context) ([]Content, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	reg, err := name.NewRegistry(r.Addr, name.Insecure)
	if err != nil {
		return nil, err
	}
	repos, err := remote.Catalog(ctx, reg, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.Addr, err)
	}
	var out []Content
	for _, repo := range repos[:min(len(repos), 1000)] {
		rp := reg.Repo(repo)
		tags, err := remote.List(rp, remote.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("list %s/%s: %w", r.Addr, repo, err)
		}
		sort.Strings(tags)
		for _, t := range tags {
			d, err := remote.Head(rp.Tag(t), remote.WithContext(ctx))
			if err != nil {
				return nil, fmt.Errorf("read %s/%s:%s: %w", r.Addr, repo, t, err)
			}
			host := r.Host
			if host == name.DefaultRegistry {
				host = "docker.io"
			}
			out = append(out, Content{Ref: host + "/" + repo + ":" + t, Digest: d.Digest.String()})
		}
	}
	return out, nil
}
