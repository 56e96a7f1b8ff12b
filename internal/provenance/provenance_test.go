package provenance

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/cosign/v3/pkg/cosign/attestation"
)

// A build argument is recorded as Public makes it; withheld when its
// value still holds a known secret, or its name says secret; the proxy
// variables are not recorded at all.
func TestSplitArgs(t *testing.T) {
	args := map[string]string{"VERSION": "1.2", "NPM_TOKEN": "n-1", "db_password": "p-2", "MIRROR": "https://u:s3cr3t@m.example",
		"PIP_INDEX_URL": "https://ci:pip-pw@pypi.example/simple", "OTHER": "s3cr3t in the clear", "PLAIN": "x",
		"HTTPS_PROXY": "http://p:proxy-pw@proxy:3128", "no_proxy": "localhost", "All_Proxy": "socks5://p:pw@proxy"}
	kept, withheld := SplitArgs(args, func(v string) bool { return strings.Contains(v, "s3cr3t") })
	if !slices.Equal(withheld, []string{"NPM_TOKEN", "OTHER", "db_password"}) {
		t.Errorf("withheld %v", withheld)
	}
	want := map[string]string{"VERSION": "1.2", "PLAIN": "x", "MIRROR": "https://m.example", "PIP_INDEX_URL": "https://pypi.example/simple"}
	if !maps.Equal(kept, want) {
		t.Errorf("kept %v, want %v", kept, want)
	}
}

// Public keeps a URL's scheme, host, port, path and query keys, and
// nothing else of it; a schemeless login goes too; image references and
// git URLs stay as they are.
func TestPublic(t *testing.T) {
	for in, want := range map[string]string{
		"https://ci:secret@host/simple":                                                       "https://host/simple",
		"https://ghp_token@github.com/org/repo.git":                                           "https://github.com/org/repo.git",
		"--index-url https://u:p@h:8443/s --trusted-host h":                                   "--index-url https://h:8443/s --trusted-host h",
		"https://s3.example/b/o?X-Amz-Signature=abc&v&x=1#t":                                  "https://s3.example/b/o?X-Amz-Signature=****&****&x=****#****",
		"ci:secret@pypi.example/simple":                                                       "pypi.example/simple",
		"x=ci:secret@pypi.example":                                                            "x=pypi.example",
		"alpine:3.19@sha256:4bcff63911fcb4448bd4fdacec207030997caf25e9bea4045fa6c8c44de311d1": "alpine:3.19@sha256:4bcff63911fcb4448bd4fdacec207030997caf25e9bea4045fa6c8c44de311d1",
		"git@github.com:org/repo.git":                                                         "git@github.com:org/repo.git",
		"git+https://git.example.com/a.git@refs/heads/main":                                   "git+https://git.example.com/a.git@refs/heads/main",
		"pkg:docker/127.0.0.1:5000/base@1?platform=linux%2Famd64":                             "pkg:docker/127.0.0.1:5000/base@1?platform=linux%2Famd64",
		"plain value, 1.2.3":                                                                  "plain value, 1.2.3",
	} {
		if got, ok := Public(in); !ok || got != want {
			t.Errorf("Public(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if got, ok := Public("http://u:p@[::1:bad/x"); ok {
		t.Errorf("an unparsable URL is published as %q", got)
	}
}

// The predicate is SLSA provenance v1 as cosign's own statement
// generator (strict protojson of the in-toto attestation types) reads
// it, for a build and for a push-only step.
func TestPredicateIsSLSAv1(t *testing.T) {
	now := time.Date(2026, 11, 28, 5, 0, 0, 0, time.UTC)
	scan := &Scan{Record: "/w/.hoist/scans/sha256/ab.json", RecordDigest: "sha256:0011", Passed: true, Verdict: "passed (no findings)", Scanner: "trivy 0.74.0", ScannedAt: now}
	for _, f := range []Facts{
		{Source: Source{Repository: "https://git.example.com/a.git", Ref: "refs/heads/main", Commit: "abc"}, Invocation: "https://ci/1",
			Build: &Build{Dockerfile: "Dockerfile", DockerfileDigest: "sha256:ff", Context: ".", Platforms: []string{"linux/amd64"},
				Args: map[string]string{"V": "1"}, Withheld: []string{"TOKEN"}, BaseImages: []Dependency{{URI: "pkg:docker/alpine@3.19", Digest: map[string]string{"sha256": "ee"}}}},
			Builder: "buildkit", BuilderVersion: "v0.34.2", Hoist: "dev", Scan: scan, Started: now, Finished: now.Add(time.Minute)},
		{From: "docker-archive image.tar", Builder: "push", Hoist: "dev", Scan: scan},
		{Builder: "push", Hoist: "dev"},
	} {
		b, err := Predicate(f)
		if err != nil {
			t.Fatal(err)
		}
		st, err := attestation.GenerateStatement(attestation.GenerateOpts{Predicate: bytes.NewReader(b), Type: "slsaprovenance1", Digest: "aa", Repo: "r/app"})
		if err != nil {
			t.Fatalf("cosign does not read the predicate: %v\n%s", err, b)
		}
		out, _ := json.Marshal(st)
		if !strings.Contains(string(out), `"buildType":"`+BuildType) || (f.Scan != nil) != strings.Contains(string(out), ScanByproduct) {
			t.Errorf("statement %s", out)
		}
	}
}

// Whatever field a URL is in, the predicate holds it without its login.
func TestPredicateHasNoLogin(t *testing.T) {
	f := Facts{Source: Source{Repository: "https://git:clone-pw@git.example.com/a.git", Commit: "abc"}, Invocation: "https://tok:inv-pw@ci.example/1",
		Build: &Build{Dockerfile: "Dockerfile", Labels: map[string]string{"org.opencontainers.image.source": "https://u:label-pw@git.example.com/a"},
			BaseImages: []Dependency{{URI: "https://u:dep-pw@files.example/base.tar", Digest: map[string]string{"sha256": "ee"}}}},
		Builder: "buildkit", Hoist: "dev"}
	b, err := Predicate(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"git.example.com/a.git", "ci.example/1", "https://git.example.com/a", "files.example/base.tar"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the predicate lacks %s: %s", want, b)
		}
	}
	for _, bad := range []string{"clone-pw", "inv-pw", "label-pw", "dep-pw", "git:", "tok:", "u:"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("the predicate holds %q: %s", bad, b)
		}
	}
}

