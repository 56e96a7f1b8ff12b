package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/runid"
)

// The workspace image store is an OCI image layout in the workspace
// (default .hoist/images) where a build-only step records its image under
// every full reference, so that a later push-only step in the same
// workspace finds it without a tarball and without a Docker daemon.

const refAnnotation = "org.opencontainers.image.ref.name"

// RunAnnotation, on an entry of the store's index.json, is the run
// identity (runid.Run.ID) of the build that recorded it. Only the
// entries of this run's builds vouch for their layers and are the lone
// image a push-only step falls back to: the store lies in the checkout,
// where the repository or a restored cache can put anything.
const RunAnnotation = "io.github.hoist-build.run"

// StoreImage records the image of an OCI layout directory (a build's
// export, with one entry in its index.json) in the store at dir under refs,
// stamped with run. Blobs are hard-linked when both are on one filesystem.
// Entries with the same names are replaced. Several processes and steps
// may store at once: blobs are linked and index.json rewritten under the
// store's lock. In the workspace ws, no link that leads out of it is
// followed (files.Workspace).
//
// Every blob of the image is the build's: one already in the store under
// its name (committed with the repository, brought by a restored cache)
// is replaced, never kept. The entry vouches for its layers (CheckContent skips
// them) and is scanned in place, so a blob of the right name holding
// other bytes would be pushed, and scanned, unchecked.
func StoreImage(ctx context.Context, ws files.Workspace, dir, layoutDir string, refs []string, run runid.Run) (v1.Descriptor, error) {
	src := &ociLayout{fsys: os.DirFS(layoutDir), where: "build output " + layoutDir}
	im, _, err := src.indexJSON()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if len(im.Manifests) != 1 {
		return v1.Descriptor{}, fmt.Errorf("build output %s holds %d images, want 1", layoutDir, len(im.Manifests))
	}
	desc := im.Manifests[0]
	if err := ws.MkdirAll(filepath.Join(dir, "blobs", "sha256")); err != nil {
		return desc, fmt.Errorf("image store %s: %w", dir, err)
	}
	unlock, err := lockFile(ctx, ws, filepath.Join(dir, ".lock"), lockWait)
	if err != nil {
		return desc, fmt.Errorf("image store %s: %w", dir, err)
	}
	defer unlock()
	blobs, err := os.ReadDir(filepath.Join(layoutDir, "blobs", "sha256"))
	if err != nil {
		return desc, err
	}
	for _, b := range blobs {
		from := filepath.Join(layoutDir, "blobs", "sha256", b.Name())
		to := filepath.Join(dir, "blobs", "sha256", b.Name())
		if err := ws.LinkOrCopyOver(ctx, from, to); err != nil {
			return desc, fmt.Errorf("image store %s: %w", dir, err)
		}
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	if b, err := ws.ReadRegular(filepath.Join(dir, "index.json"), MaxMetadata); err == nil {
		if err := json.Unmarshal(b, &idx); err != nil {
			return desc, fmt.Errorf("image store %s: index.json: %w", dir, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return desc, fmt.Errorf("image store %s: index.json: %w (remove it)", dir, err)
	}
	drop := map[string]bool{}
	for _, r := range refs {
		drop[normalize(r)] = true
	}
	kept := idx.Manifests[:0]
	for _, d := range idx.Manifests {
		if !drop[normalize(d.Annotations[refAnnotation])] {
			kept = append(kept, d)
		}
	}
	idx.Manifests = kept
	for _, r := range refs {
		d := desc
		d.Annotations = map[string]string{refAnnotation: r}
		if run.ID != "" {
			d.Annotations[RunAnnotation] = run.ID
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return desc, err
	}
	if err := ws.WriteAtomic(filepath.Join(dir, "index.json"), b); err != nil {
		return desc, err
	}
	if err := ws.WriteAtomic(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return desc, err
	}
	return desc, nil
}

// normalize makes "app:1" and "index.docker.io/library/app:1" one key.
func normalize(ref string) string {
	if r, err := name.ParseReference(ref); err == nil {
		return r.Name()
	}
	return ref
}

// openStore looks for want (a full reference) in the store r.Store. Only
// entries this run made are taken (see storeTrust): one that names want
// but was made by another run, or came with the checkout or a restored
// cache, is skipped, with a line in the log and a note that say why, so
// that the lookup goes on (the daemon, the registry) instead of pushing
// what the repository put there under a registry image's name.
func openStore(ctx context.Context, r Request, want string) (img *Image, note string, err error) {
	// The store lies in the checkout: read as any layout directory,
	// following no link out of it.
	fsys, closeRoot, err := layoutDir(r.Store)
	if err != nil {
		return nil, "", nil
	}
	if !isLayout(fsys) {
		closeRoot()
		return nil, "", nil
	}
	img = &Image{closers: []func() error{closeRoot}}
	l := &ociLayout{fsys: fsys, dir: r.Store, where: "workspace image store " + r.Store, comp: r.compressor(ctx, &img.closers)}
	cands, err := l.candidates()
	if err != nil {
		img.Close()
		return nil, "", err
	}
	trust := storeTrust(ctx, r.Store, r.Run)
	var skipped []string
	seen := map[int]bool{}
	taken := func(i int) bool {
		c := cands[i]
		err := trust(c.run)
		if err == nil {
			return true
		}
		if !seen[i] {
			seen[i] = true
			r.logf("source: the workspace image store's entry %s for %s is not this run's (%s): skipped; looking further", c.label, want, runid.Reason(err))
			skipped = append(skipped, c.label)
		}
		return false
	}
	found := func(c candidate) (*Image, string, error) {
		out, err := finishCandidate(img, l, c, l.where)
		if err != nil {
			img.Close()
		}
		return out, "", err
	}
	// A digest is looked for as the entry's digest first: an entry that
	// only names it may hold another (Open refuses that one).
	if d, err := name.NewDigest(want); err == nil {
		for i, c := range cands {
			if c.label == d.DigestStr() && taken(i) {
				return found(c)
			}
		}
	}
	for i, c := range cands {
		if matches(c, want) && taken(i) {
			return found(c)
		}
	}
	img.Close()
	if len(skipped) > 0 {
		return nil, fmt.Sprintf("the workspace image store %s has entries for %s that this run did not make (%s), skipped", r.Store, want, strings.Join(skipped, ", ")), nil
	}
	return nil, "", nil
}

// storeTrust says whether an entry of the store, stamped with a run,
// was made by this run (see runid.Run.Made; index.json is the file git
// may track).
func storeTrust(ctx context.Context, dir string, run runid.Run) func(stamp string) error {
	index := filepath.Join(dir, "index.json")
	seen := map[string]error{}
	return func(stamp string) error {
		if err, ok := seen[stamp]; ok {
			return err
		}
		err := run.Made(ctx, stamp, index)
		seen[stamp] = err
		return err
	}
}

// lockWait bounds the wait for the store's lock.
const lockWait = 2 * time.Minute

// lockFile takes an exclusive flock on path (creating it), so that
// parallel steps and processes of one workspace take turns: the store's
// index, a layer of the compression cache. It waits at most wait, or until
// ctx ends. In the workspace ws, no link that leads out of it is followed.
func lockFile(ctx context.Context, ws files.Workspace, path string, wait time.Duration) (func(), error) {
	f, err := ws.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock: %w", err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("another step has held its lock for %s", wait)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// openStoreSingle is push-only when no recorded name matches a
// destination: the one image this run's builds recorded, under whatever
// names (the mission's push-only steps push to repositories their build
// did not name). Entries this run did not make are not considered. With
// several images it opens none and its note lists them.
func openStoreSingle(ctx context.Context, r Request) (*Image, string, error) {
	if r.Store == "" {
		return nil, "", nil
	}
	fsys, closeRoot, err := layoutDir(r.Store)
	if err != nil {
		return nil, "", nil
	}
	if !isLayout(fsys) {
		closeRoot()
		return nil, "", nil
	}
	img := &Image{closers: []func() error{closeRoot}}
	l := &ociLayout{fsys: fsys, dir: r.Store, where: "workspace image store " + r.Store, comp: r.compressor(ctx, &img.closers)}
	cands, err := l.candidates()
	if err != nil {
		img.Close()
		return nil, "", err
	}
	trust := storeTrust(ctx, r.Store, r.Run)
	var byDigest []candidate
	var others []string
	var why error
	for _, c := range cands {
		if err := trust(c.run); err != nil {
			if why == nil {
				why = err
			}
			if !slices.Contains(others, c.label) {
				others = append(others, c.label)
			}
			continue
		}
		i := slices.IndexFunc(byDigest, func(b candidate) bool { return b.label == c.label })
		if i < 0 {
			byDigest = append(byDigest, candidate{label: c.label, open: c.open})
			i = len(byDigest) - 1
		}
		byDigest[i].names = append(byDigest[i].names, c.names...)
	}
	switch len(byDigest) {
	case 0:
		img.Close()
		if len(others) > 0 {
			return nil, fmt.Sprintf("the workspace image store %s holds %d image(s) not made by this run (%s), which a push-only step takes only by the name in PLUGIN_SOURCE_IMAGE", r.Store, len(others), runid.Reason(why)), nil
		}
		return nil, "", nil
	case 1:
		where := l.where + ", the one image recorded there, as none is named as a destination"
		out, err := finishCandidate(img, l, byDigest[0], where)
		if err != nil {
			img.Close()
			return nil, "", err
		}
		return out, "", nil
	}
	var list []string
	for _, c := range byDigest {
		list = append(list, c.label+" ("+strings.Join(c.names, ", ")+")")
	}
	img.Close()
	return nil, fmt.Sprintf("the workspace image store %s holds %d images and none is named as a destination: %s; set PLUGIN_SOURCE_IMAGE to one of their names", r.Store, len(byDigest), strings.Join(list, "; ")), nil
}
