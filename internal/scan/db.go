package scan

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/gzip"

	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/runid"
)

// ErrDBDigest marks a vulnerability database whose manifest digest is
// not the one the scan pins (PLUGIN_SCAN_DB_DIGEST).
var ErrDBDigest = errors.New("database digest mismatch")

// DBMediaType is the media type of the one layer of Trivy's database
// artifact (db.tar.gz).
const DBMediaType = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"

// originFile is hoist's record, beside Trivy's metadata.json, of the
// fetch that put the database in the cache.
const originFile = "hoist-origin.json"

// maxDBFile bounds what one file of the database artifact may
// decompress to: Trivy's trivy.db is about 1 GiB today.
const maxDBFile = 16 << 30

// origin is where hoist fetched the database in a cache from, and in
// which run. Metadata is the digest of the metadata.json it wrote, DBSize
// and DBModTime trivy.db's: a database replaced since (by trivy
// --download-db-only, by hand, by a restored cache without this file) no
// longer matches, and its origin is unknown. Run is the identity of the
// pipeline run that fetched it (runid.Run.ID; empty outside CI): the
// file lies in a cache a CI may restore from another run, or a
// repository or an earlier step may write, and anyone can write one that
// names any digest, so it vouches for the database only in the run that
// wrote it (runid.Run.Made).
type origin struct {
	Repository string    `json:"repository"`
	Digest     string    `json:"digest"`
	FetchedAt  time.Time `json:"fetchedAt"`
	Metadata   string    `json:"metadata"`
	DBSize     int64     `json:"dbSize"`
	DBModTime  time.Time `json:"dbModTime"`
	Run        string    `json:"run,omitempty"`
}

// maxDBMeta bounds what hoist reads of metadata.json and of its origin
// file: a few hundred bytes each, written by Trivy or hoist. The cache
// may come from elsewhere (restored, or written by an earlier step), so
// either could be made huge, or a FIFO that blocks a read for ever.
const maxDBMeta = 64 << 10

// readSmall reads the regular file p, of at most max bytes. A symbolic
// link, a FIFO, a device or a directory is refused without being read
// (the open does not block on a FIFO).
func readSmall(p string, max int64) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link, not a regular file", p)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", p, st.Mode().Type())
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s is %d bytes, over the bound of %d", p, st.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is over the bound of %d bytes", p, max)
	}
	return b, nil
}

// readOrigin returns hoist's record of the database in dir when this run
// wrote it and it still describes the files there (meta is metadata.json's
// content); otherwise nil and why the database's origin is unknown.
func (s *Scanner) readOrigin(ctx context.Context, dir string, meta []byte) (*origin, string) {
	p := filepath.Join(dir, originFile)
	b, err := readSmall(p, maxDBMeta)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "hoist did not fetch it: it has no " + originFile + " (Trivy, a person or a restored cache put it there)"
	}
	if err != nil {
		return nil, fmt.Sprintf("its %s cannot be read: %v", originFile, err)
	}
	var o origin
	if json.Unmarshal(b, &o) != nil || o.Digest == "" {
		return nil, fmt.Sprintf("its %s is not hoist's record of a fetch", originFile)
	}
	if err := s.o.Run.Made(ctx, o.Run, p); err != nil {
		return nil, fmt.Sprintf("its %s is not this run's: %s", originFile, runid.Reason(err))
	}
	st, err := os.Lstat(filepath.Join(dir, "trivy.db"))
	if err != nil || o.Metadata != sha256Hex(meta) || st.Size() != o.DBSize || !st.ModTime().Equal(o.DBModTime) {
		return nil, "trivy.db or metadata.json changed since hoist fetched it"
	}
	return &o, ""
}

func sha256Hex(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// CheckDigest checks a pinned database digest (PLUGIN_SCAN_DB_DIGEST).
func CheckDigest(d string) error {
	h, err := v1.NewHash(d)
	if err != nil || h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return fmt.Errorf("%q is not a manifest digest: want sha256: and 64 hex digits, as crane digest prints it", d)
	}
	return nil
}

