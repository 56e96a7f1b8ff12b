package step

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/net/http/httpproxy"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/scan"
)

// A remote builder pushes the image itself only where nothing needs its
// bytes here and it reaches the first destination as hoist would.
func TestBuilderPushIsChosenOnlyWhereItReaches(t *testing.T) {
	t.Parallel()
	tag := func(s string) name.Tag {
		tg, err := name.NewTag(s)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	remote := &build.BuildKit{Addr: "tcp://buildkit.example.com:1234"}
	local := &build.BuildKit{Addr: "unix:///run/buildkit/buildkitd.sock"}
	runnerFor := func(edit func(*Step, *publishers), dests ...string) *runner {
		st := &Step{Mode: ModeBuild, Build: &Build{Tool: "buildkit"}}
		p := &publishers{registries: &registries{}}
		for _, d := range dests {
			p.registries.dests = append(p.registries.dests, tag(d))
		}
		if edit != nil {
			edit(st, p)
		}
		return &runner{st: st, pubs: p}
	}
	loopbackOK := func(s *Step, _ *publishers) { s.Build.BuilderPush = BuilderPushLoopback }
	for _, c := range []struct {
		what  string
		bk    *build.BuildKit
		r     *runner
		want  bool
		first string
	}{
		{"a registry elsewhere, any builder", remote, runnerFor(nil, "reg.example.com/app:1", "other.example.com/app:1"), true, "reg.example.com/app:1"},
		{"a loopback registry, unless told", local, runnerFor(nil, "127.0.0.1:5000/app:1"), false, ""},
		{"a loopback registry, told, a builder on this host", local, runnerFor(loopbackOK, "127.0.0.1:5000/app:1"), true, "127.0.0.1:5000/app:1"},
		{"a loopback registry, told, tcp to loopback", &build.BuildKit{Addr: "tcp://127.0.0.1:1234"}, runnerFor(loopbackOK, "localhost:5000/app:1"), true, "localhost:5000/app:1"},
		{"a loopback registry, told, a builder elsewhere", remote, runnerFor(loopbackOK, "127.0.0.1:5000/app:1"), false, ""},
		{"a loopback registry, told, a builder in a container", &build.BuildKit{Addr: "docker-container://bk"}, runnerFor(loopbackOK, "127.0.0.1:5000/app:1"), false, ""},
		{"never", remote, runnerFor(func(s *Step, _ *publishers) { s.Build.BuilderPush = BuilderPushNever }, "reg.example.com/app:1"), false, ""},
		{"signing", remote, runnerFor(func(s *Step, _ *publishers) { s.Sign = &Signing{} }, "reg.example.com/app:1"), false, ""},
		{"the embedded engine", &build.BuildKit{Addr: "unix:///e.sock", ContentDir: "/e/content"}, runnerFor(nil, "reg.example.com/app:1"), false, ""},
		{"the Docker daemon's builder", &build.BuildKit{Docker: true}, runnerFor(nil, "reg.example.com/app:1"), false, ""},
		{"build-only", remote, runnerFor(func(s *Step, _ *publishers) { s.Mode = ModeBuildOnly }, "reg.example.com/app:1"), false, ""},
		{"a tarball too", remote, runnerFor(func(_ *Step, p *publishers) { p.side = append(p.side, &tarFile{}) }, "reg.example.com/app:1"), false, ""},
		{"a scan gate", remote, runnerFor(func(s *Step, _ *publishers) { s.Scan = &scan.Options{} }, "reg.example.com/app:1"), false, ""},
		{"an SBOM", remote, runnerFor(func(s *Step, _ *publishers) { s.Attest.SBOM = true }, "reg.example.com/app:1"), false, ""},
		{"a registry CA", remote, runnerFor(func(s *Step, _ *publishers) { s.Transport.CACert = "/ca.pem" }, "reg.example.com/app:1"), false, ""},
		{"skip TLS verify", remote, runnerFor(func(s *Step, _ *publishers) { s.Transport.SkipVerify = true }, "reg.example.com/app:1"), false, ""},
		{"a proxy", remote, runnerFor(func(s *Step, _ *publishers) { s.Transport.Proxy = httpproxy.Config{HTTPSProxy: "http://proxy:3128"} }, "reg.example.com/app:1"), false, ""},
		{"a --local route", remote, runnerFor(func(s *Step, _ *publishers) {
			s.Transport.Routes = map[string]string{"reg.example.com": "127.0.0.1:5000"}
		}, "reg.example.com/app:1"), false, ""},
		{"plain HTTP elsewhere", remote, runnerFor(func(s *Step, _ *publishers) { s.Insecure = true }, "reg.example.com/app:1"), false, ""},
		{"plain HTTP to loopback, told", local, runnerFor(func(s *Step, p *publishers) { loopbackOK(s, p); s.Insecure = true }, "127.0.0.1:5000/app:1"), true, "127.0.0.1:5000/app:1"},
		{"Kaniko", remote, runnerFor(func(s *Step, _ *publishers) { s.Build.Tool = "kaniko" }, "reg.example.com/app:1"), false, ""},
		{"no destination", remote, runnerFor(nil), false, ""},
		{"the first destination's login failed", remote, runnerFor(func(_ *Step, p *publishers) {
			p.registries.skip = map[string]error{"reg.example.com": errTest}
		}, "reg.example.com/app:1", "other.example.com/app:1"), true, "other.example.com/app:1"},
	} {
		dest, ok := c.r.builderPush(c.bk)
		if ok != c.want || ok && dest.String() != c.first {
			t.Errorf("%s: %v %t, want %q %t", c.what, dest, ok, c.first, c.want)
		}
	}
}

var errTest = testError("no login")

type testError string

func (e testError) Error() string { return string(e) }
