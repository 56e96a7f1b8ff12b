package sign

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Keyless signing sends the identity token to Fulcio and the signatures
// to Rekor: over plain HTTP only to this machine (loopback), anywhere else
// over TLS; anything else is refused when the step is planned, before any
// request.
func TestKeylessURLsNeedTLSBeyondLoopback(t *testing.T) {
	t.Parallel()
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://issuer.example","exp":` + itoa(time.Now().Add(time.Hour).Unix()) + `}`))
	token := "eyJhbGciOiJFUzI1NiJ9." + claims + ".c2ln"
	for _, c := range []struct {
		fulcio, rekor string
		refused       string // the setting named, "" when accepted
	}{
		{"https://fulcio.example", "https://rekor.example", ""},
		{"http://127.0.0.1:5555", "http://127.0.0.1:5556", ""},
		{"http://127.9.9.9", "", ""},
		{"http://localhost:5555", "http://LOCALHOST:5556/", ""},
		{"http://[::1]:5555", "http://[::1]:5556", ""},
		{"http://fulcio.example", "", "PLUGIN_SIGN_FULCIO_URL"},
		{"http://10.0.0.8:5555", "", "PLUGIN_SIGN_FULCIO_URL"},
		{"http://[fd00::1]:5555", "", "PLUGIN_SIGN_FULCIO_URL"},
		{"http://localhost.attacker.example", "", "PLUGIN_SIGN_FULCIO_URL"},
		{"http://127.0.0.1.attacker.example", "", "PLUGIN_SIGN_FULCIO_URL"},
		{"https://fulcio.example", "http://rekor.example", "PLUGIN_SIGN_REKOR_URL"},
		{"https://fulcio.example", "http://192.168.1.10:3000", "PLUGIN_SIGN_REKOR_URL"},
	} {
		_, err := NewKeyless(Keyless{IDToken: token, FulcioURL: c.fulcio, RekorURL: c.rekor})
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s %s: refused: %v", c.fulcio, c.rekor, err)
		case c.refused != "" && (!errors.Is(err, ErrKey) || !strings.Contains(err.Error(), c.refused) ||
			!strings.Contains(err.Error(), "is plain HTTP to") || !strings.Contains(err.Error(), "use https://")):
			t.Errorf("%s %s: %v, want a refusal naming %s", c.fulcio, c.rekor, err, c.refused)
		case err != nil && strings.Contains(err.Error(), claims):
			t.Errorf("the error shows the token: %v", err)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A Fulcio or Rekor URL with a login (a private instance behind basic
// auth, as the attacker review tried) is refused when the step is
// planned: Fulcio is given the identity token and Rekor takes no login,
// so hoist would send it nowhere, and the settings do not mark a URL as
// secret, so no mask would cover it where it is printed. The refusal
// names the setting and the URL without its login; so does the refusal
// of a URL that does not parse.
func TestKeylessURLWithLoginIsRefusedUnprinted(t *testing.T) {
	t.Parallel()
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://issuer.example","exp":` + itoa(time.Now().Add(time.Hour).Unix()) + `}`))
	token := "eyJhbGciOiJFUzI1NiJ9." + claims + ".c2ln"
	const pw = "fulcio-login-pw-5521"
	for _, c := range []struct {
		fulcio, rekor, setting, want string
	}{
		{"https://ci:" + pw + "@fulcio.example", "", "PLUGIN_SIGN_FULCIO_URL", "https://fulcio.example holds a login"},
		{"https://ci:" + pw + "@127.0.0.1:1", "", "PLUGIN_SIGN_FULCIO_URL", "https://127.0.0.1:1 holds a login"},
		{"https://" + pw + "@fulcio.example", "", "PLUGIN_SIGN_FULCIO_URL", "holds a login"},
		{"https://fulcio.example", "https://ci:" + pw + "@rekor.example/", "PLUGIN_SIGN_REKOR_URL", "https://rekor.example/ holds a login"},
		{"https://ci:" + pw + "@fulcio.example:port", "", "PLUGIN_SIGN_FULCIO_URL", "is not an http(s) URL"},
	} {
		_, err := NewKeyless(Keyless{IDToken: token, FulcioURL: c.fulcio, RekorURL: c.rekor})
		if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), c.setting) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want a refusal naming %s and saying %q", c.fulcio, c.rekor, err, c.setting, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "ci:")) {
			t.Errorf("the refusal shows the login: %v", err)
		}
	}
}