// fetchDB fetches the database from the first repository that serves
// it (and, when the scan pins one, serves the pinned digest) into the
// cache. The repositories are reached with Options.Access: hoist's own
// transport, so the database comes over TLS verified like every registry
// hoist talks to, and over plain HTTP from loopback only.
func (s *Scanner) fetchDB(ctx context.Context) error {
	var errs []error
	for _, repo := range s.o.DBRepositories {
		err := s.fetchFrom(ctx, repo)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	err := errors.Join(errs...)
	if errors.Is(err, ErrDBDigest) {
		return err
	}
	return fmt.Errorf("%w: the vulnerability database could not be fetched from the database repositories %s: %w", ErrScanner, strings.Join(s.o.DBRepositories, ", "), err)
}

// fetchFrom fetches the database artifact repo names: one layer of
// Trivy's database media type, whose db.tar.gz holds trivy.db and
// metadata.json. The files are written to a directory beside the cache's
// db and swapped in whole, once every byte has matched its digest.
func (s *Scanner) fetchFrom(ctx context.Context, repo string) error {
	ref, err := name.ParseReference(repo)
	if err != nil {
		return fmt.Errorf("database repository %q is not a reference: %w", repo, err)
	}
	opts := s.o.Access.Options(ctx)
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return fmt.Errorf("database repository %s: %w", repo, registry.TLSAdvice(err))
	}
	got := desc.Digest.String()
	if pin := s.o.DBDigest; pin != "" && got != pin {
		return fmt.Errorf("%w: the vulnerability database at %s is %s, but PLUGIN_SCAN_DB_DIGEST pins %s: nothing was scanned; pin the database the mirror serves, or mirror the pinned one", ErrDBDigest, repo, got, pin)
	}
	img, err := desc.Image()
	if err != nil {
		return fmt.Errorf("database repository %s: %s is not Trivy's database artifact: %w", repo, got, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("database repository %s: %w", repo, registry.TLSAdvice(err))
	}
	if len(layers) != 1 {
		return fmt.Errorf("database repository %s: %s has %d layers; Trivy's database artifact has one (%s)", repo, got, len(layers), DBMediaType)
	}
	if mt, err := layers[0].MediaType(); err != nil || string(mt) != DBMediaType {
		return fmt.Errorf("database repository %s: %s's layer is %s, not Trivy's database (%s)", repo, got, mt, DBMediaType)
	}
	tmp, err := os.MkdirTemp(s.o.CacheDir, ".hoist-db-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		return fmt.Errorf("database repository %s: %w", repo, registry.TLSAdvice(err))
	}
	err = extractDB(rc, tmp)
	// Read to the end: go-containerregistry checks the blob's digest
	// there, and the files count only if it matched.
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
	}
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("database repository %s: %s: %w", repo, got, registry.TLSAdvice(err))
	}
	now := s.o.Now().UTC()
	meta, err := stampMetadata(tmp, now)
	if err != nil {
		return fmt.Errorf("database repository %s: %s: %w", repo, got, err)
	}
	var m struct{ Version int }
	if json.Unmarshal(meta, &m) != nil || m.Version != DBSchema {
		return fmt.Errorf("the database at %s (%s) has schema %d; Trivy %s reads schema %d (the tag is :%d)", repo, got, m.Version, TrivyVersion, DBSchema, DBSchema)
	}
	st, err := os.Stat(filepath.Join(tmp, "trivy.db"))
	if err != nil {
		return err
	}
	o := origin{Repository: ref.String(), Digest: got, FetchedAt: now, Metadata: sha256Hex(meta), DBSize: st.Size(), DBModTime: st.ModTime(), Run: s.o.Run.ID}
	b, _ := json.MarshalIndent(o, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, originFile), append(b, '\n'), 0o644); err != nil {
		return err
	}
	// Swapped in whole: the old database is moved aside, then removed.
	dst := s.dbDir()
	old := tmp + ".old"
	if err := os.Rename(dst, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Rename(old, dst)
		return fmt.Errorf("replace %s: %w", dst, err)
	}
	os.RemoveAll(old)
	s.o.Logf("scan: fetched the vulnerability database %s from %s", got, repo)
	return nil
}

// extractDB writes trivy.db and metadata.json from db.tar.gz into dir.
// Nothing else is written: no other name, no link, no directory.
func extractDB(r io.Reader, dir string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("db.tar.gz is not gzip: %w", err)
	}
	tr := tar.NewReader(zr)
	found := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("db.tar.gz: %w", err)
		}
		n := strings.TrimPrefix(h.Name, "./")
		if n != "trivy.db" && n != "metadata.json" {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return fmt.Errorf("db.tar.gz: %s is not a regular file", n)
		}
		if h.Size > maxDBFile {
			return fmt.Errorf("db.tar.gz: %s is %d bytes, over the bound of %d", n, h.Size, int64(maxDBFile))
		}
		f, err := os.OpenFile(filepath.Join(dir, n), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("db.tar.gz: %s: %w", n, err)
		}
		found[n] = true
	}
	// The rest of the gzip stream, so that the blob is read to its end.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return fmt.Errorf("db.tar.gz: %w", err)
	}
	for _, n := range []string{"trivy.db", "metadata.json"} {
		if !found[n] {
			return fmt.Errorf("db.tar.gz holds no %s", n)
		}
	}
	return nil
}

// stampMetadata sets DownloadedAt in dir/metadata.json, as Trivy does
// after its own download, keeping every other field, and returns the
// file's new content.
func stampMetadata(dir string, now time.Time) ([]byte, error) {
	p := filepath.Join(dir, "metadata.json")
	b, err := readSmall(p, maxDBMeta)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("metadata.json is not valid JSON: %w", err)
	}
	m["DownloadedAt"], _ = json.Marshal(now)
	out, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return out, os.WriteFile(p, out, 0o644)
}
