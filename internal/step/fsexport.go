package step

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/settings"
)

// fsExportOf is the export of the image's filesystem PLUGIN_OUTPUT asks
// for (type=local: a directory, type=tar: a tarball), its destination
// resolved; a directory must be new or empty (hoist replaces nothing of
// the user's, and merges nothing into it).
func fsExportOf(s *settings.Settings, path func(string) string) (typ, dest string, err error) {
	typ, dest, ok := s.FSExport()
	if !ok {
		return "", "", nil
	}
	dest = path(dest)
	if typ == "local" {
		if entries, err := os.ReadDir(dest); err == nil && len(entries) > 0 {
			return "", "", fmt.Errorf("%w: %s=%q: %s is a directory that holds files; the image's filesystem is written to a new or empty directory: remove it first, or name another", settings.ErrInvalid, s.Origin("build-output"), s.Output, dest)
		} else if err != nil && !os.IsNotExist(err) {
			return "", "", fmt.Errorf("%w: %s=%q: %s: %w", settings.ErrInvalid, s.Origin("build-output"), s.Output, dest, err)
		}
	}
	return typ, dest, nil
}

// fsDestOf is where PLUGIN_OUTPUT writes the image's filesystem ("" for
// nowhere): kept out of the build's contexts, as the tarball is.
func fsDestOf(s *settings.Settings, path func(string) string) string {
	if _, d, ok := s.FSExport(); ok {
		return path(d)
	}
	return ""
}

// fsExport writes the image's filesystem as BuildKit exports it (buildx
// --output type=tar or type=local): a tarball written atomically, or a
// directory made beside dest (in the workspace, no link followed) and
// renamed into place once the build is done. Nothing is left when the
// build fails.
type fsExport struct {
	ws        files.Workspace
	typ, dest string
	tar       *files.Atomic
	tmp       string
	published bool
}

var _ Streamer = (*fsExport)(nil)

func (p *fsExport) Stream(ctx context.Context, out *build.Outputs) error {
	if p.typ == "tar" {
		tar, err := createTar(p.ws, p.dest)
		if err != nil {
			return err
		}
		p.tar, out.FSTar = tar, tar
		return nil
	}
	parent := filepath.Dir(p.dest)
	if err := p.ws.MkdirAll(parent); err != nil {
		return fmt.Errorf("%w: failed to create directory for %s: %w", ErrInvalid, p.dest, err)
	}
	tmp, err := p.ws.MkdirTemp(parent, build.LayoutPrefix+"fs-*")
	if err != nil {
		return err
	}
	p.tmp, out.FSDir = tmp, tmp
	return nil
}

func (p *fsExport) Publish(ctx context.Context, img *Image) (Published, error) {
	if p.tar == nil && p.tmp == "" {
		return Published{}, fmt.Errorf("the image's filesystem (%s): the build did not write it", p.dest)
	}
	what := "wrote the image's filesystem as a tarball " + p.dest
	if p.tar != nil {
		if err := p.tar.Commit(); err != nil {
			return Published{}, err
		}
	} else {
		// The directory was new or empty when the step was planned.
		if err := p.ws.Remove(p.dest); err != nil && !os.IsNotExist(err) {
			return Published{}, fmt.Errorf("%w: %s: %w (the image's filesystem is written to a new or empty directory)", ErrInvalid, p.dest, err)
		}
		if err := os.Chmod(p.tmp, 0o755); err != nil {
			return Published{}, err
		}
		if err := p.ws.Rename(p.tmp, p.dest); err != nil {
			return Published{}, err
		}
		what = "wrote the image's filesystem to " + p.dest
	}
	p.published = true
	return Published{Message: what}, nil
}

func (p *fsExport) Close() error {
	if p.tar != nil {
		p.tar.Abort()
	}
	if p.tmp != "" && !p.published {
		os.RemoveAll(p.tmp)
	}
	return nil
}
