package source

import (
	"errors"
	"testing"
)

// The PLUGIN_SOURCE_IMAGE examples of the peers (drone-buildx and
// drone-docker parse it this way), plus digests, which they cannot parse.
func TestParseReference(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, name string }{
		{"image:tag", "index.docker.io/library/image:tag"},
		{"image", "index.docker.io/library/image:latest"},
		{"image:", "index.docker.io/library/image:latest"},
		{"registry:5000/image", "registry:5000/image:latest"},
		{"registry:5000/ns/image:v1", "registry:5000/ns/image:v1"},
		{"docker.op.com:4444/test/op:v.123", "docker.op.com:4444/test/op:v.123"},
		{"myorg/myapp:new-no-push-42-buildx", "index.docker.io/myorg/myapp:new-no-push-42-buildx"},
		{"127.0.0.1:5000/app@sha256:" + sixtyFour, "127.0.0.1:5000/app@sha256:" + sixtyFour},
	} {
		ref, err := ParseReference(c.in, false)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if ref.Name() != c.name {
			t.Errorf("%q parsed as %q, want %q", c.in, ref.Name(), c.name)
		}
	}
	if _, err := ParseReference("UPPER/case", false); !errors.Is(err, ErrBadInput) {
		t.Errorf("invalid reference: %v", err)
	}
}

const sixtyFour = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestPick(t *testing.T) {
	t.Parallel()
	mk := func(names ...string) candidate { return candidate{names: names, label: "x"} }
	cands := []candidate{mk("app:1"), mk("docker.io/library/app:2"), mk("v3")}
	for _, c := range []struct {
		want string
		idx  int
	}{
		{"app:1", 0},
		{"docker.io/library/app:1", 0},
		{"index.docker.io/library/app:2", 1},
		{"app:2", 1},
		{"reg.example.com/app:v3", 2}, // an OCI ref.name annotation holds only the tag
	} {
		got, err := pick(cands, c.want, "test")
		if err != nil || got.names[0] != cands[c.idx].names[0] {
			t.Errorf("pick %q: %v %v", c.want, got.names, err)
		}
	}
	if _, err := pick(cands, "", "test"); !errors.Is(err, ErrBadInput) {
		t.Errorf("ambiguous: %v", err)
	}
	if _, err := pick(cands, "app:9", "test"); !errors.Is(err, ErrNotFound) {
		t.Errorf("absent: %v", err)
	}
	one, err := pick([]candidate{{label: "unnamed"}}, "anything:1", "test")
	if err != nil || one.label != "unnamed" {
		t.Errorf("a single unnamed image is used whatever the name: %v", err)
	}
}
