package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Fixtures are test inputs made by third-party tools, not by hoist: images
// built by a real Docker daemon and written by `docker save`, and the same
// image copied by skopeo into a docker-archive, an OCI archive and an OCI
// layout, plus a two-platform image index made with `docker manifest` and
// copied by `skopeo copy --all`. They are made once per test binary.
type Fixtures struct {
	Docker *Docker
	// Registry holds the fixtures' source images (plain HTTP).
	Registry *Registry
	Dir      string

	// App is the image every single-platform fixture holds; running
	// `cat /built.txt` in it prints Built, `cat /hello.txt` prints Hello.
	App          string // name in the daemon: hoist-fixture-XXXX/app:1
	Built, Hello string
	// Other is a second image in the daemon (hoist-fixture-XXXX/app:other).
	Other string
	// Base is a linux/amd64 busybox base image in Registry, for builds;
	// MultiRemote is a linux/amd64 + linux/arm64 one.
	Base string

	DockerSave      string // docker save of App (uncompressed layers)
	DockerSaveTwo   string // docker save of App and Other: two images
	SkopeoArchive   string // skopeo docker-archive (App)
	SkopeoOCIArch   string // skopeo oci-archive (App)
	SkopeoLayout    string // skopeo oci layout directory (App, ref name 1)
	MultiLayout     string // skopeo --all copy of a linux/amd64+linux/arm64 index
	MultiRemote     string // that index in Registry
	MultiArm64Hello string // /hello.txt of the arm64 variant
}

var fixtures struct {
	sync.Once
	f       *Fixtures
	failed  string
	skipped string // a component the fixtures need is missing
}

// Inputs returns the shared fixtures, making them on first use.
func Inputs(t testing.TB) *Fixtures {
	t.Helper()
	d := SharedDocker(t)
	Need(t, "skopeo")
	Need(t, "umoci")
	fixtures.Do(func() {
		ft := makeOnce(t, func(ft testing.TB) { fixtures.f = makeFixtures(ft, d) })
		switch {
		case ft.skipped != "":
			fixtures.f, fixtures.skipped = nil, ft.skipped
		case ft.failed != "":
			fixtures.f, fixtures.failed = nil, ft.failed
		case fixtures.f == nil:
			fixtures.failed = "the fixtures ended without a result"
		}
	})
	if fixtures.skipped != "" {
		// Every caller sees the missing component, not only the first.
		Missing(t, "%s", fixtures.skipped)
	}
	if fixtures.f == nil {
		t.Fatalf("making test fixtures failed: %s", fixtures.failed)
	}
	return fixtures.f
}

// makeOnce runs make with a TB whose Fatal and Skip end make alone (not
// the test that happens to come first), and says how it ended.
func makeOnce(t testing.TB, make func(testing.TB)) (ft *onceT) {
	ft = &onceT{TB: t}
	defer func() {
		if r := recover(); r != nil && r != errOnceFailed {
			panic(r)
		}
	}()
	make(ft)
	return ft
}

