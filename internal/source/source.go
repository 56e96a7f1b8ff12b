// Package source finds the pre-built image to push: a docker-archive or OCI
// archive tarball (plain or compressed), an OCI image layout directory, an
// image in the local Docker daemon, or an image in a registry. Whatever the
// place, the result is a go-containerregistry v1.Image or v1.ImageIndex whose
// blobs are streamed, and verified against their digests, as they are read.
package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/runid"
)

// Artifact is what a source yields and a publisher pushes: a v1.Image or a
// v1.ImageIndex.
type Artifact interface {
	Digest() (v1.Hash, error)
	MediaType() (types.MediaType, error)
	RawManifest() ([]byte, error)
	Size() (int64, error)
}

// Image is an opened source image. Close removes any temporary files.
type Image struct {
	Artifact Artifact
	Digest   v1.Hash
	// From says where the image was found, for the log.
	From    string
	closers []func() error
	// local is the file or directory the image was read from; nil for a
	// registry source.
	local container
	// archive is a plain docker-archive holding this one image, which
	// Trivy reads as it is ("" for any other source).
	archive string
	// store is the workspace image store, whose entries this run's
	// builds wrote vouch for their layers (see builtLayers).
	store string
	run   runid.Run
	logf  func(string, ...any)
	// checked are the layers this process checked against their
	// diff_ids (before the scan): the push's check skips them.
	checked blobSet
	// scanChecked: CheckForScan passed.
	scanMu      sync.Mutex
	scanChecked bool
}

// Close releases the files behind the image.
func (i *Image) Close() error {
	var errs []error
	for j := len(i.closers) - 1; j >= 0; j-- {
		errs = append(errs, i.closers[j]())
	}
	i.closers = nil
	return errors.Join(errs...)
}

// Request says where to look for the image.
type Request struct {
	// TarPath is a tarball or an OCI layout directory.
	TarPath string
	// Image is a reference: picks an image inside TarPath, or is looked up
	// in the daemon, then in its registry.
	Image string
	// Fallbacks are looked up in the daemon when neither TarPath nor Image
	// is given (the peers' push-only from the daemon: repo:tag).
	Fallbacks []string
	// Store is the workspace image store, looked in first for Image and
	// Fallbacks.
	Store string
	// Daemon is nil when the Docker daemon must not be used.
	Daemon *Daemon
	// Access reaches the registry of a remote Image.
	Access registry.Access
	// Insecure allows plain HTTP for a remote Image.
	Insecure bool
	// TempDir holds compressed layers and decompressed tarballs.
	TempDir string
	// GzipLevel is used for layers that arrive uncompressed.
	GzipLevel int
	// KeepUncompressed pushes uncompressed layers as they are.
	KeepUncompressed bool
	// CompressCache, when set, is the workspace's compression cache: a
	// layer is compressed once per compressor, by whichever step or
	// process comes first.
	CompressCache string
	// Run is the step's pipeline run: state in the workspace (the image
	// store, the compression cache) vouches for something only when this
	// run made it.
	Run runid.Run
	// Workspace is where the cache (and any file written) follows no
	// symbolic link out (files.Workspace).
	Workspace files.Workspace
	// Logf reports progress; may be nil.
	Logf func(format string, args ...any)
}

func (r *Request) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

// Open finds the image the request describes.
func Open(ctx context.Context, r Request) (img *Image, err error) {
	switch {
	case r.TarPath != "":
		img, err = openPath(ctx, r)
	case r.Image != "":
		img, err = openReference(ctx, r, r.Image)
	default:
		img, err = openFallbacks(ctx, r)
	}
	if img != nil {
		img.store, img.run, img.logf = r.Store, r.Run, r.Logf
	}
	if err == nil && r.Image != "" {
		if err = pinned(img, r); err != nil {
			img.Close()
			return nil, err
		}
	}
	return img, err
}

