package tags

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The peers' expand_tag table (drone-docker's and drone-kaniko's expand-tag).
func TestExpand(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		"v1.2.3":             {"1", "1.2", "1.2.3"},
		"1.2.3":              {"1", "1.2", "1.2.3"},
		"v1.2":               {"1", "1.2", "1.2.0"},
		"v1":                 {"1", "1.0", "1.0.0"},
		"v1.2.3+build-info":  {"1+build-info", "1.2+build-info", "1.2.3+build-info"},
		"v1.2.3+linux_amd64": {"1+linux-amd64", "1.2+linux-amd64", "1.2.3+linux-amd64"},
		"v1.2.3-rc1":         {"1.2.3-rc1"},
		"v1+bld":             {"v1+bld"},
		"latest":             {"latest"},
	} {
		if d := cmp.Diff(want, Expand([]string{in})); d != "" {
			t.Errorf("Expand(%q) (-want +got):\n%s", in, d)
		}
	}
	if d := cmp.Diff([]string{"1", "1.2", "1.2.3", "latest"}, Expand([]string{"1.2.3", "v1.2.3", "latest"})); d != "" {
		t.Errorf("duplicates: %s", d)
	}
}

// The peers' auto_tag rules (drone-docker's and drone-kaniko's auto-tag).
func TestAuto(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		ref, suffix string
		want        []string
	}{
		{"refs/heads/main", "", []string{"latest"}},
		{"refs/tags/v1.0.0", "", []string{"1", "1.0", "1.0.0"}},
		{"refs/tags/1.2.3", "", []string{"1", "1.2", "1.2.3"}},
		{"refs/tags/v0.4.2", "", []string{"0.4", "0.4.2"}},
		{"refs/tags/v18.06.0", "", []string{"18", "18.06", "18.06.0"}},
		{"refs/tags/v1.0.0-alpha.1", "", []string{"1.0.0-alpha.1"}},
		{"refs/tags/v1.0.0+meta", "", []string{"1.0.0+meta"}},
		{"refs/tags/v1.0.0", "linux-amd64", []string{"1-linux-amd64", "1.0-linux-amd64", "1.0.0-linux-amd64"}},
		{"refs/heads/main", "linux-amd64", []string{"linux-amd64"}},
	} {
		got, err := Auto(c.ref, "main", c.suffix)
		if err != nil {
			t.Errorf("Auto(%q): %v", c.ref, err)
			continue
		}
		if d := cmp.Diff(c.want, got); d != "" {
			t.Errorf("Auto(%q, %q) (-want +got):\n%s", c.ref, c.suffix, d)
		}
	}
	if _, err := Auto("refs/heads/feature", "main", ""); !errors.Is(err, ErrSkip) {
		t.Errorf("feature branch: %v", err)
	}
	for _, bad := range []string{"refs/tags/v1.0", "refs/tags/20190203"} {
		if _, err := Auto(bad, "main", ""); err == nil || errors.Is(err, ErrSkip) {
			t.Errorf("%s: want an invalid-version error, got %v", bad, err)
		}
	}
}

// auto_tag with the user's tags: the automatic tags first, then the
// user's (Woodpecker's order), each once, empty ones dropped.
func TestMerge(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		auto, user, want []string
	}{
		{[]string{"1", "1.2", "1.2.3"}, []string{"sha-abc", "stable"}, []string{"1", "1.2", "1.2.3", "sha-abc", "stable"}},
		{[]string{"1-linux", "1.2-linux"}, []string{" stable ", "", "1-linux", "stable"}, []string{"1-linux", "1.2-linux", "stable"}},
		{[]string{"latest"}, []string{"latest", "edge"}, []string{"latest", "edge"}},
		{nil, []string{"edge"}, []string{"edge"}},
	} {
		if d := cmp.Diff(c.want, Merge(c.auto, c.user)); d != "" {
			t.Errorf("Merge(%q, %q) (-want +got):\n%s", c.auto, c.user, d)
		}
	}
}
