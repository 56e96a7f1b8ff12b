package sign

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// PLUGIN_COSIGN_PARAMS as plugins/docker's users write it: the honoured
// flags in each of pflag's forms, and every other flag refused by name.
func TestParseParams(t *testing.T) {
	t.Parallel()
	no, yes := false, true
	for _, c := range []struct {
		in   string
		want Params
	}{
		{"", Params{}},
		{"-a build_id=123 -a commit_sha=abc --annotations branch=main", Params{Annotations: map[string]string{"build_id": "123", "commit_sha": "abc", "branch": "main"}}},
		{"-a=k=v=w --annotations=x=1,y=2 -az=", Params{Annotations: map[string]string{"k": "v=w", "x": "1", "y": "2", "z": ""}}},
		{"--tlog-upload=false --yes -y", Params{TlogUpload: &no}},
		{"--tlog-upload --rekor-url https://rekor.example", Params{TlogUpload: &yes, RekorURL: "https://rekor.example"}},
		{"\t--rekor-url=https://rekor.example\n", Params{RekorURL: "https://rekor.example"}},
	} {
		got, err := ParseParams(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if d := cmp.Diff(c.want, got); d != "" {
			t.Errorf("%q (-want +got):\n%s", c.in, d)
		}
	}
	for in, want := range map[string]string{
		"--output-signature sig.txt":               "unknown flag: --output-signature",
		"-a k=v --registry-referrers-mode=oci-1-1": "unknown flag: --registry-referrers-mode",
		"-d":                        "unknown shorthand flag: 'd' in -d",
		"--key cosign.key":          "--key is not passed on: the key is PLUGIN_COSIGN_PRIVATE_KEY",
		"--allow-insecure-registry": "--allow-insecure-registry is not passed on: registry access is PLUGIN_INSECURE",
		"--tlog-upload false":       `"false" is no flag's value`,
		"registry.example/app:1":    `"registry.example/app:1" is no flag's value`,
		"-a novalue":                `annotation "novalue" is not key=value`,
		"-a =v":                     `annotation "=v" is not key=value`,
		"--yes=false":               "--yes=false: hoist never asks",
		"--tlog-upload=maybe":       `invalid argument "maybe" for "--tlog-upload"`,
	} {
		_, err := ParseParams(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
