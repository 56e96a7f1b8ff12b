package registry

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://index.docker.io/v1/": "index.docker.io",
		"docker.io":                   "index.docker.io",
		"":                            "index.docker.io",
		"reg.example.com:5000/":       "reg.example.com:5000",
		"http://127.0.0.1:5000/v2/":   "127.0.0.1:5000",
		"ghcr.io/org":                 "ghcr.io",
	} {
		got, err := NormalizeHost(in)
		if err != nil || got != want {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestDestinations(t *testing.T) {
	t.Parallel()
	got, err := Destinations("reg.example.com/team/app", []string{"1.0", "latest", "1.0"}, []string{"other.example.com/app:x", "reg.example.com/team/app:latest"}, false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range got {
		names = append(names, d.Name())
	}
	if d := cmp.Diff([]string{"reg.example.com/team/app:1.0", "reg.example.com/team/app:latest", "other.example.com/app:x"}, names); d != "" {
		t.Error(d)
	}
	_, err = Destinations("Bad/Repo", []string{"-x"}, []string{"a/b@sha256:" + strings.Repeat("0", 64)}, false)
	if !errors.Is(err, ErrReference) || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("want two joined errors, got %v", err)
	}
	if _, err := Destinations("", []string{"latest"}, nil, false); err == nil || !strings.Contains(err.Error(), "repository name to publish image must be specified") {
		t.Errorf("no repository: %v", err)
	}
	if _, err := Destinations("app", []string{"a:b"}, nil, false); err == nil {
		t.Error("a tag with a colon was accepted")
	}
}

func resolve(t *testing.T, k *Keychain, reg string) authn.AuthConfig {
	t.Helper()
	r, _ := name.NewRegistry(reg)
	a, err := k.Resolve(r)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := a.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return *ac
}

func TestKeychain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOmh1YnB3"},"cfg.example.com":{"auth":"Y2ZnOmNmZ3B3"}}}`), 0o600)
	k, err := NewKeychain(Credentials{
		Registry: "https://push.example.com/v1/", Username: "u", Password: "p",
		Lookup: func(s string) (string, bool) { return map[string]string{"DOCKER_CONFIG": dir}[s], s == "DOCKER_CONFIG" },
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resolve(t, k, "push.example.com"); got.Username != "u" || got.Password != "p" {
		t.Errorf("static: %+v", got)
	}
	if got := resolve(t, k, "cfg.example.com"); got.Username != "cfg" || got.Password != "cfgpw" {
		t.Errorf("config: %+v", got)
	}
	if got := resolve(t, k, "docker.io"); got.Username != "hub" || got.Password != "hubpw" {
		t.Errorf("docker hub key: %+v", got)
	}
	if got := resolve(t, k, "anon.example.com"); got != (authn.AuthConfig{}) {
		t.Errorf("anonymous: %+v", got)
	}

	// PLUGIN_CONFIG as JSON content; the error never repeats the content.
	k, err = NewKeychain(Credentials{Config: `{"auths":{"x.example.com":{"username":"a","password":"b"}}}`})
	if err != nil || resolve(t, k, "x.example.com").Password != "b" {
		t.Errorf("JSON config: %v", err)
	}
	_, err = NewKeychain(Credentials{Config: `{"auths": {"x": {"password": "s3cret-value"`})
	if !errors.Is(err, ErrCredentials) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad JSON config: %v", err)
	}
	if _, err := NewKeychain(Credentials{Password: "p", DefaultFor: "r.example.com"}); !errors.Is(err, ErrCredentials) {
		t.Errorf("password without user: %v", err)
	}
}

// References stay inside the distribution API: paths that would leave
// /v2/NAME/ and tags a registry refuses are errors before any request.
func TestDestinationsFollowTheSpec(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		repo  string
		tags  []string
		extra []string
		want  string
	}{
		{"reg.example.com/../../etc", []string{"1"}, nil, `repository path component ".."`},
		{"reg.example.com/team//app", []string{"1"}, nil, `repository path component ""`},
		{"reg.example.com/a..b", []string{"1"}, nil, `repository path component "a..b"`},
		{"reg.example.com/app", []string{"-rm"}, nil, `tag "-rm"`},
		{"reg.example.com/app", []string{".hidden"}, nil, `tag ".hidden"`},
		{"", nil, []string{"reg.example.com/team/../x:1"}, `repository path component ".."`},
		{"", nil, []string{"reg.example.com/x:-1"}, `-1`},
	} {
		_, err := Destinations(c.repo, c.tags, c.extra, false)
		if !errors.Is(err, ErrReference) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %v %v: error %v, want %q", c.repo, c.tags, c.extra, err, c.want)
		}
	}
	for _, ok := range []string{"reg.example.com/a_b/c__d/e--f/g.h", "reg.example.com/app"} {
		if _, err := Destinations(ok, []string{"v1.2.3_rc-1", "_x", "latest"}, nil, false); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// PLUGIN_CONFIG as CI secrets hold it: with a byte-order mark, or base64;
// a value that is neither JSON nor a path is refused without being echoed.
func TestConfigForms(t *testing.T) {
	t.Parallel()
	const auth = "aG9pc3Q6czNjcmV0LWNvbmZpZy1wYXNz" // hoist:s3cret-config-pass
	js := `{"auths":{"reg.example.com":{"auth":"` + auth + `"}}}`
	for form, v := range map[string]string{"BOM": "\ufeff" + js, "base64": base64.StdEncoding.EncodeToString([]byte(js))} {
		k, err := NewKeychain(Credentials{Config: v})
		if err != nil {
			t.Fatalf("%s: %v", form, err)
		}
		reg, _ := name.NewRegistry("reg.example.com")
		a, err := k.Resolve(reg)
		if err != nil {
			t.Fatal(err)
		}
		ac, _ := a.Authorization()
		if ac.Username != "hoist" || ac.Password != "s3cret-config-pass" {
			t.Errorf("%s: resolved %+v", form, ac)
		}
		if !slices.Contains(k.Secrets(), auth) {
			t.Errorf("%s: the auth string is not among the secrets to mask", form)
		}
	}
	_, err := NewKeychain(Credentials{Config: "config: " + js})
	if !errors.Is(err, ErrCredentials) || strings.Contains(err.Error(), auth) || !strings.Contains(err.Error(), "not shown") {
		t.Errorf("error %v", err)
	}
}

// countingTransport counts the requests that reach it.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	c.n.Add(1)
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
}

// Plain HTTP beyond loopback is refused before anything is sent, unless
// PLUGIN_INSECURE allows it (and then it is said, once per host); loopback
// registries may use it. go-containerregistry alone would fall back to
// HTTP for a private address and send basic credentials in clear.
func TestPlainHTTPOnlyOnLoopbackOrWhenAllowed(t *testing.T) {
	t.Parallel()
	var said []string
	for _, c := range []struct {
		url      string
		insecure bool
		sent     bool
	}{
		{"http://10.1.2.3:5000/v2/", false, false},
		{"http://192.168.1.10/v2/", false, false},
		{"http://registry.internal:5000/v2/", false, false},
		{"http://127.0.0.1:5000/v2/", false, true},
		{"http://[::1]:5000/v2/", false, true},
		{"http://localhost:5000/v2/", false, true},
		{"http://LOCALHOST:5000/v2/", false, true},
		{"http://localhost.attacker.example:5000/v2/", false, false},
		{"http://127.0.0.1.attacker.example/v2/", false, false},
		{"https://10.1.2.3:5000/v2/", false, true},
		{"http://10.1.2.3:5000/v2/", true, true},
		{"http://10.1.2.3:5000/v2/x", true, true},
	} {
		inner := &countingTransport{}
		g := &httpGuard{inner: inner, insecure: c.insecure, told: map[string]bool{}, logf: func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) }}
		req, _ := http.NewRequest(http.MethodGet, c.url, nil)
		req.Header.Set("Authorization", "Basic c2VjcmV0")
		_, err := g.RoundTrip(req)
		if sent := inner.n.Load() == 1; sent != c.sent || (err == nil) != c.sent {
			t.Errorf("%s insecure=%v: sent %v, error %v", c.url, c.insecure, sent, err)
		}
		if !c.sent && (!errors.Is(err, ErrPlainHTTP) || !strings.Contains(err.Error(), "PLUGIN_INSECURE=true")) {
			t.Errorf("%s: error %v", c.url, err)
		}
	}
	if len(said) != 2 || said[0] != "using plain HTTP to 10.1.2.3:5000 (PLUGIN_INSECURE)" {
		t.Errorf("said %q", said)
	}
	said = nil
	g := &httpGuard{inner: &countingTransport{}, insecure: true, told: map[string]bool{}, logf: func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) }}
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, "http://10.1.2.3:5000/v2/", nil)
		g.RoundTrip(req)
	}
	if len(said) != 1 {
		t.Errorf("one host, three requests: said %q", said)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"3": 3 * time.Second, "0": 0, "-5": 0, "": 0, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
	} {
		if got := ParseRetryAfter(v, now); got != want {
			t.Errorf("%q: %s, want %s", v, got, want)
		}
	}
}

// Whatever repository and tag a step is given: no panic, and what is
// accepted is a reference the distribution API takes, whose URL path
// stays under /v2/.
func FuzzDestinations(f *testing.F) {
	for _, s := range [][2]string{{"reg.example.com/team/app", "1.0"}, {"app", "latest"}, {"reg:5000/../../etc", "x"}, {"r/a", "-x"}, {"r/a//b", "."}, {"UPPER/app", "v1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, repo, tag string) {
		got, err := Destinations(repo, []string{tag}, nil, false)
		if err != nil {
			return
		}
		for _, d := range got {
			if err := CheckSpec(d); err != nil {
				t.Fatalf("%q:%q accepted as %s: %v", repo, tag, d, err)
			}
			if strings.Contains(d.RepositoryStr(), "..") || strings.Contains(d.RepositoryStr(), "//") {
				t.Fatalf("%q accepted with path %q", repo, d.RepositoryStr())
			}
		}
	})
}
