// Package provenance writes the SLSA provenance v1 predicate of a step:
// how the image it pushed came to be, from what the step knows (the CI's
// source variables, the Dockerfile, the build arguments that are not
// secrets, the base images as the builder resolved them, the builder and
// hoist versions, the scan record). The predicate is signed and attached
// to the image by package sign.
package provenance

import (
	"encoding/json"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hoist-build/hoist/internal/envlist"
)

// BuildType names what a hoist step does, for a consumer of the
// provenance: the parameters below are this type's.
const BuildType = "https://github.com/hoist-build/hoist/blob/main/docs/provenance.md#v1"

// BuilderID is the builder.id of hoist's provenance.
const BuilderID = "https://github.com/hoist-build/hoist"

// Source is where the CI checked the code out.
type Source struct {
	Repository string // the clone URL
	Ref        string // the branch or tag ref
	Commit     string // the full commit SHA
}

// Dependency is a resolved input: a base image with its digest, the
// Dockerfile, the source tree.
type Dependency struct {
	URI    string
	Digest map[string]string
	Name   string
}

// Scan is the scan record a step checked or wrote.
type Scan struct {
	// Record is the record file's path, RecordDigest its content's digest.
	Record, RecordDigest string
	Passed               bool
	Verdict              string
	Scanner              string
	ScannedAt            time.Time
	// Database is the vulnerability database's artifact (REPO:TAG) and
	// DatabaseDigest its manifest digest, when hoist fetched it; both
	// empty for a database of unknown origin.
	Database, DatabaseDigest string
}

// Facts are what a step knows of the image it pushed.
type Facts struct {
	Source Source
	// Invocation identifies the CI run (its build link, or number).
	Invocation string
	// Build is nil for a push-only step, which names its source instead.
	Build *Build
	// From is where a push-only step took the image from.
	From string
	// Builder is buildkit or kaniko (or "push" for push-only), with its
	// version; Hoist is hoist's.
	Builder, BuilderVersion, Hoist string
	Scan                           *Scan
	Started, Finished              time.Time
}

// Build is what a build step was asked.
type Build struct {
	Dockerfile, DockerfileDigest string
	Context                      string
	Target                       string
	Platforms                    []string
	// Args are the build arguments that are not secrets; Withheld names
	// those that were left out because they are (their values never
	// appear).
	Args     map[string]string
	Withheld []string
	Labels   map[string]string
	// BaseImages are the images FROM resolved to, as the builder
	// resolved them.
	BaseImages []Dependency
}

// secretWords mark a build argument's name as holding a secret. The
// name only ever withholds more: what decides is the value (SplitArgs).
var secretWords = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "AUTH", "PRIVATE", "CERT"}

// SplitArgs is what the provenance says of the build arguments: kept are
// those it records, each value as Public makes it; withheld names those
// whose value is left out: a value that still holds a known secret
// (isSecret) once public, a value with a URL that cannot be parsed, or a
// name that says secret. The proxy variables are in neither
// (envlist.IsProxy: BuildKit keeps them out of the image's history, as
// they often carry a proxy's login).
func SplitArgs(args map[string]string, isSecret func(string) bool) (kept map[string]string, withheld []string) {
	kept = map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(args)) {
		if envlist.IsProxy(k) {
			continue
		}
		v, ok := Public(args[k])
		secret := !ok || (isSecret != nil && isSecret(v))
		up := strings.ToUpper(k)
		for _, w := range secretWords {
			if strings.Contains(up, w) {
				secret = true
			}
		}
		if secret {
			withheld = append(withheld, k)
			continue
		}
		kept[k] = v
	}
	return kept, withheld
}

// urlRe finds the URLs in a value: a scheme, "://", and everything up to
// white space or a quote.
var urlRe = regexp.MustCompile("[A-Za-z][A-Za-z0-9+.\\-]*://[^\\s\"'<>`]*")

// loginRe finds a login without a scheme: user:password@host
// (ci:secret@pypi.example/simple), where it starts a value or a word.
var loginRe = regexp.MustCompile(`(^|[\s=,;(\["'{])([^\s@/:,;=]+:[^\s@/]*)@([^\s@]*)`)

