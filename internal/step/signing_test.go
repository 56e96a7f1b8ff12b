package step

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/sign"
)

// A cosign key in PEM form, as far as planning reads it (its type; it is
// decrypted when the step runs).
const planKey = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"

// PLUGIN_COSIGN_PRIVATE_KEY alone signs what the step pushes, as
// plugins/docker does; a step that pushes nothing, or PLUGIN_SIGN=false,
// signs nothing and says so; a Kaniko build that pushes is refused as
// with PLUGIN_SIGN.
func TestKeyAloneSigns(t *testing.T) {
	t.Parallel()
	push := map[string]string{"PLUGIN_REPO": "registry.example/app", "PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": "image.tar"}
	for _, c := range []struct {
		name  string
		env   map[string]string
		signs bool
		note  string
	}{
		{"cosign key alone", map[string]string{"PLUGIN_COSIGN_PRIVATE_KEY": planKey, "PLUGIN_COSIGN_PASSWORD": "pw"}, true, ""},
		{"sign key alone", map[string]string{"PLUGIN_SIGN_KEY": planKey}, true, ""},
		{"PLUGIN_SIGN=false", map[string]string{"PLUGIN_COSIGN_PRIVATE_KEY": planKey, "PLUGIN_SIGN": "false"}, false, "PLUGIN_COSIGN_PRIVATE_KEY is set and PLUGIN_SIGN=false: nothing is signed"},
		{"build-only", map[string]string{"PLUGIN_COSIGN_PRIVATE_KEY": planKey, "PLUGIN_PUSH_ONLY": "false", "PLUGIN_NO_PUSH": "true"}, false, "PLUGIN_COSIGN_PRIVATE_KEY (without PLUGIN_SIGN): this step pushes nothing (PLUGIN_NO_PUSH), so nothing is signed"},
		{"no key", nil, false, ""},
	} {
		st, err := plan(t, merged(push, c.env))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if (st.Sign != nil) != c.signs {
			t.Errorf("%s: signs %v, want %v", c.name, st.Sign != nil, c.signs)
		}
		if c.signs && st.Sign != nil && st.Sign.Key != planKey {
			t.Errorf("%s: signs with %q", c.name, st.Sign.Key)
		}
		notes := strings.Join(st.Notes, "\n")
		if c.note != "" && !strings.Contains(notes, c.note) {
			t.Errorf("%s: the notes lack %q:\n%s", c.name, c.note, notes)
		}
		if c.note == "" && strings.Contains(notes, "signed") {
			t.Errorf("%s: a note on signing:\n%s", c.name, notes)
		}
	}
	// hoist scan signs nothing, and does not read a key it is not given
	// to sign with.
	env := map[string]string{"PLUGIN_SOURCE_TAR_PATH": "image.tar", "PLUGIN_COSIGN_PRIVATE_KEY": "/nonexistent/cosign.key", "PLUGIN_SCAN_TRIVY": harness.Tool(t, "trivy")}
	s, err := settings.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "/work")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := ScanFromSettings(s, Environ{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, WorkDir: "/work", TempDir: "/tmp"}); err != nil || st.Sign != nil || strings.Contains(strings.Join(st.Notes, "\n"), "signed") {
		t.Errorf("hoist scan with a key alone: %v, %v", err, st.Notes)
	}
	_, err = plan(t, map[string]string{"PLUGIN_REPO": "registry.example/app", "PLUGIN_BUILD_TOOL": "kaniko", "PLUGIN_COSIGN_PRIVATE_KEY": planKey})
	if !errors.Is(err, settings.ErrInvalid) || !strings.Contains(err.Error(), "PLUGIN_COSIGN_PRIVATE_KEY (without PLUGIN_SIGN): this step builds with Kaniko") {
		t.Errorf("a Kaniko build with a key alone: %v", err)
	}
}

