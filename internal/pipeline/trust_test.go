package pipeline

import (
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hoist-build/hoist/internal/gitcmd"
	"github.com/hoist-build/hoist/internal/harness"
)

var pathPipeline = `pipeline:
  identifier: ../p
  stages:
    - stage:
        identifier: ../../..
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: sub/step
                  type: Run
                  spec:
                    command: echo hi
              - step:
                  identifier: tool
                  type: Run
                  spec:
                    image: "--privileged"
                    command: echo hi
              - step:
                  identifier: ok_1
                  type: Run
                  spec:
                    image: 127.0.0.1:5000/team/tool:1
                    command: echo hi
    - stage:
        identifier: build-app
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: _` + "x23456789" + strings.Repeat("0123456789", 12) + `
                  type: Run
                  spec:
                    command: echo hi
`

// Identifiers become directories, container names and paths: a stage
// identifier ../../.. would make the workspace /. Each is checked as
// Harness checks it (a letter or _, then letters, digits or _, at most
// 128 characters), at its line and column, every one at once; a Run
// step's image that is not an image reference (a docker run flag) is
// refused there too.
func TestIdentifiersAndImagesAreChecked(t *testing.T) {
	_, probs := validate(t, "paths.yaml", []byte(pathPipeline))
	expect(t, probs,
		want{"2:15", `pipeline.identifier "../p" is not an identifier: Harness takes a letter or _, then letters, digits or _, at most 128 characters`, "write ___p"},
		want{"5:21", `pipeline.stages[0].stage.identifier "../../.." is not an identifier`, "use only letters, digits and _, starting with a letter or _"},
		want{"12:31", `steps[0].step.identifier "sub/step" is not an identifier`, "write sub_step"},
		want{"20:28", `step tool.spec.image "--privileged" is not an image reference: invalid reference format`, "name an image"},
		want{"29:21", `pipeline.stages[1].stage.identifier "build-app" is not an identifier`, "write build_app"},
		want{"36:31", `is not an identifier`, "write _x2345678901"},
	)
	// The longest identifier Harness takes is one.
	long := "_x23456789" + strings.Repeat("0123456789", 11) + "01234567"
	ok := "pipeline:\n  identifier: p\n  stages:\n    - stage:\n        identifier: " + long + "\n        type: CI\n        spec:\n" +
		"          runtime: {type: Cloud, spec: {}}\n          execution:\n            steps:\n              - step: {identifier: " + long + ", type: Run, spec: {command: echo}}\n"
	if _, probs := validate(t, "long.yaml", []byte(ok)); len(long) != 128 || probs != nil {
		t.Errorf("an identifier of %d characters: %v", len(long), probs)
	}
}

