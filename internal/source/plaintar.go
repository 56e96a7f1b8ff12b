package source

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/hoist-build/hoist/internal/progress"
)

// plainTar returns the path of an uncompressed tar: the file itself, or a
// temporary file it was decompressed into. kind describes the compression.
func plainTar(p, tempDir string) (string, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	head, _ := br.Peek(512)
	var dec io.Reader
	kind := ""
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", "", fmt.Errorf("%w: %s starts like gzip but is not: %w", ErrBadInput, p, err)
		}
		dec, kind = zr, ", gzip"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(runtime.NumCPU()))
		if err != nil {
			return "", "", err
		}
		defer zr.Close()
		dec, kind = zr, ", zstd"
	case isTarHeader(head):
		return p, "", nil
	default:
		return "", "", fmt.Errorf("%w: %s is not a tar archive (nor a gzip or zstd compressed one); give the file written by docker save, buildx --output type=docker|oci, kaniko --tar-path or skopeo", ErrBadInput, p)
	}
	tmp, err := os.CreateTemp(tempDir, "hoist-source-*.tar")
	if err != nil {
		return "", "", err
	}
	limit := roomFor(tmp.Name())
	err = copyTar(&capped{w: tmp, left: limit}, dec)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		switch {
		case errors.Is(err, errNoRoom):
			return "", "", fmt.Errorf("%w: %s decompresses to more than the %s free in %s (a damaged or hostile file, or too little room: set TMPDIR to a larger disk, or give the tarball uncompressed)", ErrBadInput, p, progress.Bytes(limit), filepath.Dir(tmp.Name()))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return "", "", fmt.Errorf("%w: %s: the compressed stream ends early", ErrTruncated, p)
		}
		return "", "", fmt.Errorf("decompress %s: %w", p, err)
	}
	head = make([]byte, 512)
	if rf, err := os.Open(tmp.Name()); err == nil {
		io.ReadFull(rf, head)
		rf.Close()
	}
	if !isTarHeader(head) {
		os.Remove(tmp.Name())
		return "", "", fmt.Errorf("%w: %s decompresses to something that is not a tar archive", ErrBadInput, p)
	}
	return tmp.Name(), kind, nil
}

// copyTar copies a tar stream from r to w up to its end-of-archive
// marker: what follows it (zeros a bomb could expand to without end) is
// not read.
func copyTar(w io.Writer, r io.Reader) error {
	tr := tar.NewReader(io.TeeReader(r, w))
	buf := make([]byte, 1<<20)
	sink := struct{ io.Writer }{io.Discard} // no ReadFrom: use buf
	for {
		_, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.CopyBuffer(sink, tr, buf); err != nil {
			return err
		}
	}
}

var errNoRoom = errors.New("no room left for the decompressed file")

// capped is a writer that refuses to write more than left bytes.
type capped struct {
	w    io.Writer
	left int64
}

func (c *capped) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		return 0, errNoRoom
	}
	n, err := c.w.Write(p)
	c.left -= int64(n)
	return n, err
}

// roomFor is diskRoom; tests replace it.
var roomFor = diskRoom

// diskRoom is how much a temporary file at path may grow: the free space
// of its file system, less a reserve so the disk is never filled.
func diskRoom(path string) int64 {
	const reserve = 256 << 20
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		return 1 << 62
	}
	return max(int64(st.Bavail)*int64(st.Bsize)-reserve, 0)
}

// isTarHeader reports whether b starts with a POSIX/GNU tar header.
func isTarHeader(b []byte) bool {
	return len(b) >= 512 && bytes.HasPrefix(b[257:], []byte("ustar"))
}