// PLUGIN_COSIGN_PARAMS: the annotations go to the signer; the log's flags
// to keyless signing, and with a key only --tlog-upload=false (a key's
// signature goes to no log); any other flag is refused by name; with
// nothing signed, a notice.
func TestCosignParams(t *testing.T) {
	t.Parallel()
	push := map[string]string{"PLUGIN_REPO": "registry.example/app", "PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": "image.tar", "PLUGIN_COSIGN_PRIVATE_KEY": planKey}
	st, err := plan(t, merged(push, map[string]string{"PLUGIN_COSIGN_PARAMS": "-a build_id=123 --annotations=branch=main -y --tlog-upload=false --rekor-url=https://rekor.example"}))
	if err != nil || st.Sign == nil {
		t.Fatalf("%v", err)
	}
	if d := cmp.Diff(map[string]string{"build_id": "123", "branch": "main"}, st.Sign.Annotations); d != "" {
		t.Errorf("annotations (-want +got):\n%s", d)
	}
	for params, want := range map[string]string{
		"--output-signature=sig":        "PLUGIN_COSIGN_PARAMS: unknown flag: --output-signature",
		"--rekor-url=https://r.example": "PLUGIN_COSIGN_PARAMS: --rekor-url: a signature made with a key is stored in the registry only",
		"--tlog-upload":                 "PLUGIN_COSIGN_PARAMS: --tlog-upload: a signature made with a key",
		"--key=other.key":               "PLUGIN_COSIGN_PARAMS: --key is not passed on",
	} {
		_, err := plan(t, merged(push, map[string]string{"PLUGIN_COSIGN_PARAMS": params}))
		if !errors.Is(err, settings.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", params, err, want)
		}
	}
	st, err = plan(t, map[string]string{"PLUGIN_REPO": "registry.example/app", "PLUGIN_PUSH_ONLY": "true", "PLUGIN_COSIGN_PARAMS": "--bogus"})
	if err != nil || st.Sign != nil || !strings.Contains(strings.Join(st.Notes, "\n"), "PLUGIN_COSIGN_PARAMS has no effect: nothing is signed") {
		t.Errorf("params without a key: %v, %v", err, st.Notes)
	}

	// Keyless: the log's flags, against PLUGIN_SIGN_TLOG_UPLOAD and
	// PLUGIN_SIGN_REKOR_URL.
	no, yes := false, true
	for _, c := range []struct {
		env    map[string]string
		p      sign.Params
		upload bool
		rekor  string
		err    string
	}{
		{nil, sign.Params{}, true, "https://rekor.sigstore.dev", ""},
		{nil, sign.Params{TlogUpload: &no}, false, "https://rekor.sigstore.dev", ""},
		{nil, sign.Params{RekorURL: "https://rekor.example"}, true, "https://rekor.example", ""},
		{map[string]string{"PLUGIN_SIGN_TLOG_UPLOAD": "false"}, sign.Params{TlogUpload: &no}, false, "https://rekor.sigstore.dev", ""},
		{map[string]string{"PLUGIN_SIGN_TLOG_UPLOAD": "false"}, sign.Params{TlogUpload: &yes}, false, "", "says --tlog-upload=true and PLUGIN_SIGN_TLOG_UPLOAD says false"},
		{map[string]string{"PLUGIN_SIGN_REKOR_URL": "https://a.example"}, sign.Params{RekorURL: "https://b.example"}, false, "", "says --rekor-url=https://b.example and PLUGIN_SIGN_REKOR_URL says https://a.example"},
	} {
		env := merged(map[string]string{"PLUGIN_COSIGN_PARAMS": "x"}, c.env)
		s, err := settings.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "/work")
		if err != nil {
			t.Fatal(err)
		}
		upload, rekor, err := keylessLog(s, c.p)
		switch {
		case c.err != "":
			if !errors.Is(err, settings.ErrInvalid) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v %+v: %v, want %q", c.env, c.p, err, c.err)
			}
		case err != nil || upload != c.upload || rekor != c.rekor:
			t.Errorf("%v %+v: %v %q %v, want %v %q", c.env, c.p, upload, rekor, err, c.upload, c.rekor)
		}
	}
}
