package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// A credential helper runs once per key and step: once the keychain is
// warmed (before a Kaniko build), a helper replaced afterwards (by the
// build's RUN steps) is never run, and the answers had before are used.
func TestKeychainRunsEachHelperOnce(t *testing.T) {
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls")
	helper := filepath.Join(bin, "docker-credential-hoisttest")
	write := func(body string) {
		if err := os.WriteFile(helper, []byte("#!/bin/sh\nread server\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(`echo "$server" >> ` + calls + "\n" +
		`case "$server" in reg.example.com*) echo '{"ServerURL":"'$server'","Username":"helped","Secret":"helper-secret"}';; *) echo "credentials not found in native keychain"; exit 1;; esac` + "\n")
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	kc, err := NewKeychain(Credentials{Config: `{"credsStore":"hoisttest"}`})
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := name.NewRepository("reg.example.com/team/app")
	other, _ := name.NewRepository("other.example.com/team/app")
	if err := kc.Warm(repo, repo.Registry, other); err != nil {
		t.Fatal(err)
	}
	write("echo planted > " + filepath.Join(bin, "planted") + "\necho '{\"ServerURL\":\"x\",\"Username\":\"planted\",\"Secret\":\"planted\"}'\n")
	for i := 0; i < 3; i++ {
		for _, res := range []authn.Resource{repo, repo.Registry, other} {
			a, err := kc.Resolve(res)
			if err != nil {
				t.Fatal(err)
			}
			ac, _ := a.Authorization()
			want := authn.AuthConfig{}
			if res.RegistryStr() == "reg.example.com" {
				want = authn.AuthConfig{Username: "helped", Password: "helper-secret"}
			}
			if *ac != want {
				t.Errorf("%s: %+v, want %+v", res, *ac, want)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(bin, "planted")); err == nil {
		t.Error("the replaced helper ran")
	}
	b, _ := os.ReadFile(calls)
	if got := strings.Fields(string(b)); strings.Join(got, " ") != "reg.example.com/team/app reg.example.com other.example.com/team/app other.example.com" {
		t.Errorf("the helper was asked for %v, want each key once", got)
	}
}
