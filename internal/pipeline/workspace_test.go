package pipeline

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// A stage's workspace is a copy of the checkout: the tracked files and
// the untracked ones git does not ignore, never .hoist, never .git.
func TestCloneCodebase(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed")
	}
	src := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", src, "-c", "user.email=t@e", "-c", "user.name=t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(p, c string) {
		os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
		os.WriteFile(filepath.Join(src, p), []byte(c), 0o644)
	}
	run("init", "-q", "-b", "feature")
	write("tracked.txt", "t")
	write("sub/deleted.txt", "d")
	write(".gitignore", "ignored.txt\n")
	run("add", "-A")
	run("commit", "-qm", "x")
	write("untracked.txt", "u")
	write("ignored.txt", "i")
	write(".hoist/images/x", "state")
	write("tracked.txt", "changed in the tree")
	os.Remove(filepath.Join(src, "sub/deleted.txt"))
	os.Symlink("tracked.txt", filepath.Join(src, "link"))

	dst := filepath.Join(t.TempDir(), "ws")
	what, err := CloneCodebase(t.Context(), hostGit(), src, dst)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.Walk(dst, func(p string, fi os.FileInfo, err error) error {
		if fi != nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dst, p)
			got = append(got, rel)
		}
		return nil
	})
	sort.Strings(got)
	if strings.Join(got, " ") != ".gitignore link tracked.txt untracked.txt" {
		t.Errorf("cloned %v (%s)", got, what)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "tracked.txt")); string(b) != "changed in the tree" {
		t.Errorf("tracked.txt holds %q", b)
	}
	if cb := ReadCodebase(t.Context(), hostGit(), src); cb.Branch != "feature" || len(cb.CommitSha) != 40 {
		t.Errorf("codebase %+v", cb)
	}
}

// Concurrent runs of a pipeline get distinct sequence numbers.
func TestNextSequence(t *testing.T) {
	state := t.TempDir()
	var mu sync.Mutex
	seen := map[int]bool{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := NextSequence("", state, "p")
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			seen[n] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i := 1; i <= 20; i++ {
		if !seen[i] {
			t.Errorf("sequence numbers %v lack %d", seen, i)
		}
	}
	os.WriteFile(filepath.Join(state, "pipelines", "q", "sequence"), nil, 0o644)
	os.MkdirAll(filepath.Join(state, "pipelines", "r"), 0o755)
	os.WriteFile(filepath.Join(state, "pipelines", "r", "sequence"), []byte("x\n"), 0o644)
	if _, err := NextSequence("", state, "r"); err == nil || !strings.Contains(err.Error(), `holds "x", not a number`) {
		t.Errorf("%v", err)
	}
}