func makeFixtures(t testing.TB, d *Docker) *Fixtures {
	dir, err := os.MkdirTemp("", "hoist-fixtures-")
	if err != nil {
		t.Fatal(err)
	}
	atExit(func() { os.RemoveAll(dir) })
	reg := startRegistry(t, RegistryOptions{}, filepath.Join(dir, "registry"), atExit)
	// The daemon is shared by the test binaries of every package, which
	// run at once: each binary's fixture images have names of their own.
	repo := "hoist-fixture-" + randomHex(4) + "/app"
	f := &Fixtures{Docker: d, Registry: reg, Dir: dir,
		App: repo + ":1", Other: repo + ":other",
		Hello: "hello from the base " + randomHex(4), Built: "built by docker " + randomHex(4)}

	base := repo + "-base:amd64"
	d.Import(t, Rootfs(t, "amd64", f.Hello), base, "")
	ctxDir := filepath.Join(dir, "ctx")
	os.MkdirAll(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+base+"\nRUN echo '"+f.Built+"' > /built.txt\nCMD [\"cat\", \"/built.txt\"]\n"), 0o644)
	d.Build(t, ctxDir, f.App)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+base+"\nRUN echo other > /other.txt\n"), 0o644)
	d.Build(t, ctxDir, f.Other)

	f.DockerSave = filepath.Join(dir, "docker-save.tar")
	d.Run(t, "save", "-o", f.DockerSave, f.App)
	f.DockerSaveTwo = filepath.Join(dir, "docker-save-two.tar")
	d.Run(t, "save", "-o", f.DockerSaveTwo, f.App, f.Other)

	f.Base = reg.Host + "/fixture/base:1"
	d.Run(t, "tag", base, f.Base)
	d.Run(t, "push", "-q", f.Base)

	remoteApp := reg.Host + "/fixture/app:1"
	d.Run(t, "tag", f.App, remoteApp)
	d.Run(t, "push", "-q", remoteApp)
	src := "docker://" + remoteApp
	f.SkopeoArchive = filepath.Join(dir, "skopeo-docker-archive.tar")
	f.SkopeoOCIArch = filepath.Join(dir, "skopeo-oci-archive.tar")
	f.SkopeoLayout = filepath.Join(dir, "skopeo-layout")
	Run(t, nil, "skopeo", "copy", "-q", "--src-tls-verify=false", src, "docker-archive:"+f.SkopeoArchive+":"+f.App)
	Run(t, nil, "skopeo", "copy", "-q", "--src-tls-verify=false", src, "oci-archive:"+f.SkopeoOCIArch+":1")
	Run(t, nil, "skopeo", "copy", "-q", "--src-tls-verify=false", src, "oci:"+f.SkopeoLayout+":1")

	// A two-platform image: amd64 and arm64 images made by umoci (docker
	// import records no platform), joined by docker manifest.
	f.MultiArm64Hello = "hello from arm64 " + randomHex(4)
	amd, arm := reg.Host+"/fixture/multi:amd64", reg.Host+"/fixture/multi:arm64"
	umociImage(t, filepath.Join(dir, "umoci"), "amd64", "hello from amd64", "docker://"+amd)
	umociImage(t, filepath.Join(dir, "umoci"), "arm64", f.MultiArm64Hello, "docker://"+arm)
	f.MultiRemote = reg.Host + "/fixture/multi:1"
	// The docker CLI keeps manifest lists it created by name; another
	// test binary may have left one under this (reused) port.
	RunErr(d.Env(), "docker", "manifest", "rm", f.MultiRemote)
	d.Run(t, "manifest", "create", "--insecure", f.MultiRemote, amd, arm)
	d.Run(t, "manifest", "push", "--purge", "--insecure", f.MultiRemote)
	f.MultiLayout = filepath.Join(dir, "multi-layout")
	Run(t, nil, "skopeo", "copy", "-q", "--all", "--src-tls-verify=false", "docker://"+f.MultiRemote, "oci:"+f.MultiLayout+":1")
	return f
}

// onceT records a failure in shared setup without ending the test binary's
// first caller in a way later callers would not see.
type onceT struct {
	testing.TB
	failed  string
	skipped string
}

// Skipf records a missing component (Missing skips outside CI) instead of
// ending the shared setup's goroutine with the first caller's skip, which
// would leave every later caller with no fixtures and no reason.
func (o *onceT) Skipf(format string, args ...any) {
	o.skipped = strings.TrimPrefix(fmt.Sprintf(format, args...), "skipped, component missing: ")
	panic(errOnceFailed)
}

func (o *onceT) Skip(args ...any) { o.Skipf("%s", fmt.Sprint(args...)) }

func (o *onceT) SkipNow() { o.Skipf("skipped") }

var errOnceFailed = &struct{ s string }{"fixture failed"}

func (o *onceT) Fatal(args ...any) {
	o.failed = fmt.Sprint(args...)
	panic(errOnceFailed)
}

func (o *onceT) Fatalf(format string, args ...any) {
	o.failed = fmt.Sprintf(format, args...)
	panic(errOnceFailed)
}

// umociImage makes a one-layer image for arch with umoci and copies it with
// skopeo to dest.
func umociImage(t testing.TB, layout, arch, msg, dest string) {
	root := filepath.Join(filepath.Dir(layout), "rootfs-"+arch)
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	Run(t, nil, "tar", "-C", root, "-xf", Rootfs(t, arch, msg))
	if _, err := os.Stat(layout); err != nil {
		Run(t, nil, "umoci", "init", "--layout", layout)
	}
	img := layout + ":" + arch
	Run(t, nil, "umoci", "new", "--image", img)
	Run(t, nil, "umoci", "insert", "--image", img, root, "/")
	Run(t, nil, "umoci", "config", "--image", img, "--architecture", arch, "--os", "linux", "--config.cmd", "/bin/sh")
	Run(t, nil, "skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:"+img, dest)
}