// digestRe is an image digest after an @ (alpine:3.19@sha256:...): a
// reference, not a login.
var digestRe = regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}`)

// Public is v as it may be published, chosen by what its parts are, not
// by names: of every URL in v only the scheme, host, port, path and the
// query's keys are kept; its user and password are removed, each query
// value and a fragment become ****, as they carry tokens and signatures
// (a pre-signed URL). A login without a scheme (user:password@host) is
// removed too. ok is false when a URL in v cannot be parsed: v is then
// not published at all.
func Public(v string) (out string, ok bool) {
	ok = true
	out = urlRe.ReplaceAllStringFunc(v, func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			ok = false
			return raw
		}
		u.User = nil
		if u.RawQuery != "" || u.ForceQuery {
			parts := strings.Split(u.RawQuery, "&")
			for i, p := range parts {
				if k, _, has := strings.Cut(p, "="); has {
					parts[i] = k + "=****"
				} else if p != "" {
					parts[i] = "****"
				}
			}
			u.RawQuery, u.ForceQuery = strings.Join(parts, "&"), false
		}
		if u.Fragment != "" || u.RawFragment != "" {
			u.Fragment, u.RawFragment = "****", ""
		}
		return u.String()
	})
	if !ok {
		return "", false
	}
	out = loginRe.ReplaceAllStringFunc(out, func(m string) string {
		sub := loginRe.FindStringSubmatch(m)
		if strings.Contains(sub[2], "://") || digestRe.MatchString(sub[3]) {
			return m
		}
		return sub[1] + sub[3]
	})
	return out, true
}

// HasLogin reports whether v holds a URL that carries a login: a user
// and password (https://user:password@host/..., or user:password@host
// without a scheme, as Public removes them), or a user alone in an HTTP
// URL (https://TOKEN@host/...: a token given as the user name). A user
// alone in another scheme (ssh://git@host/...) is a name, not a login. A
// URL with an @ that does not parse counts as one.
func HasLogin(v string) bool {
	for _, raw := range urlRe.FindAllString(v, -1) {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			if strings.Contains(raw, "@") {
				return true
			}
		case u.User == nil:
		case strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "https"):
			return true
		default:
			if _, ok := u.User.Password(); ok {
				return true
			}
		}
	}
	for _, m := range loginRe.FindAllStringSubmatch(urlRe.ReplaceAllString(v, " "), -1) {
		if !digestRe.MatchString(m[3]) {
			return true
		}
	}
	return false
}

// publicTree makes every string of a decoded JSON value public (Public);
// one that cannot be is ****.
func publicTree(v any) any {
	switch v := v.(type) {
	case string:
		if p, ok := Public(v); ok {
			return p
		}
		return "****"
	case map[string]any:
		for k, e := range v {
			v[k] = publicTree(e)
		}
	case []any:
		for i, e := range v {
			v[i] = publicTree(e)
		}
	}
	return v
}

// Predicate is the SLSA provenance v1 predicate of f, as JSON.
func Predicate(f Facts) ([]byte, error) {
	ext := map[string]any{}
	var deps []map[string]any
	if f.Source.Repository != "" || f.Source.Commit != "" {
		src := map[string]any{}
		put(src, "repository", f.Source.Repository)
		put(src, "ref", f.Source.Ref)
		put(src, "commit", f.Source.Commit)
		ext["source"] = src
		d := map[string]any{"uri": gitURI(f.Source)}
		if f.Source.Commit != "" {
			d["digest"] = map[string]string{"gitCommit": f.Source.Commit}
		}
		deps = append(deps, d)
	}
	if b := f.Build; b != nil {
		put(ext, "dockerfile", b.Dockerfile)
		put(ext, "context", b.Context)
		put(ext, "target", b.Target)
		if len(b.Platforms) > 0 {
			ext["platforms"] = b.Platforms
		}
		if len(b.Args) > 0 {
			ext["buildArgs"] = b.Args
		}
		if len(b.Withheld) > 0 {
			ext["buildArgsWithheld"] = b.Withheld
		}
		if len(b.Labels) > 0 {
			ext["labels"] = b.Labels
		}
		if b.DockerfileDigest != "" {
			deps = append(deps, map[string]any{"uri": "file:" + b.Dockerfile, "name": "Dockerfile",
				"digest": digestMap(b.DockerfileDigest)})
		}
		for _, d := range b.BaseImages {
			m := map[string]any{"uri": d.URI, "digest": d.Digest}
			put(m, "name", d.Name)
			deps = append(deps, m)
		}
	} else {
		put(ext, "source", f.From)
	}
	def := map[string]any{"buildType": BuildType, "externalParameters": ext}
	if len(deps) > 0 {
		def["resolvedDependencies"] = deps
	}
	def["internalParameters"] = map[string]any{"builder": f.Builder}
	builder := map[string]any{"id": BuilderID, "version": versions(f)}
	meta := map[string]any{}
	put(meta, "invocationId", f.Invocation)
	if !f.Started.IsZero() {
		meta["startedOn"] = f.Started.UTC().Format(time.RFC3339)
	}
	if !f.Finished.IsZero() {
		meta["finishedOn"] = f.Finished.UTC().Format(time.RFC3339)
	}
	run := map[string]any{"builder": builder, "metadata": meta}
	if s := f.Scan; s != nil {
		ann := map[string]any{"passed": s.Passed, "verdict": s.Verdict, "scanner": s.Scanner}
		if !s.ScannedAt.IsZero() {
			ann["scannedAt"] = s.ScannedAt.UTC().Format(time.RFC3339)
		}
		if s.DatabaseDigest != "" {
			ann["database"] = map[string]any{"uri": "oci://" + s.Database, "digest": digestMap(s.DatabaseDigest)}
		}
		run["byproducts"] = []map[string]any{{"name": ScanByproduct, "uri": "file:" + s.Record,
			"digest": digestMap(s.RecordDigest), "annotations": ann}}
	}
	b, err := json.Marshal(map[string]any{"buildDefinition": def, "runDetails": run})
	if err != nil {
		return nil, err
	}
	// Every string recorded from outside hoist, whatever field it is in
	// (arguments, labels, the source, the materials' URIs, the
	// invocation, the byproducts), is made public once more: no URL
	// leaves with its login.
	var tree map[string]map[string]any
	if err := json.Unmarshal(b, &tree); err != nil {
		return nil, err
	}
	for part, keys := range map[string][]string{"buildDefinition": {"externalParameters", "resolvedDependencies"}, "runDetails": {"metadata", "byproducts"}} {
		for _, k := range keys {
			if v, ok := tree[part][k]; ok {
				tree[part][k] = publicTree(v)
			}
		}
	}
	return json.Marshal(tree)
}

// ScanByproduct is the name of the scan record among the byproducts.
const ScanByproduct = "hoist-scan-record"

func versions(f Facts) map[string]string {
	v := map[string]string{"hoist": f.Hoist}
	if f.Builder != "" && f.BuilderVersion != "" {
		v[f.Builder] = f.BuilderVersion
	}
	return v
}

func put(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// digestMap is a "sha256:hex" digest as a DigestSet.
func digestMap(d string) map[string]string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok {
		return map[string]string{"sha256": d}
	}
	return map[string]string{alg: hex}
}

// gitURI is the source as an SPDX download location: git+URL@ref.
func gitURI(s Source) string {
	u := s.Repository
	if u != "" && !strings.HasPrefix(u, "git+") {
		u = "git+" + u
	}
	if s.Ref != "" {
		u += "@" + s.Ref
	}
	return u
}

// SourceFromCI reads the source of the checkout from the variables Drone,
// Harness and Woodpecker set, in that order; lookup is the step's
// environment.
func SourceFromCI(lookup func(string) (string, bool)) (Source, string) {
	first := func(names ...string) string {
		for _, n := range names {
			if v, ok := lookup(n); ok && v != "" {
				return v
			}
		}
		return ""
	}
	s := Source{
		Repository: withoutUser(first("DRONE_GIT_HTTP_URL", "DRONE_REMOTE_URL", "CI_REPO_CLONE_URL", "DRONE_REPO_LINK", "CI_REPO_URL")),
		Ref:        first("DRONE_COMMIT_REF", "CI_COMMIT_REF"),
		Commit:     first("DRONE_COMMIT_SHA", "DRONE_COMMIT", "CI_COMMIT_SHA"),
	}
	inv := first("DRONE_BUILD_LINK", "CI_PIPELINE_URL", "HARNESS_EXECUTION_ID", "DRONE_BUILD_NUMBER", "CI_PIPELINE_NUMBER")
	return s, inv
}

// withoutUser is a URL without the user and password a clone URL may
// carry (https://x-access-token:...@host/repo.git), as Public makes it;
// "" when it cannot be parsed.
func withoutUser(raw string) string {
	p, _ := Public(raw)
	return p
}
