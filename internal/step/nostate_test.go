package step

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// processWide are the calls that change the process for every step in
// it: the environment, the working directory, the standard library's and
// logrus's global loggers.
var processWide = map[string][]string{
	"os":     {"Setenv", "Unsetenv", "Clearenv", "Chdir"},
	"log":    {"SetOutput", "SetFlags", "SetPrefix", "SetDefault"},
	"slog":   {"SetDefault", "SetLogLoggerLevel"},
	"logrus": {"SetOutput", "SetLevel", "SetFormatter", "AddHook", "SetReportCaller"},
}

// Nothing from cli.Main down writes process-wide state while it runs: a
// step is a library call, and several run in one process at once (go test
// -race sees the races such a write makes only when two runs meet). In
// every function of every non-test file of internal/* but the test
// harness, no package-level variable is assigned (its own package's or
// another's, as the command layer wrote step.Version on every run), and
// no call changes the environment, the working directory or a global
// logger (as cli.Main set logrus's output). Package-level variables are
// set once, in their declaration; the process's own settings are
// cmd/hoist's.
func TestNoProcessStateWrittenDuringARun(t *testing.T) {
	t.Parallel()
	root := ".."
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	checked := 0
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "harness" {
			continue
		}
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, filepath.Join(root, d.Name()), func(fi os.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, pkg := range pkgs {
			checked++
			found = append(found, processWrites(fset, pkg)...)
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d packages: the walk found too few", checked)
	}
	sort.Strings(found)
	for _, f := range found {
		t.Errorf("%s", f)
	}
}

// processWrites lists, in pkg, every write of a package-level variable
// inside a function and every process-wide call.
func processWrites(fset *token.FileSet, pkg *ast.Package) []string {
	globals := map[string]bool{}
	for _, f := range pkg.Files {
		for _, decl := range f.Decls {
			if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
				for _, spec := range g.Specs {
					for _, n := range spec.(*ast.ValueSpec).Names {
						globals[n.Name] = n.Name != "_"
					}
				}
			}
		}
	}
	var out []string
	for _, f := range pkg.Files {
		imports := map[string]string{} // local name -> path
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			local := filepath.Base(p)
			if imp.Name != nil {
				local = imp.Name.Name
			}
			imports[local] = p
		}
		// isGlobal reports whether e names a package-level variable: its
		// own package's (an identifier not declared in a function: the
		// parser resolves locals), or another package's (pkg.Var).
		isGlobal := func(e ast.Expr) (string, bool) {
			for {
				switch x := e.(type) {
				case *ast.IndexExpr:
					e = x.X
					continue
				case *ast.ParenExpr:
					e = x.X
					continue
				case *ast.StarExpr:
					e = x.X
					continue
				case *ast.Ident:
					local := x.Obj != nil && x.Obj.Decl != nil && !isTopLevel(f, x.Obj.Decl)
					return x.Name, globals[x.Name] && !local
				case *ast.SelectorExpr:
					if id, ok := x.X.(*ast.Ident); ok && id.Obj == nil {
						if _, imported := imports[id.Name]; imported {
							return id.Name + "." + x.Sel.Name, true
						}
					}
					e = x.X
					continue
				}
				return "", false
			}
		}
		report := func(pos token.Pos, format string, args ...any) {
			p := fset.Position(pos)
			out = append(out, p.Filename+":"+strconv.Itoa(p.Line)+": "+fmt.Sprintf(format, args...))
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch s := n.(type) {
				case *ast.AssignStmt:
					if s.Tok == token.DEFINE {
						return true
					}
					for _, l := range s.Lhs {
						if name, ok := isGlobal(l); ok {
							report(s.Pos(), "%s writes the package-level variable %s", fn.Name.Name, name)
						}
					}
				case *ast.IncDecStmt:
					if name, ok := isGlobal(s.X); ok {
						report(s.Pos(), "%s writes the package-level variable %s", fn.Name.Name, name)
					}
				case *ast.CallExpr:
					sel, ok := s.Fun.(*ast.SelectorExpr)
					if !ok {
						return true
					}
					id, ok := sel.X.(*ast.Ident)
					if !ok || id.Obj != nil {
						return true
					}
					for _, call := range processWide[filepath.Base(imports[id.Name])] {
						if sel.Sel.Name == call {
							report(s.Pos(), "%s calls %s.%s, which changes the whole process", fn.Name.Name, id.Name, call)
						}
					}
				}
				return true
			})
		}
	}
	return out
}

// isTopLevel reports whether decl is a declaration at the file's top
// level (a package-level variable of this file).
func isTopLevel(f *ast.File, decl any) bool {
	spec, ok := decl.(*ast.ValueSpec)
	if !ok {
		return false
	}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok {
			for _, s := range g.Specs {
				if s == spec {
					return true
				}
			}
		}
	}
	return false
}
