package settings

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func env(m map[string]string) LookupFunc {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadFromEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want func(*Settings) any
		exp  any
	}{
		{"defaults", nil, func(s *Settings) any { return []any{s.Tags, s.PushRetry, s.RegistryTimeout, s.Progress, s.NoPush} }, []any{[]string{"latest"}, 3, 30 * time.Second, "auto", false}},
		{"tags trimmed, empty items dropped", map[string]string{"PLUGIN_TAGS": " a, b ,,c,"}, func(s *Settings) any { return s.Tags }, []string{"a", "b", "c"}},
		{"PLUGIN_TAG is read before PLUGIN_TAGS", map[string]string{"PLUGIN_TAG": "x", "PLUGIN_TAGS": "y"}, func(s *Settings) any { return s.Tags }, []string{"x"}},
		{"first present name wins even when empty", map[string]string{"PLUGIN_DRY_RUN": "", "PLUGIN_NO_PUSH": "true"}, func(s *Settings) any { return s.NoPush }, false},
		{"second name used when the first is absent", map[string]string{"PLUGIN_NO_PUSH": "true"}, func(s *Settings) any { return s.NoPush }, true},
		{"bool spellings", map[string]string{"PLUGIN_PUSH_ONLY": "T"}, func(s *Settings) any { return s.PushOnly }, true},
		{"int with 0x", map[string]string{"PLUGIN_PUSH_RETRY": "0x10"}, func(s *Settings) any { return s.PushRetry }, 16},
		{"empty int means default", map[string]string{"PLUGIN_PUSH_RETRY": ""}, func(s *Settings) any { return s.PushRetry }, 3},
		{"duration in seconds", map[string]string{"PLUGIN_REGISTRY_TIMEOUT": "5"}, func(s *Settings) any { return s.RegistryTimeout }, 5 * time.Second},
		{"duration with unit", map[string]string{"PLUGIN_REGISTRY_TIMEOUT": "1m"}, func(s *Settings) any { return s.RegistryTimeout }, time.Minute},
		{"DOCKER_USERNAME is a second name", map[string]string{"DOCKER_USERNAME": "u"}, func(s *Settings) any { return s.Username }, "u"},
		{"destinations list", map[string]string{"PLUGIN_DESTINATIONS": "a/b:1,c/d:2"}, func(s *Settings) any { return s.Destinations }, []string{"a/b:1", "c/d:2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Load(nil, env(tc.env), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.exp, tc.want(s)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestLoadReportsEveryInvalidValue(t *testing.T) {
	t.Parallel()
	_, err := Load(nil, env(map[string]string{
		"PLUGIN_NO_PUSH":          "yes",
		"PLUGIN_PUSH_RETRY":       "three",
		"PLUGIN_REGISTRY_TIMEOUT": "soon",
	}), t.TempDir())
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("want ErrInvalid, got %v", err)
	}
	for _, want := range []string{
		`PLUGIN_NO_PUSH="yes": want true or false`,
		`PLUGIN_PUSH_RETRY="three": want a whole number`,
		`PLUGIN_REGISTRY_TIMEOUT="soon": want a duration`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse([]string{"--tags", "a", "--tags", "b,c", "--push-only", "--repo=r"}); err != nil {
		t.Fatal(err)
	}
	s, err := Load(fs, env(map[string]string{"PLUGIN_TAGS": "env", "PLUGIN_REPO": "envrepo", "PLUGIN_PUSH_ONLY": "false"}), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]any{[]string{"a", "b", "c"}, "r", true}, []any{s.Tags, s.Repo, s.PushOnly}); d != "" {
		t.Error(d)
	}
	if s.Origin("tags") != "--tags" || s.Origin("registry") != "default" {
		t.Errorf("origins: %s %s", s.Origin("tags"), s.Origin("registry"))
	}
}

func TestTagsFileFallback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".tags"), []byte("1.0.0,1.0, 1\n"), 0o644)
	s, err := Load(nil, env(nil), dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"1.0.0", "1.0", "1"}, s.Tags); d != "" {
		t.Error(d)
	}
	// A variable, even an empty one, wins over the file.
	s, err = Load(nil, env(map[string]string{"PLUGIN_TAGS": "x"}), dir)
	if err != nil || s.Tags[0] != "x" {
		t.Fatalf("%v %v", s.Tags, err)
	}
}

func TestEnvFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "plugin.env"), []byte("# comment\nexport PLUGIN_TARGET=from-file\nPLUGIN_TAGS=\"a,b\"\nPLUGIN_NO_CACHE='true'\n"), 0o644)
	s, err := Load(nil, env(map[string]string{"PLUGIN_ENV_FILE": "plugin.env", "PLUGIN_TAGS": "set"}), dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]any{"from-file", []string{"set"}, true}, []any{s.Target, s.Tags, s.NoCache}); d != "" {
		t.Error(d)
	}
	_, err = Load(nil, env(map[string]string{"PLUGIN_ENV_FILE": "missing.env"}), dir)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "missing.env") {
		t.Errorf("missing env file: %v", err)
	}
}

func TestSecretsAreMasked(t *testing.T) {
	t.Parallel()
	s, err := Load(nil, env(map[string]string{"PLUGIN_PASSWORD": "hunter2-secret", "PLUGIN_USERNAME": "me"}), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"hunter2-secret"}, s.Secrets()); d != "" {
		t.Error(d)
	}
	for _, kv := range s.Masked() {
		if strings.Contains(kv[1], "hunter2") {
			t.Errorf("Masked shows the password: %v", kv)
		}
	}
}

func TestEveryFieldHasOneFlagAndDistinctEnvNames(t *testing.T) {
	t.Parallel()
	flags, envs := map[string]bool{}, map[string]string{}
	for _, f := range Fields() {
		if flags[f.Flag] {
			t.Errorf("flag --%s is declared twice", f.Flag)
		}
		flags[f.Flag] = true
		for _, e := range f.Env {
			if other, ok := envs[e]; ok {
				t.Errorf("%s is read by both --%s and --%s", e, other, f.Flag)
			}
			envs[e] = f.Flag
		}
	}
}

var update = flag.Bool("update", false, "rewrite docs/settings.md")

// TestDocsMatchSettings fails when docs/settings.md drifts from the struct;
// run `make docs` (or go test -update) to regenerate it.
func TestDocsMatchSettings(t *testing.T) {
	p := filepath.Join("..", "..", "docs", "settings.md")
	want := Markdown()
	if *update {
		if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, string(got)); d != "" {
		t.Errorf("docs/settings.md is out of date; run make docs (-generated +file):\n%s", d)
	}
}

func TestKanikoArgs(t *testing.T) {
	t.Parallel()
	s, err := Load(nil, env(map[string]string{"PLUGIN_SNAPSHOT_MODE": "redo", "PLUGIN_CACHE_TTL": "6", "PLUGIN_REPRODUCIBLE": "true",
		"PLUGIN_IGNORE_PATHS": "/var/cache,/tmp/x", "PLUGIN_IMAGE_FS_EXTRACT_RETRY": "2", "PLUGIN_USE_NEW_RUN": "false"}), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--snapshot-mode=redo", "--cache-ttl=6h", "--reproducible", "--ignore-path=/var/cache", "--ignore-path=/tmp/x", "--image-fs-extract-retry=2"}
	if d := cmp.Diff(want, s.KanikoArgs()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// Whatever value any setting is given: no panic, and a refused value is
// named by its variable (and a secret's value is never echoed).
func FuzzLoad(f *testing.F) {
	for _, s := range []struct {
		i uint16
		v string
	}{{0, "x"}, {3, "true"}, {7, "0x10"}, {9, "1m"}, {11, " a, ,b"}, {20, "-1"}, {30, "ft"}} {
		f.Add(s.i, s.v)
	}
	dir := f.TempDir()
	all := Fields()
	f.Fuzz(func(t *testing.T, i uint16, v string) {
		fd := all[int(i)%len(all)]
		s, err := Load(nil, env(map[string]string{fd.Env[0]: v}), dir)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), fd.Env[0]) {
				t.Fatalf("%s=%q: error %v", fd.Env[0], v, err)
			}
			if fd.Secret && len(v) >= 8 && strings.Contains(err.Error(), v) {
				t.Fatalf("%s: the secret is in the error %v", fd.Env[0], err)
			}
			return
		}
		if fd.Kind == "list" {
			for _, item := range reflect.ValueOf(s).Elem().FieldByName(fd.Name).Interface().([]string) {
				if item == "" || item != strings.TrimSpace(item) {
					t.Fatalf("%s=%q gave the item %q", fd.Env[0], v, item)
				}
			}
		}
	})
}