// The codebase clone copies links as links and follows none: a link in
// the checkout stays a link (to the same target), a link out of the
// checkout is copied as a link and its target is neither read nor
// written, and a tracked file beyond a link (dir/file where dir is now a
// link out) is left out, as git leaves it; outside, nothing changes.
func TestCloneCodebaseFollowsNoLink(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed")
	}
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.txt")
	os.WriteFile(secret, []byte("top secret"), 0o600)
	os.MkdirAll(filepath.Join(outside, "dir"), 0o755)
	os.WriteFile(filepath.Join(outside, "dir", "f"), []byte("top secret too"), 0o600)
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{secret, filepath.Join(outside, "dir", "f"), filepath.Join(outside, "dir")} {
		os.Chtimes(p, old, old)
	}

	for _, useGit := range []bool{true, false} {
		src := t.TempDir()
		git := func(args ...string) {
			t.Helper()
			cmd := exec.Command("git", append([]string{"-C", src, "-c", "user.email=t@e", "-c", "user.name=t"}, args...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v\n%s", args, err, out)
			}
		}
		os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644)
		os.Symlink("a.txt", filepath.Join(src, "link-in"))
		os.Symlink(secret, filepath.Join(src, "link-out-abs"))
		rel, _ := filepath.Rel(src, secret)
		os.Symlink(rel, filepath.Join(src, "link-out-rel"))
		os.MkdirAll(filepath.Join(src, "d"), 0o755)
		os.WriteFile(filepath.Join(src, "d", "f"), []byte("tracked"), 0o644)
		if useGit {
			git("init", "-q", "-b", "main")
			git("add", "-A")
			git("commit", "-qm", "x")
		}
		// d is now a link out of the checkout; git still tracks d/f.
		os.RemoveAll(filepath.Join(src, "d"))
		os.Symlink(filepath.Join(outside, "dir"), filepath.Join(src, "d"))

		dst := filepath.Join(t.TempDir(), "ws")
		what, err := CloneCodebase(t.Context(), hostGit(), src, dst)
		if err != nil {
			t.Fatalf("git %v: %v", useGit, err)
		}
		for link, target := range map[string]string{"link-in": "a.txt", "link-out-abs": secret, "link-out-rel": rel, "d": filepath.Join(outside, "dir")} {
			fi, err := os.Lstat(filepath.Join(dst, link))
			if err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("git %v: %s in the clone is not a link (%v, %v)", useGit, link, fi, err)
				continue
			}
			if got, _ := os.Readlink(filepath.Join(dst, link)); got != target {
				t.Errorf("git %v: %s links to %s, want %s", useGit, link, got, target)
			}
		}
		// The clone holds no regular file with the content outside.
		var regular []string
		filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				b, _ := os.ReadFile(p)
				if strings.Contains(string(b), "top secret") {
					t.Errorf("git %v: %s holds the content of a file outside the checkout", useGit, p)
				}
				r, _ := filepath.Rel(dst, p)
				regular = append(regular, r)
			}
			return nil
		})
		if strings.Join(regular, " ") != "a.txt" {
			t.Errorf("git %v: the clone's files are %v, want a.txt only (%s)", useGit, regular, what)
		}
	}
	// Outside, nothing was written.
	for p, want := range map[string]string{secret: "top secret", filepath.Join(outside, "dir", "f"): "top secret too"} {
		b, _ := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if string(b) != want || !fi.ModTime().Equal(old) {
			t.Errorf("%s changed: %q, %v", p, b, fi.ModTime())
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(outside, "dir")); len(ents) != 1 {
		t.Errorf("the directory outside holds %d entries, want 1", len(ents))
	}
}

// hijacker is a registry "binary" standing for the race --local used to
// lose: when hoist's configuration names a port (one hoist chose and
// released), another registry, with storage of its own, binds that port
// first, as any process on the machine could; then the real registry
// starts. A registry given 127.0.0.1:0 starts untouched.
const hijacker = `#!/bin/bash
addr=$(sed -n 's/.*http: {addr: \([^}]*\)}.*/\1/p' "$2")
if [ "${addr##*:}" != 0 ]; then
  printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n' "$HIJACK/data" "$addr" > "$HIJACK/config.yml"
  "$REGISTRY" serve "$HIJACK/config.yml" > "$HIJACK/log" 2>&1 &
  echo $! > "$HIJACK/pid"
  port=${addr##*:}
  for i in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
fi
exec "$REGISTRY" "$@"
`

