// Command extract lists every environment name a peer plugin reads, from
// the peer's Go source in a git directory, as the rows of
// internal/settings/peers/names.tsv:
//
//	go run ./internal/settings/peers/extract -peer drone-plugins/drone-docker \
//	    -git /path/to/drone-docker/.git [-ref HEAD] [-skip cmd/drone-heroku/] \
//	    [-lib github.com/drone-plugins/drone-plugin-lib@v0.4.2]
//
// -lib names a Go module whose flags the peer reads too (the Woodpecker and
// thegeeklab plugins read the runner's DRONE_* variables through their
// drone-plugin-lib, at the version of the peer's go.mod); its source comes
// from the Go module cache (go mod download), and its rows name the file as
// module@version/path.
//
// It parses every non-test .go file at ref and takes, with no judgement:
//   - urfave/cli flags: EnvVar: "A,B" (v1) and EnvVars: []string{"A", "B"} (v2);
//   - calls of a function named getenv, Getenv or LookupEnv (os.Getenv and
//     the peers' own getenv("A", "B") helpers) with string literal or
//     constant arguments;
//   - the peers' proxy helper addProxyValue(build, "http_proxy"), which
//     reads http_proxy, HTTP_PROXY and HARNESS_HTTP_PROXY;
//   - a prefix tested on os.Environ() entries (strings.HasPrefix(env,
//     "AWS_")), as the name "AWS_*".
//
// Rows are printed sorted (name, peer, version, file, and the names read
// with it for one value, in the peer's order); a string literal
// that looks like a variable name but was not taken is printed on stderr,
// for a person to check.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func main() {
	peer := flag.String("peer", "", "the peer's repository, owner/name")
	gitDir := flag.String("git", "", "the peer's git directory")
	ref := flag.String("ref", "HEAD", "the commit or tag to read")
	skip := flag.String("skip", "", "comma separated path prefixes to leave out")
	lib := flag.String("lib", "", "comma separated module@version the peer reads flags from too")
	flag.Parse()
	if *peer == "" || *gitDir == "" {
		fmt.Fprintln(os.Stderr, "usage: extract -peer owner/name -git DIR [-ref REF] [-skip PREFIX,...]")
		os.Exit(2)
	}
	version, err := git(*gitDir, "describe", "--tags", "--always", "--long", *ref)
	if err != nil {
		fatal(err)
	}
	version = strings.TrimSpace(version)
	list, err := git(*gitDir, "ls-tree", "-r", "--name-only", *ref)
	if err != nil {
		fatal(err)
	}
	var rows []string
	seen := map[string]bool{}
	for _, path := range strings.Fields(list) {
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasPrefix(path, "vendor/") || skipped(path, *skip) {
			continue
		}
		src, err := git(*gitDir, "show", *ref+":"+path)
		if err != nil {
			fatal(err)
		}
		names, loose := extract(path, src)
		for _, n := range names {
			row := strings.Join([]string{n.name, *peer, version, path, n.with}, "\t")
			if !seen[row] {
				seen[row] = true
				rows = append(rows, row)
			}
		}
		for _, l := range loose {
			fmt.Fprintf(os.Stderr, "not taken: %s %s %s\n", *peer, path, l)
		}
	}
	for _, mod := range strings.Split(*lib, ",") {
		if mod == "" {
			continue
		}
		dir, err := moduleDir(mod)
		if err != nil {
			fatal(err)
		}
		err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			names, _ := extract(rel, string(b))
			for _, n := range names {
				row := strings.Join([]string{n.name, *peer, version, mod + "/" + filepath.ToSlash(rel), n.with}, "\t")
				if !seen[row] {
					seen[row] = true
					rows = append(rows, row)
				}
			}
			return nil
		})
		if err != nil {
			fatal(err)
		}
	}
	sort.Strings(rows)
	for _, r := range rows {
		fmt.Println(r)
	}
}

func skipped(path, skip string) bool {
	for _, p := range strings.Split(skip, ",") {
		if p != "" && strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"--git-dir", dir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// moduleDir is the directory of module@version in the module cache.
func moduleDir(mod string) (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", mod).Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", mod, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no directory in %q", mod, out)
	}
	return m.Dir, nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "extract:", err)
	os.Exit(1)
}

