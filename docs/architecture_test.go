// Package docs holds the tests that keep the documentation true to the
// code.
package docs

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/hoist-build/hoist/"

var pkgPath = regexp.MustCompile(`^[a-z][a-z0-9]*(/[a-z][a-z0-9]*)*$`)

// The import column of docs/architecture.md's package table is the
// packages of this module each package imports (its non-test files), as
// the go command reads them; every package of cmd/ and internal/ has a
// row, and no row names one that does not exist.
func TestArchitectureImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "../cmd/...", "../internal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	actual := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		var deps []string
		for _, imp := range f[1:] {
			if rest, ok := strings.CutPrefix(imp, module+"internal/"); ok {
				deps = append(deps, rest)
			}
		}
		slices.Sort(deps)
		actual[strings.TrimPrefix(f[0], module)] = deps
	}

	documented := readTable(t, "architecture.md")
	if len(documented) < 10 {
		t.Fatalf("only %d rows read from the package table of architecture.md", len(documented))
	}
	for pkg, deps := range actual {
		doc, ok := documented[pkg]
		want := strings.Join(deps, ", ")
		if want == "" {
			want = "none"
		}
		switch {
		case !ok:
			t.Errorf("architecture.md has no row for %s (it imports: %s)", pkg, want)
		case !slices.Equal(doc, deps):
			t.Errorf("architecture.md: %s imports %q, the table says %q: write\n\t%s", pkg, want, strings.Join(doc, ", "), want)
		}
	}
	for pkg := range documented {
		if _, ok := actual[pkg]; !ok {
			t.Errorf("architecture.md has a row for %s, which is no package", pkg)
		}
	}
}

// readTable reads the rows of the "What each package owns" table: the
// package (`internal/x`) and its import column (a comma-separated list of
// the packages of internal/ by their path below it, or "none").
func readTable(t *testing.T, file string) map[string][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## What each package owns"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) < 3 {
			t.Fatalf("%s: a row of fewer than three cells: %s", file, line)
		}
		pkg := strings.Trim(strings.TrimSpace(cells[0]), "`")
		var deps []string
		if c := strings.TrimSpace(cells[len(cells)-1]); c != "none" {
			for _, d := range strings.Split(c, ",") {
				d = strings.Trim(strings.TrimSpace(d), "`")
				if !pkgPath.MatchString(d) {
					t.Fatalf("%s: %s: %q is not a package path", file, pkg, d)
				}
				deps = append(deps, d)
			}
		}
		slices.Sort(deps)
		rows[pkg] = deps
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}
