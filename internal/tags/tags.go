// Package tags derives image tags the way the peer plugins do: expand_tag
// (a semantic version becomes its major, minor and patch tags) and
// auto_tag (tags from the commit's git ref). Pure functions.
package tags

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/mod/semver"
)

// Expand expands each semantic-version tag into major, major.minor and
// major.minor.patch (without the v, build metadata kept on each);
// pre-releases stay one tag; other tags are kept as they are. Underscores
// count as hyphens for the check ("v1.2.3+linux_amd64").
func Expand(in []string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(t string) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, tag := range in {
		v := strings.ReplaceAll(tag, "_", "-")
		if !semver.IsValid(v) && semver.IsValid("v"+v) {
			v = "v" + v
		}
		if !semver.IsValid(v) {
			add(tag)
			continue
		}
		build := semver.Build(v)
		if semver.Prerelease(v) != "" {
			add(strings.TrimPrefix(semver.Canonical(v), "v") + build)
			continue
		}
		for _, t := range []string{semver.Major(v), semver.MajorMinor(v), semver.Canonical(v)} {
			add(strings.TrimPrefix(t, "v") + build)
		}
	}
	return out
}

// ErrSkip means the commit gets no automatic tags: the build is skipped.
var ErrSkip = errors.New("not a tag and not the default branch")

var strict = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// Auto returns the tags for a git ref: latest for the default branch; for
// refs/tags/vX.Y.Z the tags X, X.Y and X.Y.Z (0.Y and 0.Y.Z for major 0;
// one tag for a pre-release or build metadata), digits kept as written
// (v18.06.0 gives 18.06). suffix is appended with a hyphen (alone instead
// of latest). Other refs give ErrSkip.
func Auto(ref, defaultBranch, suffix string) ([]string, error) {
	var out []string
	switch {
	case strings.HasPrefix(ref, "refs/tags/"):
		v := strings.TrimPrefix(strings.TrimPrefix(ref, "refs/tags/"), "v")
		m := strict.FindStringSubmatch(v)
		if m == nil {
			return nil, fmt.Errorf("invalid semantic version when auto detecting the tag from %s: want vX.Y.Z", ref)
		}
		switch {
		case m[4] != "" || m[5] != "":
			out = []string{v}
		case m[1] == "0":
			out = []string{m[1] + "." + m[2], m[1] + "." + m[2] + "." + m[3]}
		default:
			out = []string{m[1], m[1] + "." + m[2], m[1] + "." + m[2] + "." + m[3]}
		}
	case defaultBranch != "" && strings.TrimPrefix(ref, "refs/heads/") == defaultBranch:
		out = []string{"latest"}
	default:
		return nil, fmt.Errorf("%w: %s", ErrSkip, ref)
	}
	if suffix == "" {
		return out, nil
	}
	for i, t := range out {
		if t == "latest" {
			out[i] = suffix
		} else {
			out[i] = t + "-" + suffix
		}
	}
	return out, nil
}

// Merge is auto_tag's tags followed by the tags the user gave, as
// Woodpecker's buildx plugin merges them (plugin/impl.go, Validate): the
// automatic ones first, in their order, then the user's, trimmed, without
// the suffix; empty tags are dropped and a tag given twice is kept once,
// where it first appears.
func Merge(auto, user []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range append(append([]string(nil), auto...), user...) {
		t = strings.TrimSpace(t)
		if t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}
