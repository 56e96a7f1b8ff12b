package source

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// tarFS is a read-only fs.FS over an uncompressed tar file. The tar is
// scanned once; each regular file is then read in place through a section
// reader, so nothing is extracted and nothing is held in memory.
type tarFS struct {
	f       *os.File
	entries map[string]tarEntry

	mu  sync.Mutex
	raw []*os.File // opened by openRaw, closed by Close
}

type tarEntry struct {
	offset int64
	size   int64
}

// openTarFS indexes the tar file at p. A tar that ends early, or whose
// entries point past the end of the file, is reported as truncated.
func openTarFS(p string) (*tarFS, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	t := &tarFS{f: f, entries: map[string]tarEntry{}}
	tr := tar.NewReader(f)
	links := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: the tar ends in the middle of an entry", ErrTruncated)
			}
			return nil, fmt.Errorf("read tar: %w", err)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			f.Close()
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			// archive/tar reads headers in whole blocks and never reads
			// ahead, so the file offset now is where the data starts.
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				f.Close()
				return nil, err
			}
			if off+hdr.Size > st.Size() {
				f.Close()
				return nil, fmt.Errorf("%w: entry %s needs %d bytes but the file ends after %d", ErrTruncated, hdr.Name, hdr.Size, st.Size()-off)
			}
			t.entries[name] = tarEntry{offset: off, size: hdr.Size}
		case tar.TypeSymlink, tar.TypeLink:
			// A link names another entry of the archive, never a file
			// outside it: nothing is extracted, and a link is only ever
			// resolved to an entry, but one that points out (docker save
			// writes none) is refused, not guessed at.
			target := hdr.Linkname
			if hdr.Typeflag == tar.TypeSymlink && !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			if path.IsAbs(target) || !fs.ValidPath(path.Clean(target)) {
				f.Close()
				return nil, fmt.Errorf("%w: entry %s is a link to %s, outside the archive; an image archive's links name its own entries", ErrBadInput, hdr.Name, hdr.Linkname)
			}
			links[name] = path.Clean(target)
		}
	}
	// docker save writes layers that appear twice as links to the first.
	for name, target := range links {
		for i := 0; i < 8; i++ {
			if next, ok := links[target]; ok {
				target = next
			}
		}
		if e, ok := t.entries[cleanName(target)]; ok {
			t.entries[name] = e
		}
	}
	return t, nil
}

// entryName is an entry's name as the archive's files are looked up:
// "./x" is "x". A name with a ".." element or an absolute one is refused:
// an image archive names its files relative to its root (docker save,
// skopeo and BuildKit write no other), and such a name would be read by
// other tools (an extracting scanner) as a file elsewhere.
func entryName(n string) (string, error) {
	if path.IsAbs(n) || slices.Contains(strings.Split(n, "/"), "..") {
		return "", fmt.Errorf("%w: the archive has an entry named %s; an image archive names its files relative to its root, without .. or a leading /", ErrBadInput, n)
	}
	return cleanName(n), nil
}

func cleanName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

// Close closes the tar and every reader openRaw handed out.
func (t *tarFS) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.raw {
		f.Close()
	}
	t.raw = nil
	return t.f.Close()
}

// openRaw returns an entry as a reader that net/http can send with
// sendfile(2): an io.LimitedReader over an *os.File of its own, positioned
// at the entry, inside io.NopCloser (which net/http unwraps). The file is
// closed when the tarFS is.
func (t *tarFS) openRaw(name string) (io.ReadCloser, error) {
	e, ok := t.entries[cleanName(name)]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f, err := os.Open(t.f.Name())
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(e.offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	t.mu.Lock()
	t.raw = append(t.raw, f)
	t.mu.Unlock()
	return io.NopCloser(&io.LimitedReader{R: f, N: e.size}), nil
}

// Open implements fs.FS.
func (t *tarFS) Open(name string) (fs.File, error) {
	e, ok := t.entries[cleanName(name)]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &tarFile{SectionReader: io.NewSectionReader(t.f, e.offset, e.size), name: path.Base(name)}, nil
}

// names lists the regular files, sorted; for error messages.
func (t *tarFS) names() []string {
	var out []string
	for n := range t.entries {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

type tarFile struct {
	*io.SectionReader
	name string
}

func (f *tarFile) Stat() (fs.FileInfo, error) { return tarInfo{f.name, f.Size()}, nil }
func (f *tarFile) Close() error               { return nil }

type tarInfo struct {
	name string
	size int64
}

func (i tarInfo) Name() string       { return i.name }
func (i tarInfo) Size() int64        { return i.size }
func (i tarInfo) Mode() fs.FileMode  { return 0o444 }
func (i tarInfo) ModTime() time.Time { return time.Time{} }
func (i tarInfo) IsDir() bool        { return false }
func (i tarInfo) Sys() any           { return nil }