// envLike is a string that looks like an environment variable's name.
var envLike = regexp.MustCompile(`^(PLUGIN|DRONE|DOCKER|CI|HARNESS|AWS|ECR|GCR|GOOGLE|AZURE|KANIKO|ACR|GAR|BUILDKIT)_[A-Z0-9_]+$`)

// read is one name a file reads, with every name read together with it
// for one value (a flag's names, a getenv helper's arguments), in the
// order the peer tries them.
type read struct{ name, with string }

// extract returns the names one file reads, and the name-like literals it
// did not take.
func extract(path, src string) (names []read, loose []string) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		fatal(fmt.Errorf("%s: %w", path, err))
	}
	consts := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, id := range vs.Names {
				if i < len(vs.Values) {
					if s, ok := str(vs.Values[i], nil); ok {
						consts[id.Name] = s
					}
				}
			}
		}
		return true
	})
	taken := map[*ast.BasicLit]bool{}
	// take records the names of one value, in the order they are tried.
	take := func(es []ast.Expr, split bool) {
		var group []string
		for _, e := range es {
			s, ok := str(e, consts)
			if !ok {
				continue
			}
			if bl, ok := e.(*ast.BasicLit); ok {
				taken[bl] = true
			}
			parts := []string{s}
			if split {
				parts = strings.Split(s, ",")
			}
			for _, p := range parts {
				if p = strings.TrimSpace(p); p != "" {
					group = append(group, p)
				}
			}
		}
		for _, n := range group {
			names = append(names, read{n, strings.Join(group, ",")})
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.KeyValueExpr:
			k, ok := n.Key.(*ast.Ident)
			if !ok {
				break
			}
			switch k.Name {
			case "EnvVar":
				take([]ast.Expr{n.Value}, true)
			case "EnvVars":
				if cl, ok := n.Value.(*ast.CompositeLit); ok {
					take(cl.Elts, false)
				}
			}
		case *ast.CallExpr:
			switch fn := funcName(n.Fun); {
			case strings.EqualFold(fn, "getenv") || fn == "LookupEnv":
				take(n.Args, false)
			case fn == "addProxyValue" && len(n.Args) == 2:
				if s, ok := str(n.Args[1], consts); ok {
					taken[n.Args[1].(*ast.BasicLit)] = true
					with := strings.Join([]string{s, strings.ToUpper(s), "HARNESS_" + strings.ToUpper(s)}, ",")
					names = append(names, read{s, with}, read{strings.ToUpper(s), with}, read{"HARNESS_" + strings.ToUpper(s), with})
				}
			case fn == "HasPrefix" && len(n.Args) == 2 && environEntry(f, n.Args[0]):
				if s, ok := str(n.Args[1], consts); ok && envLike.MatchString(s+"X") {
					taken[n.Args[1].(*ast.BasicLit)] = true
					names = append(names, read{s + "*", s + "*"})
				}
			}
		}
		return true
	})
	ast.Inspect(f, func(n ast.Node) bool {
		if bl, ok := n.(*ast.BasicLit); ok && bl.Kind == token.STRING && !taken[bl] {
			if s, err := strconv.Unquote(bl.Value); err == nil && envLike.MatchString(s) {
				loose = append(loose, fmt.Sprintf("%s (line %d)", s, fset.Position(bl.Pos()).Line))
			}
		}
		return true
	})
	return names, loose
}

// environEntry reports whether e is the loop variable of a range over
// os.Environ() in f.
func environEntry(f *ast.File, e ast.Expr) bool {
	id, ok := e.(*ast.Ident)
	if !ok {
		return false
	}
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		rs, ok := n.(*ast.RangeStmt)
		if !ok {
			return true
		}
		v, ok := rs.Value.(*ast.Ident)
		if ok && v.Name == id.Name {
			if c, ok := rs.X.(*ast.CallExpr); ok && funcName(c.Fun) == "Environ" {
				found = true
			}
		}
		return true
	})
	return found
}

func funcName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

// str is the value of a string literal, or of a constant of the file.
func str(e ast.Expr, consts map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.Ident:
		s, ok := consts[e.Name]
		return s, ok
	}
	return "", false
}
