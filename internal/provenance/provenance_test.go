package provenance

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/cosign/v3/pkg/cosign/attestation"
)

// A build argument is withheld when its name says secret or its value
// holds a known secret; its value appears nowhere.
func TestSplitArgs(t *testing.T) {
	args := map[string]string{"VERSION": "1.2", "NPM_TOKEN": "n-1", "db_password": "p-2", "MIRROR": "https://u:s3cr3t@m.example", "PLAIN": "x"}
	kept, withheld := SplitArgs(args, func(v string) bool { return strings.Contains(v, "s3cr3t") })
	if !slices.Equal(withheld, []string{"MIRROR", "NPM_TOKEN", "db_password"}) {
		t.Errorf("withheld %v", withheld)
	}
	if len(kept) != 2 || kept["VERSION"] != "1.2" || kept["PLAIN"] != "x" {
		t.Errorf("kept %v", kept)
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

// The clone URL's credentials never reach the provenance.
func TestSourceFromCI(t *testing.T) {
	env := map[string]string{"DRONE_GIT_HTTP_URL": "https://x-access-token:ghs_secret@git.example.com/a.git", "CI_COMMIT_SHA": "abc", "DRONE_BUILD_NUMBER": "7"}
	s, inv := SourceFromCI(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if s.Repository != "https://git.example.com/a.git" || s.Commit != "abc" || inv != "7" {
		t.Errorf("source %+v, invocation %q", s, inv)
	}
}