// The clone URL's credentials never reach the provenance.
func TestSourceFromCI(t *testing.T) {
	env := map[string]string{"DRONE_GIT_HTTP_URL": "https://x-access-token:ghs_secret@git.example.com/a.git", "CI_COMMIT_SHA": "abc", "DRONE_BUILD_NUMBER": "7"}
	s, inv := SourceFromCI(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if s.Repository != "https://git.example.com/a.git" || s.Commit != "abc" || inv != "7" {
		t.Errorf("source %+v, invocation %q", s, inv)
	}
}

// HasLogin finds a URL's login, with or without a scheme, and a token
// given as an HTTP URL's user; not an image reference's digest, an
// e-mail address, a git ssh user or a plain URL.
func TestHasLogin(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{
		"https://ci:pw@pypi.example/simple":             true,
		"--index-url https://ci:pw@pypi.example/simple": true,
		"ci:pw@pypi.example/simple":                     true,
		"a=1 ci:pw@pypi.example":                        true,
		"https://ghp_token123@github.com/org/repo.git":  true,
		"HTTP://user@host.example/":                     true,
		"postgres://app:pw@db.example:5432/app":         true,
		"https://bad:p%zz@host.example/":                true,
		"https://pypi.example/simple":                   false,
		"https://pypi.example/simple?token=abc":         false,
		"alpine:3.19@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": false,
		"ssh://git@github.com/org/repo.git":                                                   false,
		"git@github.com:org/repo.git":                                                         false,
		"ops@example.com":                                                                     false,
		"1.2.3":                                                                               false,
	} {
		if got := HasLogin(v); got != want {
			t.Errorf("HasLogin(%q) = %v, want %v", v, got, want)
		}
	}
}