// pinned checks that a digest reference (PLUGIN_SOURCE_IMAGE=repo@sha256:X)
// yields exactly that digest: a store entry, a lone unnamed image or an
// image of the daemon with another digest is not pushed in its place.
func pinned(img *Image, r Request) error {
	ref, err := ParseReference(r.Image, r.Insecure)
	if err != nil {
		return nil
	}
	d, ok := ref.(name.Digest)
	if !ok || img.Digest.String() == d.DigestStr() {
		return nil
	}
	return fmt.Errorf("%w: the source image %s is pinned to %s, and %s holds %s: nothing was pushed; pin the digest that is there, or name the image by a tag", ErrDigestMismatch, r.Image, d.DigestStr(), img.From, img.Digest)
}

// layoutDir opens the OCI layout directory dir (a source, the workspace
// image store) through os.Root: a symbolic link in it that leads out of
// it (blobs/sha256/<hex> -> ~/.docker/config.json) is refused, never read
// and sent as a blob; one inside it is followed. Only regular files (and
// directories) are opened: a FIFO (whose open would wait for a writer)
// or a device is refused before it is read. closeRoot releases it.
func layoutDir(dir string) (fsys fs.FS, closeRoot func() error, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	return regularFS{root}, root.Close, nil
}

// regularFS is a directory, read through os.Root, whose files are opened
// only when they are regular files or directories.
type regularFS struct{ root *os.Root }

func (r regularFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, err := r.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() && !st.IsDir() {
		f.Close()
		return nil, files.NotRegular(name, st.Mode())
	}
	return f, nil
}

func (r regularFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	return r.root.Stat(name)
}

func openPath(ctx context.Context, r Request) (img *Image, err error) {
	abs, err := filepath.Abs(r.TarPath)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: image tarball does not exist at path: %s (check PLUGIN_SOURCE_TAR_PATH and that the build step wrote it to a shared workspace)", ErrNotFound, abs)
	}
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", abs, err)
	}
	img = &Image{}
	opened := img
	defer func() {
		if err != nil {
			opened.Close()
		}
	}()
	if st.IsDir() {
		fsys, closeRoot, err := layoutDir(abs)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", abs, err)
		}
		img.closers = append(img.closers, closeRoot)
		if !isLayout(fsys) {
			return nil, fmt.Errorf("%w: %s is a directory but not an OCI image layout (it has no oci-layout and index.json); point PLUGIN_SOURCE_TAR_PATH at an image tarball or at a layout directory", ErrBadInput, abs)
		}
		where := "OCI layout " + abs
		return finish(ctx, img, r, &ociLayout{fsys: fsys, dir: abs, where: where, comp: r.compressor(ctx, &img.closers)}, nil, where)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrBadInput, abs)
	}
	tarPath, kind, err := plainTar(abs, r.TempDir)
	if err != nil {
		return nil, err
	}
	if tarPath != abs {
		img.closers = append(img.closers, func() error { return os.Remove(tarPath) })
	}
	tfs, err := openTarFS(tarPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", abs, err)
	}
	img.closers = append(img.closers, tfs.Close)
	img.archive = singleImageArchive(tfs, tarPath)
	if isLayout(tfs) {
		where := "OCI archive " + abs + kind
		if _, err := tfs.Open("manifest.json"); err == nil {
			where = "docker-archive " + abs + kind
		}
		return finish(ctx, img, r, &ociLayout{fsys: tfs, where: where, comp: r.compressor(ctx, &img.closers)}, nil, where)
	}
	if _, err := tfs.Open("manifest.json"); err == nil {
		where := "docker-archive " + abs + kind
		da := &dockerArchive{fsys: tfs, where: where, comp: r.compression(), keep: r.KeepUncompressed}
		return finish(ctx, img, r, nil, da, where)
	}
	names := tfs.names()
	if len(names) > 5 {
		names = append(names[:5], "...")
	}
	return nil, fmt.Errorf("%w: %s is a tar archive but neither a docker-archive (no manifest.json) nor an OCI archive (no oci-layout and index.json); it holds %s", ErrBadInput, abs, strings.Join(names, ", "))
}

