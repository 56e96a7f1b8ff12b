package step

import (
	"encoding/base64"
	"net/url"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/hoist-build/hoist/internal/envlist"
	"github.com/hoist-build/hoist/internal/kinds"
	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/settings"
)

// secretsOf is the mask of a step with these settings: the caller's
// secrets (env.Secrets), every secret setting and login, the content of
// the files secret settings name (a docker config, a JSON key, a signing
// key, the remote builder's TLS key: each masked line by line too), and
// the credentials Trivy takes from the environment.
func secretsOf(s *settings.Settings, env Environ, path func(string) string) *mask.Set {
	m := env.Secrets.Clone()
	for _, v := range s.Secrets() {
		m.Add(v)
		// Given as base64 (a JSON key or a client certificate, as
		// Harness passes them), it is masked decoded too.
		if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v)); err == nil && len(b) >= 3 && utf8.Valid(b) {
			m.Add(string(b))
		}
	}
	m.AddLogin(s.Username, s.Password)
	m.AddLogin(s.BaseUsername, s.BasePassword)
	if l, err := kinds.ParseLogins(s.Logins); err == nil {
		for _, sl := range l.Static {
			m.AddLogin(sl.Username, sl.Password)
		}
		m.Add(l.Secrets()...)
	}
	for _, p := range []string{s.Config, s.JSONKey, s.SignKey, s.ClientCert, s.BuilderKey} {
		if b, ok := secretFile(p, path); ok {
			m.Add(string(b))
		}
	}
	if env.Lookup != nil {
		for _, k := range []string{"TRIVY_PASSWORD", "TRIVY_REGISTRY_TOKEN"} {
			if v, ok := env.Lookup(k); ok {
				m.Add(v)
			}
		}
		// The proxies' logins: the proxy variables reach every RUN (curl
		// -v prints them), in any of the forms tools take: with a scheme
		// or without (user:password@proxy:3128), a password or a token
		// as the user name (http://token@proxy).
		for _, k := range maskedProxyVars {
			for _, e := range []string{k, "HARNESS_" + k} {
				if v, ok := env.Lookup(e); ok {
					addURLLogin(m, v, true)
				}
			}
		}
	}
	// A login in any other setting's URL (a Fulcio URL, a registry
	// mirror): the settings do not call them secret, and debug prints
	// them.
	for _, kv := range s.Masked() {
		for _, f := range strings.FieldsFunc(kv[1], func(r rune) bool { return strings.ContainsRune(" ,;[]\n\t", r) }) {
			if strings.Contains(f, "://") {
				addURLLogin(m, f, false)
			}
		}
	}
	return m
}

// maskedProxyVars are the proxy variables whose logins the mask holds:
// those a build gets (envlist.Proxy) and the others tools read.
var maskedProxyVars = append([]string{"ftp_proxy", "all_proxy", "FTP_PROXY", "ALL_PROXY"}, envlist.Proxy...)

// addURLLogin masks the login of the URL v: its password (with the
// user, as an Authorization header carries them), or, with userAlone, a
// user name without a password, which is then the token (curl sends it
// as user:). v may lack its scheme, as a proxy variable may.
func addURLLogin(m *mask.Set, v string, userAlone bool) {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return
	}
	user := u.User.Username()
	if pw, set := u.User.Password(); set && pw != "" {
		m.AddLogin(user, pw)
		return
	}
	if userAlone && user != "" {
		m.Add(user, base64.StdEncoding.EncodeToString([]byte(user+":")))
	}
}

// secretFile is the content of the file a secret setting names, when its
// value is a path (not inline content) to a regular file of at most 1 MiB.
func secretFile(v string, path func(string) string) ([]byte, bool) {
	if v == "" || len(v) > 4096 || strings.ContainsAny(v, "\n{") || strings.Contains(v, "-----BEGIN") {
		return nil, false
	}
	p := path(v)
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > 1<<20 {
		return nil, false
	}
	b, err := os.ReadFile(p)
	return b, err == nil
}
