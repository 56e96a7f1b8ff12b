package settings

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// PLUGIN_OUTPUT maps onto hoist's own output settings, as buildx reads
// --output: an output that does not push means nothing is pushed.
func TestOutputMapsOntoSettings(t *testing.T) {
	t.Parallel()
	type got struct {
		TarPath, TarFormat string
		Load, NoPush       bool
	}
	for _, c := range []struct {
		env  map[string]string
		want got
	}{
		{map[string]string{"PLUGIN_OUTPUT": "type=registry"}, got{TarFormat: "docker"}},
		{map[string]string{"PLUGIN_OUTPUT": "type=image,push=true"}, got{TarFormat: "docker"}},
		{map[string]string{"PLUGIN_OUTPUT": "type=image"}, got{TarFormat: "docker", NoPush: true}},
		{map[string]string{"PLUGIN_OUTPUT": "type=registry,push=false"}, got{TarFormat: "docker", NoPush: true}},
		{map[string]string{"PLUGIN_OUTPUT": "type=docker,dest=out/i.tar"}, got{TarPath: "out/i.tar", TarFormat: "docker", NoPush: true}},
		{map[string]string{"PLUGIN_OUTPUT": ` type=oci, "dest=a,b.tar"`}, got{TarPath: "a,b.tar", TarFormat: "oci", NoPush: true}},
		{map[string]string{"PLUGIN_OUTPUT": "type=docker"}, got{TarFormat: "docker", Load: true, NoPush: true}},
		{map[string]string{"PLUGIN_OUTPUT": "type=oci,dest=x.tar", "PLUGIN_TAR_PATH": "x.tar", "PLUGIN_BUILDX_OUTPUT_FORMAT": "oci"}, got{TarPath: "x.tar", TarFormat: "oci", NoPush: true}},
		{map[string]string{"PLUGIN_OUTPUT": ""}, got{TarFormat: "docker"}},
		{map[string]string{"PLUGIN_OUTPUT": "type=local,dest=out"}, got{TarFormat: "docker", NoPush: true}},
		{map[string]string{"PLUGIN_OUTPUT": "type=tar,dest=fs.tar"}, got{TarFormat: "docker", NoPush: true}},
		{map[string]string{"PLUGIN_OUTPUT": "out"}, got{TarFormat: "docker", NoPush: true}},
	} {
		s, err := Load(nil, env(c.env), t.TempDir())
		if err != nil {
			t.Errorf("%v: %v", c.env, err)
			continue
		}
		if d := cmp.Diff(c.want, got{s.TarPath, s.TarFormat, s.Load, s.NoPush}); d != "" {
			t.Errorf("%v (-want +got):\n%s", c.env, d)
		}
		if c.want.TarPath != "" && s.Origin("tar-path") != "PLUGIN_OUTPUT" {
			t.Errorf("%v: the tarball's origin is %s", c.env, s.Origin("tar-path"))
		}
	}
}

func TestOutputRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PLUGIN_OUTPUT": "type=local"}, "type=local needs dest= (the directory"},
		{map[string]string{"PLUGIN_OUTPUT": "type=tar,dest=-"}, "dest=- is standard output"},
		{map[string]string{"PLUGIN_OUTPUT": "type=local,dest=d,platform-split=false"}, "hoist does not honour platform-split here"},
		{map[string]string{"PLUGIN_OUTPUT": "type=oci"}, "type=oci needs dest=FILE"},
		{map[string]string{"PLUGIN_OUTPUT": "type=docker,dest=-"}, "dest=- is standard output"},
		{map[string]string{"PLUGIN_OUTPUT": "type=oci,dest=a.tar,compression=zstd,name=x"}, "hoist does not honour compression, name here"},
		{map[string]string{"PLUGIN_OUTPUT": "type=image,push=maybe"}, "push=maybe: want true or false"},
		{map[string]string{"PLUGIN_OUTPUT": "type=nope"}, `unknown output type "nope"`},
		{map[string]string{"PLUGIN_OUTPUT": "type=docker,dest"}, `"dest" is not key=value`},
		{map[string]string{"PLUGIN_OUTPUT": `type=docker,"dest=a`}, "not an output as buildx --output takes it"},
		{map[string]string{"PLUGIN_OUTPUT": "type=registry", "PLUGIN_NO_PUSH": "true"}, "the output pushes, and PLUGIN_NO_PUSH=true says push nothing"},
		{map[string]string{"PLUGIN_OUTPUT": "type=image", "PLUGIN_PUSH_ONLY": "true"}, "PLUGIN_PUSH_ONLY=true pushes a pre-built image"},
		{map[string]string{"PLUGIN_OUTPUT": "type=oci,dest=a.tar", "PLUGIN_DESTINATION_TAR_PATH": "b.tar"}, `PLUGIN_DESTINATION_TAR_PATH="b.tar" names another`},
		{map[string]string{"PLUGIN_OUTPUT": "type=oci,dest=a.tar", "PLUGIN_BUILDX_OUTPUT_FORMAT": "docker"}, "a oci tarball, and PLUGIN_BUILDX_OUTPUT_FORMAT"},
	} {
		_, err := Load(nil, env(c.env), t.TempDir())
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "PLUGIN_OUTPUT=") {
			t.Errorf("%v: %v, want %q", c.env, err, c.want)
		}
	}
}

// FSExport names the filesystem export of type=local and type=tar only.
func TestFSExport(t *testing.T) {
	t.Parallel()
	for v, want := range map[string][3]any{
		"type=local,dest=out": {"local", "out", true},
		"type=tar,dest=a.tar": {"tar", "a.tar", true},
		"bin":                 {"local", "bin", true},
		"type=oci,dest=a.tar": {"", "", false},
		"":                    {"", "", false},
	} {
		typ, dest, ok := (&Settings{Output: v}).FSExport()
		if got := [3]any{typ, dest, ok}; got != want {
			t.Errorf("%q: %v, want %v", v, got, want)
		}
	}
}
