package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// result is what a user sees of one hoist run.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return "exit " + itoa(r.code) + "\n--- stdout:\n" + r.stdout + "--- stderr:\n" + r.stderr
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// hoist runs hoist in-process, as a plugin when args is empty, with only
// the given environment (plus PLUGIN_PROGRESS=plain, an unreachable
// DOCKER_HOST and the test's PATH unless set).
func hoist(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	return hoistIn(t, t.TempDir(), env, args...)
}

// hoistIn is hoist with dir as the working directory.
func hoistIn(t *testing.T, dir string, env map[string]string, args ...string) result {
	t.Helper()
	if _, ok := env["PLUGIN_PROGRESS"]; !ok {
		env["PLUGIN_PROGRESS"] = "plain"
	}
	if _, ok := env["DOCKER_HOST"]; !ok {
		env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
	}
	// A process has a PATH: hoist finds the programs it runs (buildkitd,
	// iptables, Trivy, a Run step's shell) on the step's.
	if _, ok := env["PATH"]; !ok {
		env["PATH"] = os.Getenv("PATH")
	}
	var stdout, stderr syncBuffer
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := Main(ctx, args, Env{
		Lookup:  func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		WorkDir: dir,
		Environ: environ,
		Stdout:  &stdout,
		Stderr:  &stderr,
	})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustPush runs hoist and fails the test unless it exits 0.
func mustPush(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	r := hoist(t, env, args...)
	if r.code != 0 {
		t.Fatalf("hoist failed:\n%s", r)
	}
	return r
}

// digestOf reads a reference's manifest digest from its registry with
// crane, a client independent of hoist.
func digestOf(t *testing.T, reg *harness.Registry, ref string) string {
	t.Helper()
	return reg.Digest(t, ref)
}

// assertPushed reads ref's digest back from its registry with crane and
// checks that hoist's summary and stdout name that digest.
func assertPushed(t *testing.T, r result, reg *harness.Registry, ref string) {
	t.Helper()
	got := digestOf(t, reg, ref)
	assertSummary(t, r, ref, got)
	if out := strings.TrimSpace(r.stdout); out != got {
		t.Errorf("stdout says %q, %s holds %s", out, ref, got)
	}
}

// tagsOf lists a repository's tags straight from the registry API; empty
// when the repository does not exist.
func tagsOf(t *testing.T, reg *harness.Registry, repo string) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, reg.URL()+"/v2/"+repo+"/tags/list", nil)
	if reg.User != "" {
		req.SetBasicAuth(reg.User, reg.Password)
	}
	resp, err := reg.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var body struct{ Tags []string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Tags
}

func assertContains(t *testing.T, r result, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(r.stdout+r.stderr, w) {
			t.Errorf("output lacks %q:\n%s", w, r)
		}
	}
}

func assertNotContains(t *testing.T, r result, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(r.stdout+r.stderr, b) {
			t.Errorf("output contains %q:\n%s", b, r)
		}
	}
}

// assertSummary checks the summary line of ref: it shows digest and ok.
func assertSummary(t *testing.T, r result, ref, digest string) {
	t.Helper()
	for _, line := range strings.Split(r.stderr, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == ref {
			if f[1] != digest || !strings.Contains(line, "ok (") {
				t.Errorf("summary line of %s: %q", ref, line)
			}
			return
		}
	}
	t.Errorf("no summary line for %s:\n%s", ref, r)
}

// merged returns one map with the entries of all, later ones winning.
func merged(all ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range all {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
