// Package mask keeps secrets out of what hoist writes: a Set of secrets,
// shared by every Writer of one step, replaced by **** on the way out.
// Secrets learned during a step (a registry token after a login) join the
// Set and are masked from then on.
package mask

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Set is the secrets of one step. The zero value is empty and usable.
type Set struct {
	mu      sync.RWMutex
	secrets [][]byte // longest first, so a secret that holds another is masked whole
}

// NewSet returns a set holding secrets.
func NewSet(secrets ...string) *Set {
	s := &Set{}
	s.Add(secrets...)
	return s
}

// MinLine is the shortest line of a multi-line secret that is masked on
// its own (see Add).
const MinLine = 8

// Add masks more secrets, each in the forms it travels in: as it is,
// URL-encoded (a query or a form body), and base64-encoded (a header, a
// docker config's auth). Strings under 3 bytes are too common to mask.
//
// A secret of several lines (a PEM key, a JSON key, a file's content) is
// also masked line by line: BuildKit and Kaniko print a RUN step's output
// with a prefix on every line ("#7 0.21 "), and the pipeline runner
// prefixes every line with its step, so the whole secret never appears
// in one piece. Each line is taken without its surrounding white space
// (and a CR); a line under MinLine bytes is not masked on its own: such
// lines are blank, or braces, brackets and PEM dashes ("}", "-----"), or
// the short tail of a base64 block, and masking them would blank unrelated
// output while hiding at most a few bytes of the secret.
func (s *Set) Add(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sec := range secrets {
		if len(sec) < 3 {
			continue
		}
		for _, form := range []string{sec, url.QueryEscape(sec), url.PathEscape(sec),
			base64.StdEncoding.EncodeToString([]byte(sec)), base64.URLEncoding.EncodeToString([]byte(sec)), base64.RawStdEncoding.EncodeToString([]byte(sec))} {
			s.addForm(form)
		}
		if strings.ContainsAny(sec, "\n\r") {
			for _, line := range Lines(sec) {
				s.addForm(line)
			}
		}
	}
	sort.Slice(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
}

// Lines are the lines of a multi-line secret that Add masks on their own:
// trimmed, and at least MinLine bytes long.
func Lines(secret string) []string {
	var out []string
	for _, line := range strings.FieldsFunc(secret, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if line = strings.TrimSpace(line); len(line) >= MinLine && line != secret {
			out = append(out, line)
		}
	}
	return out
}

func (s *Set) addForm(form string) {
	if !s.has(form) {
		s.secrets = append(s.secrets, []byte(form))
	}
}

// Merge adds every secret of o (in the forms o holds) to s.
func (s *Set) Merge(o *Set) {
	if o == nil || o == s {
		return
	}
	o.mu.RLock()
	forms := make([]string, len(o.secrets))
	for i, b := range o.secrets {
		forms[i] = string(b)
	}
	o.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range forms {
		s.addForm(f)
	}
	sort.Slice(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
}

// Clone is a new set holding the secrets of s (an empty one for nil).
func (s *Set) Clone() *Set {
	c := &Set{}
	c.Merge(s)
	return c
}

// Contains reports whether v holds any secret of the set, in any of its
// forms.
func (s *Set) Contains(v string) bool {
	if s == nil {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, sec := range s.secrets {
		if strings.Contains(v, string(sec)) {
			return true
		}
	}
	return false
}

// LoginForms are a password and the base64 of user:password, which is
// how a login appears in an Authorization header or a docker config's
// auth; none when there is no password.
func LoginForms(user, password string) []string {
	if password == "" {
		return nil
	}
	return []string{password, base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
}

// AddLogin masks a login in its forms (LoginForms).
func (s *Set) AddLogin(user, password string) { s.Add(LoginForms(user, password)...) }

func (s *Set) has(sec string) bool {
	for _, b := range s.secrets {
		if string(b) == sec {
			return true
		}
	}
	return false
}

// Apply returns b with every secret replaced by ****.
func (s *Set) Apply(b []byte) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, sec := range s.secrets {
		b = bytes.ReplaceAll(b, sec, []byte("****"))
	}
	return b
}

// String masks a string.
func (s *Set) String(v string) string { return string(s.Apply([]byte(v))) }

// Error is err with its message masked; errors.Is and errors.As still
// see err. Nil stays nil.
func Error(s *Set, err error) error {
	if err == nil || s == nil {
		return err
	}
	return &maskedError{msg: s.String(err.Error()), err: err}
}

type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }

// Writer masks what passes through it. It holds back the text after the
// last newline until the next one (or Flush), so a secret that arrives in
// two writes is still caught.
type Writer struct {
	set *Set
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// NewWriter masks what is written to w with the secrets of set.
func NewWriter(w io.Writer, set *Set) *Writer { return &Writer{set: set, w: w} }

func (m *Writer) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf = append(m.buf, p...)
	if i := bytes.LastIndexByte(m.buf, '\n'); i >= 0 {
		if _, err := m.w.Write(m.set.Apply(m.buf[:i+1])); err != nil {
			return 0, err
		}
		m.buf = append(m.buf[:0], m.buf[i+1:]...)
	}
	return len(p), nil
}

// Flush writes what is left after the last newline.
func (m *Writer) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.buf) == 0 {
		return nil
	}
	_, err := m.w.Write(m.set.Apply(m.buf))
	m.buf = m.buf[:0]
	return err
}
