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

// Add masks more secrets, each in the forms it travels in: as it is,
// URL-encoded (a query or a form body), and base64-encoded (a header, a
// docker config's auth). Strings under 3 bytes are too common to mask.
func (s *Set) Add(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sec := range secrets {
		if len(sec) < 3 {
			continue
		}
		for _, form := range []string{sec, url.QueryEscape(sec), url.PathEscape(sec),
			base64.StdEncoding.EncodeToString([]byte(sec)), base64.URLEncoding.EncodeToString([]byte(sec)), base64.RawStdEncoding.EncodeToString([]byte(sec))} {
			if !s.has(form) {
				s.secrets = append(s.secrets, []byte(form))
			}
		}
	}
	sort.Slice(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
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
