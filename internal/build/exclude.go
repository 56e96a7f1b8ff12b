package build

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hoist-build/hoist/internal/files"
)

// TempPatterns match the temporary files and directories of every hoist
// step (files.Create's partial files, a build's layout directory), so that
// no build's context carries another's half-written tarball, whichever
// step of the workspace wrote it.
var TempPatterns = []string{"**/" + files.TempPrefix + "*", "**/" + LayoutPrefix + "*"}

// LayoutPrefix starts the name of a build's temporary layout directory.
const LayoutPrefix = ".hoist-build-"

// Excludes are the dockerignore patterns that keep hoist's own files out
// of a build context: the temporary ones, and each of paths (the
// workspace's .hoist directory, the image store, the step's own tarball)
// that lies inside ctxDir.
func Excludes(ctxDir string, paths ...string) []string {
	out := append([]string(nil), TempPatterns...)
	for _, p := range paths {
		if p == "" {
			continue
		}
		rel, err := filepath.Rel(ctxDir, p)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		out = append(out, filepath.ToSlash(rel))
	}
	return out
}

// kanikoIgnore writes, in dir, a copy of the Dockerfile and beside it the
// Dockerfile.dockerignore that Kaniko reads before the context's
// .dockerignore: the user's patterns (the Dockerfile's own ignore file, else
// the context's), then hoist's. It returns the copy's path.
func kanikoIgnore(dir, ctxDir, dockerfile string, excludes []string) (string, error) {
	df, err := os.ReadFile(dockerfile)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInput, err)
	}
	var ignore []byte
	for _, p := range []string{dockerfile + ".dockerignore", filepath.Join(ctxDir, ".dockerignore")} {
		if ignore, err = os.ReadFile(p); err == nil {
			break
		} else if !os.IsNotExist(err) {
			return "", fmt.Errorf("%w: %w", ErrInput, err)
		}
	}
	var b bytes.Buffer
	b.Write(ignore)
	if len(ignore) > 0 && !bytes.HasSuffix(ignore, []byte("\n")) {
		b.WriteByte('\n')
	}
	b.WriteString("# hoist's own files\n")
	for _, e := range excludes {
		b.WriteString(e + "\n")
	}
	copyPath := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(copyPath, df, 0o644); err != nil {
		return "", err
	}
	return copyPath, os.WriteFile(copyPath+".dockerignore", b.Bytes(), 0o644)
}
