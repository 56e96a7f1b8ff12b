package step

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
