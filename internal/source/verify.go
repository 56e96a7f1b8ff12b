package source

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Errors a source can fail with; the CLI maps them to the exit code for a
// bad input.
var (
	// ErrTruncated: a tarball ends before its entries do.
	ErrTruncated = errors.New("truncated tarball")
	// ErrDigestMismatch: bytes do not match the digest that names them.
	ErrDigestMismatch = errors.New("content does not match its digest")
	// ErrNotFound: the image is in none of the places looked at.
	ErrNotFound = errors.New("image not found")
	// ErrBadInput: the input is not an image in a form hoist reads.
	ErrBadInput = errors.New("not an image")
	// ErrUnavailable marks a source registry that failed transiently
	// (429, 5xx, a dropped connection) after the retries.
	ErrUnavailable = errors.New("source registry unavailable")
)

// verifyingReader hashes what passes through it and, at the end, fails the
// read instead of returning io.EOF when the bytes do not match the expected
// digest or size. An upload that reads through it therefore never commits a
// tampered blob.
type verifyingReader struct {
	r     io.Reader
	c     io.Closer
	h     hash.Hash
	want  v1.Hash
	size  int64 // -1: unknown
	n     int64
	what  string
	ended bool
}

func newVerifyingReader(rc io.ReadCloser, want v1.Hash, size int64, what string) (io.ReadCloser, error) {
	if want.Algorithm != "sha256" {
		return nil, fmt.Errorf("%s: unsupported digest algorithm %q", what, want.Algorithm)
	}
	return &verifyingReader{r: rc, c: rc, h: sha256.New(), want: want, size: size, what: what}, nil
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		return n, fmt.Errorf("%w: %s is longer than the %d bytes its descriptor says", ErrDigestMismatch, v.what, v.size)
	}
	if err == io.EOF && !v.ended {
		v.ended = true
		if v.size >= 0 && v.n != v.size {
			return n, fmt.Errorf("%w: %s has %d bytes, its descriptor says %d", ErrDigestMismatch, v.what, v.n, v.size)
		}
		got := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", v.h.Sum(nil))}
		if got != v.want {
			return n, fmt.Errorf("%w: %s hashes to %s, expected %s (the file was altered or damaged)", ErrDigestMismatch, v.what, got, v.want)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.c.Close() }
