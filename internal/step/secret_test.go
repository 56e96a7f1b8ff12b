package step

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sigstore/cosign/v3/pkg/cosign"

	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/settings"
)

// buildx's --secret specs as PLUGIN_SECRET carries them.
func TestRawSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tok"), []byte("file-value"), 0o600)
	vars := map[string]string{"TOKEN": "env-value", "ID_AS_ENV": "bare-env-value"}
	env := Environ{Lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	path := func(p string) string { return filepath.Join(dir, p) }
	for _, c := range []struct{ spec, id, value, err string }{
		{"id=a,src=tok", "a", "file-value", ""},
		{"id=a,source=tok,type=file", "a", "file-value", ""},
		{"id=b,env=TOKEN", "b", "env-value", ""},
		{"id=b,type=env,src=TOKEN", "b", "env-value", ""},
		{"id=ID_AS_ENV", "ID_AS_ENV", "bare-env-value", ""},
		{"id=tok", "tok", "file-value", ""},
		{"env=TOKEN", "TOKEN", "env-value", ""},
		{"id=c,env=UNSET", "", "", `secret "c": the environment variable UNSET is not set`},
		{"id=c,src=missing", "", "", `secret "c": open`},
		{"id=c,type=ssh", "", "", `secret "c": type=ssh: want file or env`},
		{"id=c,mode=0400", "", "", `unknown key "mode"`},
		{"just-a-word", "", "", `"just-a-word" is not KEY=VALUE`},
	} {
		id, v, err := rawSecret(c.spec, env, path)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.spec, err, c.err)
		case c.err == "" && (err != nil || id != c.id || string(v) != c.value):
			t.Errorf("%s: %q=%q, %v; want %q=%q", c.spec, id, v, err, c.id, c.value)
		}
	}
}

// Every secret is known before the step is planned: the caller's (a
// pipeline's), the content of a key file PLUGIN_SIGN_KEY names, line by
// line; a planning error is masked with them. A build argument or label
// holding one of them, or a URL with a login, is refused before
// anything runs, naming it and never its value (the image's config
// would publish it); the provenance records URLs without their query
// values, withholds an argument whose name says secret, and records no
// proxy variable.
func TestSecretsKnownBeforePlanning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kp, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cosign.key"), kp.PrivateBytes, 0o600)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	vars := map[string]string{"PLUGIN_REPO": "127.0.0.1:5000/app", "PLUGIN_SIGN": "true", "PLUGIN_SIGN_KEY": "cosign.key", "PLUGIN_SIGN_PASSWORD": "pw",
		"PLUGIN_PROVENANCE": "true", "PLUGIN_BUILD_ARGS": "V=1,MIRROR=x-pipeline-s3cret-x,URL=https://u:url-pw@h.example/x",
		"HTTPS_PROXY": "http://u:proxy-pw@proxy.example:3128", "HARNESS_NO_PROXY": "localhost",
		"PLUGIN_CUSTOM_LABELS": "src=https://u:label-pw@git.example/a,leak=pipeline-s3cret", "DRONE_REMOTE_URL": "https://u:git-pw@git.example/a.git"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	env := Environ{Lookup: lookup, WorkDir: dir, TempDir: dir, Secrets: mask.NewSet("pipeline-s3cret")}
	s, err := settings.Load(nil, lookup, dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := FromSettings(s, env)
	if !errors.Is(err, settings.ErrInvalid) {
		t.Fatalf("a build argument and a label holding secrets: %v, want an invalid setting", err)
	}
	for _, want := range []string{"PLUGIN_BUILD_ARGS: build argument MIRROR holds a secret of this step", "PLUGIN_BUILD_ARGS: build argument URL holds a URL with a login",
		"PLUGIN_CUSTOM_LABELS: label src holds a URL with a login", "PLUGIN_CUSTOM_LABELS: label leak holds a secret of this step"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
	for _, secret := range []string{"pipeline-s3cret", "url-pw", "label-pw", "proxy-pw", "git-pw"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows %q: %v", secret, err)
		}
	}
	for _, line := range mask.Lines(string(kp.PrivateBytes)) {
		if !st.Secrets.Contains(line) {
			t.Errorf("a line of the key file is not masked: %q", line)
		}
	}

	vars["PLUGIN_BUILD_ARGS"] = "V=1,API_TOKEN=not-known-to-hoist,URL=https://h.example/x?sig=abc"
	vars["PLUGIN_CUSTOM_LABELS"] = "src=https://git.example/a?ref=main"
	s, _ = settings.Load(nil, lookup, dir)
	if st, err = FromSettings(s, env); err != nil {
		t.Fatal(err)
	}
	pb := st.Attest.Provenance.Build
	if want := map[string]string{"V": "1", "URL": "https://h.example/x?sig=****"}; !maps.Equal(pb.Args, want) {
		t.Errorf("recorded args %v, want %v", pb.Args, want)
	}
	if !slices.Equal(pb.Withheld, []string{"API_TOKEN"}) {
		t.Errorf("withheld %v", pb.Withheld)
	}
	if want := map[string]string{"src": "https://git.example/a?ref=****", "org.opencontainers.image.source": "https://git.example/a.git"}; !maps.Equal(pb.Labels, want) {
		t.Errorf("recorded labels %v, want %v", pb.Labels, want)
	}
	// The proxy variables reach the build, the source label without
	// its login.
	var proxies []string
	for _, kv := range st.Build.Request.BuildArgs {
		if strings.HasSuffix(strings.ToLower(kv.Key), "_proxy") {
			proxies = append(proxies, kv.Key+"="+kv.Value)
		}
	}
	slices.Sort(proxies)
	if !slices.Equal(proxies, []string{"HTTPS_PROXY=http://u:proxy-pw@proxy.example:3128", "NO_PROXY=localhost"}) {
		t.Errorf("proxy build args %v", proxies)
	}
	for _, l := range st.Build.Request.Labels {
		if l.Key == "org.opencontainers.image.source" && l.Value != "https://git.example/a.git" {
			t.Errorf("the image's source label is %q", l.Value)
		}
	}

	// A planning error that quotes a secret is masked.
	vars["PLUGIN_BUILD_ARGS"] = "BAD ARG=x-pipeline-s3cret"
	s, _ = settings.Load(nil, lookup, dir)
	st, err = FromSettings(s, env)
	if err == nil || !strings.Contains(mask.Error(st.Secrets, err).Error(), `"BAD ARG=x-****"`) {
		t.Errorf("planning error %v, masked %v", err, mask.Error(st.Secrets, err))
	}
}