// A --local registry binds its own port (the kernel picks it, the
// registry says which): no port is chosen, released and bound again, so
// no other process can take the pushes in between. An image pushed to
// the address hoist reports lands in the registry hoist started.
func TestLocalRegistryBindsItsOwnPort(t *testing.T) {
	real := harness.Need(t, "docker-registry")
	crane := harness.Tool(t, "crane")
	dir := t.TempDir()
	hijack := filepath.Join(dir, "hijack")
	os.MkdirAll(hijack, 0o755)
	bin := filepath.Join(dir, "registry")
	os.WriteFile(bin, []byte(hijacker), 0o755)
	t.Setenv("REGISTRY", real)
	t.Setenv("HIJACK", hijack)
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(hijack, "pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGTERM)
			}
		}
	})
	regs, err := StartLocalRegistries(t.Context(), bin, filepath.Join(dir, "registries"), []string{"registry.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer StopLocalRegistries(regs)
	reg := regs[0]
	if host, _, err := net.SplitHostPort(reg.Addr); err != nil || host != "127.0.0.1" {
		t.Fatalf("address %q", reg.Addr)
	}
	// crane, a client independent of hoist, pushes an image there.
	src := filepath.Join(dir, "image.tar")
	img, _ := random.Image(1024, 1)
	if err := tarball.WriteToFile(src, name.MustParseReference("app:1"), img); err != nil {
		t.Fatal(err)
	}
	ref := reg.Addr + "/app:1"
	if out, err := exec.Command(crane, "push", "--insecure", src, ref).CombinedOutput(); err != nil {
		t.Fatalf("crane push: %v\n%s", err, out)
	}
	out, err := exec.Command(crane, "digest", "--insecure", ref).CombinedOutput()
	want, _ := img.Digest()
	if err != nil || strings.TrimSpace(string(out)) != want.String() {
		t.Fatalf("crane digest: %s %v, want %s", out, err, want)
	}
	if _, err := os.Stat(filepath.Join(reg.Dir, "data", "docker", "registry", "v2", "repositories", "app")); err != nil {
		t.Errorf("the image is not in the registry hoist started: %v", err)
	}
	if _, err := os.Stat(filepath.Join(hijack, "data", "docker", "registry", "v2", "repositories", "app")); err == nil {
		t.Errorf("the image went to another process that bound the port first")
	}
}

// hostGit is the git of the test's PATH, as hoist pipeline run takes it.
func hostGit() gitcmd.Git { return gitcmd.Find(os.Getenv("PATH")) }

// The codebase clone asks git which files the checkout holds, and git runs
// no program the checkout's configuration names: a .git/config with
// core.fsmonitor (which git ls-files --others runs; a restored cache or
// an earlier step can write .git) and the user's configuration
// (GIT_CONFIG_GLOBAL in hoist's environment) start nothing; the machine's
// git run plainly does start it (the test proves something). git comes
// from an absolute directory of hoist's PATH only.
func TestCloneCodebaseRunsNoRepositoryProgram(t *testing.T) {
	if hostGit() == "" {
		t.Fatal("git is needed")
	}
	src := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	hook := filepath.Join(t.TempDir(), "fsmonitor.sh")
	os.WriteFile(hook, []byte("#!/bin/sh\necho \"$@\" >> "+marker+"\n"), 0o755)
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", src, "-c", "user.email=t@e", "-c", "user.name=t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-qm", "x")
	git("config", "core.fsmonitor", hook)
	os.WriteFile(filepath.Join(src, "untracked.txt"), []byte("u"), 0o644)
	if out, err := exec.Command("git", "-C", src, "ls-files", "--others").CombinedOutput(); err != nil {
		t.Fatalf("plain git: %v\n%s", err, out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("plain git did not run the checkout's fsmonitor: the test proves nothing")
	}
	os.Remove(marker)
	global := filepath.Join(t.TempDir(), "gitconfig")
	os.WriteFile(global, []byte("[core]\n\tfsmonitor = "+hook+"\n"), 0o644)
	t.Setenv("GIT_CONFIG_GLOBAL", global)

	dst := filepath.Join(t.TempDir(), "ws")
	what, err := CloneCodebase(t.Context(), hostGit(), src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(what, "the git checkout's tracked and unignored files") {
		t.Errorf("the clone did not ask git: %s", what)
	}
	for _, f := range []string{"a.txt", "untracked.txt"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Errorf("the clone lacks %s: %v", f, err)
		}
	}
	if cb := ReadCodebase(t.Context(), hostGit(), src); cb.Branch != "main" || len(cb.CommitSha) != 40 {
		t.Errorf("codebase %+v", cb)
	}
	if b, err := os.ReadFile(marker); err == nil {
		t.Errorf("the checkout's fsmonitor ran: %q", b)
	}
}
