package step

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/settings"
)

// The filesystem export's destination: a new or empty directory, or a
// file; a directory that holds files is refused before the build.
func TestFSExportOf(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	os.MkdirAll(filepath.Join(work, "empty"), 0o755)
	os.MkdirAll(filepath.Join(work, "full"), 0o755)
	os.WriteFile(filepath.Join(work, "full", "x"), nil, 0o644)
	path := func(p string) string { return filepath.Join(work, p) }
	for v, want := range map[string]string{"type=local,dest=new": "local " + path("new"), "empty": "local " + path("empty"), "type=tar,dest=full": "tar " + path("full"), "type=registry": " "} {
		typ, dest, err := fsExportOf(loadEnv(t, map[string]string{"PLUGIN_OUTPUT": v}, work), path)
		if err != nil || typ+" "+dest != want {
			t.Errorf("%q: %s %s %v, want %s", v, typ, dest, err, want)
		}
	}
	if _, _, err := fsExportOf(loadEnv(t, map[string]string{"PLUGIN_OUTPUT": "type=local,dest=full"}, work), path); !errors.Is(err, settings.ErrInvalid) || !strings.Contains(err.Error(), "holds files") {
		t.Errorf("a full directory: %v", err)
	}
}

// A filesystem export that was not published leaves nothing: neither the
// tarball nor the directory BuildKit wrote into.
func TestFSExportLeavesNothingUnpublished(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	ws := files.Workspace(work)
	for _, typ := range []string{"tar", "local"} {
		p := &fsExport{ws: ws, typ: typ, dest: filepath.Join(work, "out", typ)}
		var out build.Outputs
		if err := p.Stream(context.Background(), &out); err != nil {
			t.Fatal(err)
		}
		if out.FSTar != nil {
			out.FSTar.Write([]byte("partial"))
		} else {
			os.WriteFile(filepath.Join(out.FSDir, "partial"), nil, 0o644)
		}
		p.Close()
	}
	if entries, _ := os.ReadDir(filepath.Join(work, "out")); len(entries) != 0 {
		t.Errorf("left: %v", entries)
	}
}
