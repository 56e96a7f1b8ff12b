package cli

import (
	"bytes"
	"io"
	"sort"
	"sync"
)

// maskWriter replaces every secret with **** before it reaches the
// underlying writer. It buffers up to the end of each line, so a secret
// that arrives in two writes is still caught.
type maskWriter struct {
	mu      sync.Mutex
	w       io.Writer
	secrets [][]byte
	buf     []byte
}

func newMask(w io.Writer, secrets []string) *maskWriter {
	m := &maskWriter{w: w}
	seen := map[string]bool{}
	for _, s := range secrets {
		if len(s) >= 3 && !seen[s] {
			seen[s] = true
			m.secrets = append(m.secrets, []byte(s))
		}
	}
	// Longest first, so a secret that contains another is masked whole.
	sort.Slice(m.secrets, func(i, j int) bool { return len(m.secrets[i]) > len(m.secrets[j]) })
	return m
}

func (m *maskWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf = append(m.buf, p...)
	if i := bytes.LastIndexByte(m.buf, '\n'); i >= 0 {
		if err := m.emit(m.buf[:i+1]); err != nil {
			return 0, err
		}
		m.buf = append(m.buf[:0], m.buf[i+1:]...)
	}
	return len(p), nil
}

// Flush writes what is left after the last newline.
func (m *maskWriter) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.buf) == 0 {
		return nil
	}
	err := m.emit(m.buf)
	m.buf = m.buf[:0]
	return err
}

func (m *maskWriter) emit(b []byte) error {
	for _, s := range m.secrets {
		b = bytes.ReplaceAll(b, s, []byte("****"))
	}
	_, err := m.w.Write(b)
	return err
}

// Add masks one more secret, learned during the run (a registry token).
func (m *maskWriter) Add(secret string) {
	if len(secret) < 3 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.secrets = append(m.secrets, []byte(secret))
	sort.Slice(m.secrets, func(i, j int) bool { return len(m.secrets[i]) > len(m.secrets[j]) })
}
