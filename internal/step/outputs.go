package step

import (
	"encoding/json"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/outputs"
	"github.com/hoist-build/hoist/internal/publish"
)

// writeOutputs writes the digest, DRONE_OUTPUT and artifact files when at
// least one destination has the image.
func (r *runner) writeOutputs(digest string, results []publish.Result, extra map[string]string) error {
	var ok []publish.Result
	for _, res := range results {
		if res.Err == nil {
			ok = append(ok, res)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	vars := map[string]string{"digest": digest}
	for k, v := range extra {
		vars[k] = v
	}
	refs := make([]string, len(ok))
	for i, res := range ok {
		refs[i] = res.Ref
	}
	first, _ := name.NewTag(ok[0].Ref, name.WeakValidation)
	vars["IMAGE"] = ok[0].Ref
	vars["IMAGE_REFS"] = strings.Join(refs, ",")
	vars["IMAGE_DIGEST_REF"] = first.Context().Name() + "@" + digest
	if err := r.writeDigestAndEnv(digest, vars); err != nil {
		return err
	}
	o := r.st.Outputs
	if o.ArtifactFile != "" {
		a := outputs.Artifact{Data: outputs.ArtifactData{RegistryType: o.ArtifactType, RegistryURL: registryURL(o.Registry, ok[0].Ref)}}
		for _, res := range ok {
			a.Data.Images = append(a.Data.Images, outputs.ArtifactImage{Image: res.Ref, Digest: digest})
		}
		if err := outputs.WriteArtifact(r.st.Workspace, o.ArtifactFile, a); err != nil {
			return err
		}
	}
	return nil
}

// writeDigestAndEnv writes the digest file and merges vars into
// DRONE_OUTPUT, when those are set.
func (r *runner) writeDigestAndEnv(digest string, vars map[string]string) error {
	o := r.st.Outputs
	if o.DigestFile != "" {
		if err := outputs.Digest(r.st.Workspace, o.DigestFile, digest); err != nil {
			return err
		}
	}
	if o.EnvFile != "" {
		if err := outputs.Env(r.st.Workspace, o.EnvFile, vars); err != nil {
			return err
		}
	}
	return nil
}

// writeMetadata writes the build's metadata file, when asked for.
func (r *runner) writeMetadata(res *build.Result) error {
	if r.st.Outputs.MetadataFile == "" {
		return nil
	}
	b, _ := json.MarshalIndent(res.Metadata, "", "  ")
	return outputs.WriteFile(r.st.Workspace, r.st.Outputs.MetadataFile, append(b, '\n'))
}

// registryURL is the artifact file's registry: PLUGIN_REGISTRY, else the
// first pushed reference's registry (Docker Hub's v1 URL, as the peers
// write it).
func registryURL(setting, ref string) string {
	if setting != "" {
		return setting
	}
	t, err := name.NewTag(ref, name.WeakValidation)
	if err != nil || t.RegistryStr() == name.DefaultRegistry {
		return "https://index.docker.io/v1/"
	}
	return t.RegistryStr()
}