// compressor compresses uncompressed layers of layouts, unless asked not to.
func (r *Request) compressor(ctx context.Context, closers *[]func() error) *compressor {
	if r.KeepUncompressed {
		return nil
	}
	return &compressor{ctx: ctx, compression: r.compression(), closers: closers}
}

func (r *Request) compression() compression {
	return compression{tempDir: r.TempDir, cacheDir: r.CompressCache, ws: r.Workspace, level: r.GzipLevel, logf: r.Logf, run: r.Run}
}

// finish picks the image in a layout or docker archive and prepares it.
func finish(ctx context.Context, img *Image, r Request, l *ociLayout, da *dockerArchive, where string) (*Image, error) {
	var cands []candidate
	var err error
	if l != nil {
		cands, err = l.candidates()
	} else {
		cands, err = da.candidates(ctx, r.logf, &img.closers)
	}
	if err != nil {
		return nil, err
	}
	c, err := pick(cands, r.Image, where)
	if err != nil {
		return nil, err
	}
	if l != nil {
		return finishCandidate(img, l, c, where)
	}
	return finishCandidate(img, da, c, where)
}

// finishCandidate opens the picked image and checks that a layout has
// every blob it needs.
func finishCandidate(img *Image, from container, c candidate, where string) (*Image, error) {
	a, err := c.open()
	if err != nil {
		return nil, err
	}
	if l, ok := from.(*ociLayout); ok {
		if err := l.checkBlobs(a); err != nil {
			return nil, err
		}
	}
	img.local = from
	img.Artifact = a
	img.Digest, err = a.Digest()
	if err != nil {
		return nil, err
	}
	img.From = where
	if len(c.names) > 0 {
		img.From += " (" + strings.Join(c.names, ", ") + ")"
	}
	return img, nil
}

// candidate is one image a source holds.
type candidate struct {
	names []string // references it is known by
	label string   // what to call it when it has no names
	open  func() (Artifact, error)
	// run is the run an image store entry names (see RunAnnotation).
	run string
}

// pick selects the candidate that want names, or the only one.
func pick(cands []candidate, want, where string) (candidate, error) {
	list := func() string {
		var s []string
		for _, c := range cands {
			if len(c.names) > 0 {
				s = append(s, strings.Join(c.names, " = "))
			} else {
				s = append(s, c.label+" (unnamed)")
			}
		}
		return strings.Join(s, "; ")
	}
	if len(cands) == 0 {
		return candidate{}, fmt.Errorf("%w: %s holds no image", ErrBadInput, where)
	}
	if want == "" {
		if len(cands) == 1 {
			return cands[0], nil
		}
		return candidate{}, fmt.Errorf("%w: %s holds %d images; set PLUGIN_SOURCE_IMAGE (--source-image) to the one to push: %s", ErrBadInput, where, len(cands), list())
	}
	var hits []candidate
	for _, c := range cands {
		if matches(c, want) {
			hits = append(hits, c)
		}
	}
	switch {
	case len(hits) == 1:
		return hits[0], nil
	case len(hits) > 1:
		return candidate{}, fmt.Errorf("%w: %q matches %d images in %s: %s", ErrBadInput, want, len(hits), where, list())
	case len(cands) == 1 && len(cands[0].names) == 0:
		return cands[0], nil
	}
	return candidate{}, fmt.Errorf("%w: %s does not hold %q; it holds: %s", ErrNotFound, where, want, list())
}

// matches compares references after normalisation, so that "app:1",
// "docker.io/library/app:1" and "index.docker.io/library/app:1" are one.
func matches(c candidate, want string) bool {
	wr, werr := name.ParseReference(strings.TrimSuffix(want, ":"))
	for _, n := range c.names {
		if n == want {
			return true
		}
		if werr != nil {
			continue
		}
		if wr.Identifier() == n && !strings.ContainsAny(n, "/:@") {
			return true // an OCI ref.name annotation that is only a tag
		}
		if nr, err := name.ParseReference(n); err == nil && nr.Name() == wr.Name() {
			return true
		}
	}
	if werr == nil {
		if d, ok := wr.(name.Digest); ok && d.DigestStr() == c.label {
			return true
		}
	}
	return false
}
