package step

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/settings"
)

// The files a build secret, a buildkitd.toml or a scan ignore file names
// are the repository's when they are in the workspace: a link committed
// there that leads out of it (to a runner's file), a FIFO or an
// oversized file is refused; a file outside the workspace that the
// setting names by its absolute path is read, and so is a link that stays
// inside.
func TestSettingFilesAreReadAsRepositoryFiles(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	outside := filepath.Join(t.TempDir(), "runner-secret")
	write := func(p, content string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(outside, "the-runner-secret")
	write(filepath.Join(ws, "npmrc.real"), "registry=inside")
	for link, target := range map[string]string{".npmrc": outside, "inside": "npmrc.real", "buildkitd.toml": outside, ".trivyignore": outside} {
		if err := os.Symlink(target, filepath.Join(ws, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(ws, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(ws, "big"), strings.Repeat("x", maxSecretFile+1))
	path := resolver(ws)
	env := Environ{Lookup: func(string) (string, bool) { return "", false }, WorkDir: ws}

	for spec, want := range map[string]error{
		"id=npmrc,src=.npmrc":   files.ErrLinkOut,
		"id=fifo,src=fifo":      files.ErrNotRegular,
		"id=big,src=big":        files.ErrTooLarge,
		"id=in,src=inside":      nil,
		"id=abs,src=" + outside: nil,
	} {
		_, v, err := rawSecret(spec, env, path)
		switch {
		case want == nil && err != nil:
			t.Errorf("%s: %v", spec, err)
		case want != nil && !errors.Is(err, want):
			t.Errorf("%s: error %v, value %q; want %v", spec, err, v, want)
		case want != nil && strings.Contains(err.Error(), "the-runner-secret"):
			t.Errorf("%s: the error quotes the file: %v", spec, err)
		}
	}
	s := &settings.Settings{SecretsFromFile: []string{"npmrc=.npmrc"}}
	if _, errs := buildSecretsOf(s, env, path); len(errs) != 1 || !errors.Is(errs[0], files.ErrLinkOut) {
		t.Errorf("PLUGIN_SECRETS_FROM_FILE through a link out: %v", errs)
	}
	if _, err := buildkitConfigOf(&settings.Settings{BuildkitConfig: "buildkitd.toml"}, path); !errors.Is(err, files.ErrLinkOut) {
		t.Errorf("PLUGIN_BUILDKIT_CONFIG through a link out: %v", err)
	}
}
