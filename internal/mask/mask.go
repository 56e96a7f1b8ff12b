// Package mask keeps secrets out of what hoist writes: a Set of secrets,
// shared by every Writer of one step, replaced by **** on the way out.
// Secrets learned during a step (a registry token after a login) join the
// Set and are masked from then on.
package mask

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Set is the secrets of one step. The zero value is empty and usable.
type Set struct {
	mu      sync.RWMutex
	secrets [][]byte // longest first, so a secret that holds another is masked whole
	known   map[string]bool
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
// A secret is also masked without its surrounding white space, whatever
// its length: a secret file written with echo ends in a newline, and
// programs use its content trimmed ($(cat file), --password-stdin).
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
//
// A secret that is a JSON document (a service account's key, a client's
// credentials) holds other secrets escaped: a PEM key whose line breaks
// are \n. Each of its string values with a line break, and each value of
// a credential's usual names (private_key_id, client_secret,
// refresh_token, ...), is masked as a secret of its own, as a RUN that
// reads it (jq -r .private_key) prints it.
func (s *Set) Add(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sec := range secrets {
		s.add(sec)
	}
	sort.Slice(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
}

// add masks sec in its forms; s.mu is held.
func (s *Set) add(sec string) {
	if len(sec) < 3 {
		return
	}
	for _, form := range []string{sec, url.QueryEscape(sec), url.PathEscape(sec),
		base64.StdEncoding.EncodeToString([]byte(sec)), base64.URLEncoding.EncodeToString([]byte(sec)), base64.RawStdEncoding.EncodeToString([]byte(sec))} {
		s.addForm(form)
	}
	for _, form := range quoted(sec) {
		s.addForm(form)
	}
	if t := strings.TrimSpace(sec); t != sec {
		s.add(t)
	}
	if strings.ContainsAny(sec, "\n\r") {
		for _, line := range Lines(sec) {
			s.addForm(line)
		}
	}
	for _, v := range jsonSecrets(sec) {
		s.add(v)
	}
	// A value the settings split into a list (PLUGIN_TAGS, build
	// arguments, ...) is quoted part by part in their messages.
	if strings.Contains(sec, ",") {
		for _, part := range strings.Split(sec, ",") {
			if part = strings.TrimSpace(part); !strings.Contains(part, ",") {
				s.add(part)
			}
		}
	}
}

// quoted are sec as a message quotes it, without the quotes: Go's %q
// (strconv.Quote, as the settings' and the pipeline's problems quote a
// value) and a JSON string, with and without its HTML escapes. A secret
// with a quote, a backslash or a control character is escaped in them,
// and its plain form is not found there.
func quoted(sec string) []string {
	var out []string
	add := func(q string) {
		if len(q) >= 2 {
			if q = q[1 : len(q)-1]; q != sec {
				out = append(out, q)
			}
		}
	}
	add(strconv.Quote(sec))
	if b, err := json.Marshal(sec); err == nil {
		add(string(b))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(sec) == nil {
		add(strings.TrimSuffix(b.String(), "\n"))
	}
	return out
}

// credentialKeys are the names under which credential files (Google's
// service account and authorized-user keys, Azure's and others' client
// credentials) keep a secret on one line.
var credentialKeys = map[string]bool{"private_key": true, "private_key_id": true, "client_secret": true, "refresh_token": true,
	"access_token": true, "password": true, "secret": true, "token": true, "clientSecret": true}

// jsonSecrets are the secrets a JSON document holds escaped: its string
// values with a line break, and those of credentialKeys; none when sec
// is no JSON object.
func jsonSecrets(sec string) []string {
	t := strings.TrimSpace(sec)
	if !strings.HasPrefix(t, "{") || !json.Valid([]byte(t)) {
		return nil
	}
	var doc any
	if json.Unmarshal([]byte(t), &doc) != nil {
		return nil
	}
	var out []string
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch v := v.(type) {
		case string:
			if strings.ContainsAny(v, "\n\r") || credentialKeys[key] {
				out = append(out, v)
			}
		case map[string]any:
			for k, e := range v {
				walk(k, e)
			}
		case []any:
			for _, e := range v {
				walk(key, e)
			}
		}
	}
	walk("", doc)
	return out
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
		if s.known == nil {
			s.known = map[string]bool{}
		}
		s.known[form] = true
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

func (s *Set) has(sec string) bool { return s.known[sec] }

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

// Strings masks, in place, every string v reaches: v is a pointer (to a
// struct, a slice, a map, a string), and the walk follows pointers,
// interfaces, exported struct fields, slice and array elements, and map
// keys and values. A report is masked whole this way, a field added to it
// later too; a string in an unexported field is not reached.
func (s *Set) Strings(v any) {
	if s == nil {
		return
	}
	s.walk(reflect.ValueOf(v), map[uintptr]bool{})
}

func (s *Set) walk(v reflect.Value, seen map[uintptr]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return
		}
		seen[v.Pointer()] = true
		s.walk(v.Elem(), seen)
	case reflect.Interface:
		if v.IsNil() || !v.CanSet() {
			return
		}
		e := reflect.New(v.Elem().Type()).Elem()
		e.Set(v.Elem())
		s.walk(e, seen)
		v.Set(e)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() {
				s.walk(f, seen)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			s.walk(v.Index(i), seen)
		}
	case reflect.Map:
		// A map's entries are not addressable: each is copied, masked
		// and put back (under its masked key).
		for _, k := range v.MapKeys() {
			nk, e := reflect.New(k.Type()).Elem(), reflect.New(v.Type().Elem()).Elem()
			nk.Set(k)
			e.Set(v.MapIndex(k))
			s.walk(nk, seen)
			s.walk(e, seen)
			v.SetMapIndex(k, reflect.Value{})
			v.SetMapIndex(nk, e)
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(s.String(v.String()))
		}
	}
}

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
