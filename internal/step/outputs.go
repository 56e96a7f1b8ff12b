package step

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/outputs"
	"github.com/hoist-build/hoist/internal/publish"
	"github.com/hoist-build/hoist/internal/source"
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

// writeCard writes the step's card (DRONE_CARD_PATH), when the runner
// gives a path: refs are the references that hold the image (pushed) or
// the names it was built under, size its bytes (0: unknown). Only values
// hoist made go in (outputs.Card): references, the digest, sizes, the
// scan's counts, the signed repositories.
func (r *runner) writeCard(digest string, refs []string, pushed bool, size int64) error {
	path := r.st.Outputs.CardPath
	if path == "" {
		return nil
	}
	c := outputs.Card{Digest: digest, Tags: refs, Pushed: pushed, Size: size, Time: time.Now(),
		Signed: r.res.Signed, Attested: r.res.Attested}
	if len(refs) > 0 {
		c.Image = refs[0]
	}
	seen := map[string]bool{}
	for _, ref := range refs {
		t, err := name.NewTag(ref, name.WeakValidation)
		if err != nil || seen[t.Context().Name()] {
			continue
		}
		seen[t.Context().Name()] = true
		c.Repositories = append(c.Repositories, t.Context().Name())
		if c.URL == "" && pushed && t.RegistryStr() == name.DefaultRegistry {
			c.URL = "https://hub.docker.com/r/" + t.RepositoryStr()
		}
	}
	if rec := r.res.Scan; rec != nil {
		c.Scan = &outputs.CardScan{Passed: rec.Passed, Verdict: rec.Verdict(), Counts: rec.Counts, Findings: rec.Findings,
			Scanner: strings.TrimSpace(rec.Scanner.Name + " " + rec.Scanner.Version)}
	}
	return outputs.WriteCard(r.st.Workspace, path, r.rt.Stdout, r.rt.Stderr, c)
}

// artifactSize is the bytes of an image's configs and layers.
func artifactSize(a source.Artifact) int64 {
	var n int64
	for _, s := range source.Blobs(a) {
		n += s
	}
	return n
}

// layoutSize is the bytes of the images of an OCI layout (0 when it
// cannot be read).
func layoutSize(dir string) int64 {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return 0
	}
	return artifactSize(idx)
}
