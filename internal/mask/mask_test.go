package mask

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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

// A multi-line secret echoed with a prefix on every line (BuildKit's
// "#7 0.21 ", the pipeline's "[stage.step] ") is masked line by line;
// lines under MinLine bytes (braces, PEM dashes' short tails) are left.
func TestMultiLineSecretMaskedPerLine(t *testing.T) {
	t.Parallel()
	const key = "-----BEGIN EC PRIVATE KEY-----\r\n" +
		"MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oaUm6UEOzOrKoAoGCCqGSM49\r\n" +
		"  AwEHoUQDQgAE3ZyRf4Bz0nZoL9Lgy6bLbW5nD2xHv7UP3q4E5xjN  \r\n" +
		"Zw==\r\n" +
		"-----END EC PRIVATE KEY-----\r\n"
	const json = "{\n  \"type\": \"service_account\",\n  \"private_key_id\": \"4f1c2a9be07d5e6f\"\n}\n"
	s := NewSet(key, json)
	var echoed strings.Builder
	for i, line := range strings.Split(key+json, "\n") {
		echoed.WriteString("#7 0." + itoa(i) + " " + strings.TrimRight(line, "\r") + "\n")
	}
	echoed.WriteString("#7 1.00 done\n")
	got := s.String(echoed.String())
	for _, line := range append(Lines(key), Lines(json)...) {
		if strings.Contains(got, line) {
			t.Errorf("line %q is not masked:\n%s", line, got)
		}
	}
	if len(Lines(key)) != 4 || len(Lines(json)) != 2 {
		t.Errorf("lines masked: %q, %q", Lines(key), Lines(json))
	}
	for _, kept := range []string{"#7 1.00 done", "Zw==", "{", "}"} {
		if !strings.Contains(got, kept) {
			t.Errorf("%q was masked:\n%s", kept, got)
		}
	}
	if !s.Contains("x MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oaUm6UEOzOrKoAoGCCqGSM49 y") || s.Contains("nothing") {
		t.Error("Contains")
	}
	// A clone masks the same; what is added to it stays in it.
	c := s.Clone()
	c.Add("only-in-the-clone")
	if c.String(echoed.String()) != got || s.Contains("only-in-the-clone") || !c.Contains("only-in-the-clone") {
		t.Error("Clone")
	}
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

// A masked error keeps its chain.
func TestError(t *testing.T) {
	t.Parallel()
	cause := errors.New("cause")
	err := Error(NewSet("hunter2"), fmt.Errorf("login with hunter2: %w", cause))
	if err.Error() != "login with ****: cause" || !errors.Is(err, cause) {
		t.Errorf("%v", err)
	}
	if Error(NewSet("x"), nil) != nil {
		t.Error("nil")
	}
}

// A secret file written with echo ends in a newline; programs use its
// content trimmed ($(cat f), --password-stdin). Its trimmed content is
// masked whatever its length, in every form (only a multi-line secret's
// lines have a minimum); the trimmed value of a secret with spaces
// around it too.
func TestSecretMaskedTrimmedWhateverItsLength(t *testing.T) {
	t.Parallel()
	s := NewSet("hunter2\n", "  tok-42 \r\n")
	for _, leak := range []string{"hunter2", base64.StdEncoding.EncodeToString([]byte("hunter2")), "tok-42"} {
		if out := s.String("curl -u ci:" + leak + " https://x\n"); strings.Contains(out, leak) || !strings.Contains(out, "****") {
			t.Errorf("%q is not masked: %q", leak, out)
		}
	}
	if got := s.String("hunter1 tok-41"); got != "hunter1 tok-41" {
		t.Errorf("clean text changed: %q", got)
	}
}

// A JSON key (PLUGIN_JSON_KEY, a build secret's file, a pipeline secret)
// holds its PEM private key with \n escapes: a RUN that reads it (jq -r
// .private_key) prints the decoded key, one prefixed line at a time, and
// each of its lines is masked; so is the value of a credential's usual
// names (private_key_id, client_secret) printed alone. Its other values
// (an email) are not secrets of their own.
func TestJSONKeyMaskedDecoded(t *testing.T) {
	t.Parallel()
	pemKey := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7secretline01\nAAECggEAsecretline02secretline02secretline02secretline02\n-----END PRIVATE KEY-----\n"
	doc, _ := json.MarshalIndent(map[string]any{"type": "service_account", "private_key": pemKey, "private_key_id": "4f1c2a9be07d5e6f0a1b",
		"client_email": "ci@p.iam.gserviceaccount.com", "nested": map[string]string{"client_secret": "nested-client-secret-1"}}, "", "  ")
	if strings.Contains(string(doc), "secretline01\n") {
		t.Fatal("the document holds the key unescaped")
	}
	s := NewSet(string(doc))
	printed := "#7 0.2 " + strings.ReplaceAll(strings.TrimSpace(pemKey), "\n", "\n#7 0.2 ") + "\n#7 0.3 4f1c2a9be07d5e6f0a1b\n#7 0.4 nested-client-secret-1\n#7 0.5 ci@p.iam.gserviceaccount.com done"
	out := s.String(printed)
	for _, leak := range []string{"secretline", "4f1c2a9be07d5e6f0a1b", "nested-client-secret-1"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q is not masked:\n%s", leak, out)
		}
	}
	for _, kept := range []string{"#7 0.5 ci@p.iam.gserviceaccount.com done"} {
		if !strings.Contains(out, kept) {
			t.Errorf("%q was masked:\n%s", kept, out)
		}
	}
}

