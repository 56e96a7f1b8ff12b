package mask

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

func TestWriterMasksAcrossWrites(t *testing.T) {
	var out bytes.Buffer
	set := NewSet("hunter2", "hunter2-long", "x")
	w := NewWriter(&out, set)
	w.Write([]byte("password hun"))
	w.Write([]byte("ter2 and hunter2-long\nnext "))
	set.Add("learned-token")
	w.Write([]byte("learned-token"))
	w.Flush()
	got := out.String()
	if want := "password **** and ****\nnext ****"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if strings.Contains(got, "x") {
		// one-letter strings are not masked: "next" keeps its x
	} else {
		t.Errorf("a one-letter secret was masked: %q", got)
	}
}

// A secret is masked in the forms it travels in: raw, URL-encoded (a
// form body, a query), base64 (a header, a config's auth), and a login as
// the base64 of user:password.
func TestEveryForm(t *testing.T) {
	t.Parallel()
	const secret = "p@ss/w:rd+="
	s := NewSet(secret)
	s.AddLogin("robot$ci", "tok3n-value")
	for _, leak := range []string{
		secret,
		url.QueryEscape(secret),
		url.PathEscape(secret),
		base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.URLEncoding.EncodeToString([]byte(secret)),
		"tok3n-value",
		base64.StdEncoding.EncodeToString([]byte("robot$ci:tok3n-value")),
	} {
		line := "error: registry said Authorization: Basic " + leak + " was refused"
		got := s.String(line)
		if strings.Contains(got, leak) || !strings.Contains(got, "****") {
			t.Errorf("%q leaks: %s", leak, got)
		}
	}
	if got := s.String("nothing secret here"); got != "nothing secret here" {
		t.Errorf("clean text changed: %q", got)
	}
}