// The proxy variables reach every RUN (curl -v prints "Uses proxy env
// variable https_proxy == '...'"), so their logins are masked in every
// form tools accept, not only a URL with a scheme and a password: a
// proxy without a scheme (curl's and most tools' accepted form), a token
// as the user name, the HARNESS_ and lower-case forms, ALL_PROXY. A
// secret file whose content is shorter than mask.MinLine ("hunter2\n",
// as echo writes it) is masked trimmed, as a RUN uses it. A login in the
// URL of a setting that is not secret (a Fulcio URL), which debug prints,
// is masked too.
func TestProxyLoginsAndShortSecretFilesMasked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "pw.txt"), []byte("hunter2\n"), 0o600)
	for _, c := range []struct {
		name, value, secret string
	}{
		{"HTTPS_PROXY", "http://u:with-scheme-pw@proxy.example:3128", "with-scheme-pw"}, // the form masked before
		{"HTTPS_PROXY", "u:schemeless-pw@proxy.example:3128", "schemeless-pw"},
		{"HTTPS_PROXY", "http://token-as-user-0001@proxy.example:3128", "token-as-user-0001"},
		{"http_proxy", "token-as-user-0002@proxy.example:3128", "token-as-user-0002"},
		{"HARNESS_HTTPS_PROXY", "u:harness-pw@proxy.example", "harness-pw"},
		{"ALL_PROXY", "socks5://u:socks-pw@proxy.example:1080", "socks-pw"},
		{"HTTPS_PROXY", "http://u:pct%2Fenc%40pw@proxy.example:3128", "pct/enc@pw"},
		{"PLUGIN_SIGN_FULCIO_URL", "https://ci:fulcio-url-pw@fulcio.example", "fulcio-url-pw"},
	} {
		vars := map[string]string{"PLUGIN_REPO": "127.0.0.1:5000/app", "PLUGIN_SECRETS_FROM_FILE": "pw=pw.txt", c.name: c.value}
		lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
		s, err := settings.Load(nil, lookup, dir)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := FromSettings(s, Environ{Lookup: lookup, WorkDir: dir, TempDir: dir})
		if st.Secrets == nil {
			t.Fatalf("%s=%s: no mask", c.name, c.value)
		}
		printed := "Uses proxy env variable " + strings.ToLower(c.name) + " == '" + c.value + "'"
		if !st.Secrets.Contains(c.secret) || strings.Contains(st.Secrets.String(printed), c.secret) {
			t.Errorf("%s=%s: %q is not masked: %q", c.name, c.value, c.secret, st.Secrets.String(printed))
		}
		if got := st.Secrets.String("curl -u ci:hunter2 https://x"); got != "curl -u ci:**** https://x" {
			t.Errorf("the secret file's trimmed content is not masked: %q", got)
		}
		if got := st.Secrets.String("proxy.example:3128 fulcio.example"); got != "proxy.example:3128 fulcio.example" {
			t.Errorf("more than the login is masked: %q", got)
		}
	}
}