// A message quotes a value with %q (the settings' "PLUGIN_NO_PUSH=%q:
// want true or false", the pipeline's problems) or as a JSON string: a
// secret with a quote, a backslash, a control character or an HTML
// character is escaped there, and is masked in that form too.
func TestQuotedSecretMasked(t *testing.T) {
	t.Parallel()
	const secret = "Qu0ted\"Secret\\Tok3n\t<v4lue>&"
	s := NewSet(secret)
	js, _ := json.Marshal(secret)
	for _, msg := range []string{
		fmt.Sprintf("PLUGIN_NO_PUSH=%q: want true or false", secret),
		fmt.Sprintf("repository %q is invalid", secret),
		`{"error":` + string(js) + `}`,
		`{"error":"Qu0ted\"Secret\\Tok3n\t<v4lue>&"}`,
	} {
		if !strings.Contains(msg, "Tok3n") {
			t.Fatalf("the message does not hold the secret: %s", msg)
		}
		if got := s.String(msg); strings.Contains(got, "Tok3n") || !strings.Contains(got, "****") {
			t.Errorf("%s leaks: %s", msg, got)
		}
	}
	if got := s.String(`"plain" and \ text`); got != `"plain" and \ text` {
		t.Errorf("clean text changed: %q", got)
	}
}

// Strings masks every string a value reaches, in place: fields, nested
// pointers, slices, map keys and values, an interface's string.
func TestStringsMasksAValueWhole(t *testing.T) {
	t.Parallel()
	type inner struct {
		Ref    string
		Digest string
	}
	type report struct {
		File    string
		Steps   []*inner
		Kept    []inner
		ByName  map[string]string
		Any     any
		N       int
		private string
	}
	const sec = "s3cret-value-77"
	r := &report{File: "/w/" + sec + "/p.yaml", Steps: []*inner{{Ref: "reg/" + sec + ":1", Digest: "sha256:ab"}, nil},
		Kept: []inner{{Ref: sec}}, ByName: map[string]string{sec: "x-" + sec}, Any: "any " + sec, N: 7, private: sec}
	r.Steps = append(r.Steps, r.Steps[0]) // the same step twice: masked once
	NewSet(sec).Strings(r)
	b, _ := json.Marshal(r)
	if strings.Contains(string(b), sec) {
		t.Errorf("not masked: %s", b)
	}
	if r.File != "/w/****/p.yaml" || r.Steps[0].Ref != "reg/****:1" || r.Steps[0].Digest != "sha256:ab" || r.Kept[0].Ref != "****" ||
		r.ByName["****"] != "x-****" || r.Any != "any ****" || r.N != 7 || r.private != sec {
		t.Errorf("masked: %+v %+v", r, *r.Steps[0])
	}
	var nilSet *Set
	nilSet.Strings(r)
}

// A secret the settings split into a list (a comma-separated PLUGIN_TAGS
// given as one secret) is masked part by part: a message quotes a part.
func TestListSecretMaskedByPart(t *testing.T) {
	s := NewSet("v1,Sup3r$ecret!Part, other-part ")
	for in, want := range map[string]string{
		`invalid destination: tag "Sup3r$ecret!Part" (PLUGIN_TAGS)`: `invalid destination: tag "****" (PLUGIN_TAGS)`,
		"tag other-part":                   "tag ****",
		"v1,Sup3r$ecret!Part, other-part ": "****",
	} {
		if got := string(s.Apply([]byte(in))); got != want {
			t.Errorf("Apply(%q) = %q, want %q", in, got, want)
		}
	}
}
