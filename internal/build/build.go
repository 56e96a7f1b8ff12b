// Package build turns a Dockerfile and its context into an image. Builders
// (BuildKit and Kaniko) share one Request and one Result, and write
// their image to the outputs the request asks for: an OCI layout directory
// (what hoist pushes from and keeps in its workspace image store), a
// tarball, the Docker daemon.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hoist-build/hoist/internal/files"
)

// ErrBuild marks a failed build (the Dockerfile, its context or a step).
var ErrBuild = errors.New("build failed")

// ErrInput marks a build request that is wrong before anything runs.
var ErrInput = errors.New("invalid build input")

// Builder builds an image.
type Builder interface {
	Build(ctx context.Context, req Request) (*Result, error)
}

// Request is what to build and where to put the result.
type Request struct {
	ContextDir string
	Dockerfile string // a path; relative ones are relative to the working directory
	// DockerfileFrom says which setting chose the Dockerfile, for errors.
	DockerfileFrom string
	Target         string
	BuildArgs      []KV
	Labels         []KV
	Platforms      []string
	Secrets        map[string][]byte
	AddHosts       []string
	NoCache        bool
	// BaseImages asks the builder for the base images it resolved (for
	// the provenance).
	BaseImages bool
	Pull       bool
	Network    string
	CacheFrom  []CacheEntry
	CacheTo    []CacheEntry
	// Names are the image's full references (for docker tarballs and the
	// daemon).
	Names []string
	// Compression of layers: gzip (default), zstd or uncompressed; Level
	// 0 means the compressor's default.
	Compression string
	Level       int
	// Exclude are dockerignore patterns (relative to the context) kept
	// out of the context whatever its .dockerignore says: hoist's own
	// files (see Excludes).
	Exclude []string
	// NamedContexts are the extra build contexts (buildx --build-context):
	// by name, an image (docker-image://REF) or a local directory (an
	// absolute path). FROM NAME and COPY --from=NAME use them. BuildKit
	// only.
	NamedContexts map[string]string
	// NamedExcludes are, by name, the patterns kept out of a named
	// context that is a directory (as Exclude for the context).
	NamedExcludes map[string][]string
	// SSHKey is a private key offered to RUN --mount=type=ssh as the
	// default SSH agent (docker build --ssh default=KEYFILE). BuildKit
	// only. BuildKit's agent provider reads keys from files only: the
	// key is written to a file of its own (0600) in TempDir, read, and
	// removed before the build starts.
	SSHKey  []byte
	TempDir string

	Out Outputs
	// Workspace confines what hoist writes of the outputs (the blobs it
	// links into Out.LayoutDir): no symbolic link in it is followed out.
	Workspace files.Workspace
}

// Outputs are the places one build writes its image to; each is optional,
// one build serves them all.
type Outputs struct {
	// LayoutDir receives the image as an OCI image layout directory.
	LayoutDir string
	// Tar receives a tarball in TarFormat (docker or oci).
	Tar       io.WriteCloser
	TarFormat string
	// Load receives a docker-format tarball to stream into the daemon.
	Load io.WriteCloser
	// FSTar receives the image's filesystem as a tarball, FSDir the
	// image's filesystem (buildx --output type=tar, type=local): not an
	// image. BuildKit only.
	FSTar io.WriteCloser
	FSDir string
	// Push is a repository (no tag) the builder pushes the image to by
	// digest, tagging nothing, instead of writing any other output: a
	// remote BuildKit, where streaming the image back to push it would
	// cost a transfer. The builder reaches the registry as its own
	// configuration says (the caller chooses registries it reaches so).
	Push string
}

// KV is an ordered key=value pair.
type KV struct{ Key, Value string }

// CacheEntry is one --cache-from / --cache-to entry: type=registry,ref=...
type CacheEntry struct {
	Type  string
	Attrs map[string]string
}

// Result describes the built image.
type Result struct {
	// Digest of the image manifest or index.
	Digest string
	// Metadata is the builder's exporter response (BuildKit's
	// containerimage.* keys).
	Metadata map[string]string
	// BaseImages are the base images the builder resolved, when the
	// request asked for them and the builder tells (BuildKit does).
	BaseImages []Resolved
	// BuilderVersion is the builder's version, when it tells.
	BuilderVersion string
}

// paths checks the context directory and the Dockerfile and returns their
// absolute paths; the Dockerfile defaults to the context's.
func (r Request) paths() (ctxDir, dockerfile string, err error) {
	if ctxDir, err = filepath.Abs(r.ContextDir); err != nil {
		return "", "", err
	}
	if st, err := os.Stat(ctxDir); err != nil || !st.IsDir() {
		return "", "", fmt.Errorf("%w: build context %s is not a directory (PLUGIN_CONTEXT)", ErrInput, ctxDir)
	}
	dockerfile = r.Dockerfile
	if dockerfile == "" {
		dockerfile = filepath.Join(ctxDir, "Dockerfile")
	}
	if dockerfile, err = filepath.Abs(dockerfile); err != nil {
		return "", "", err
	}
	if st, err := os.Stat(dockerfile); err != nil || st.IsDir() {
		from := r.DockerfileFrom
		if from == "" {
			from = "PLUGIN_DOCKERFILE is relative to the working directory"
		}
		return "", "", fmt.Errorf("%w: dockerfile does not exist at path: %s (%s)", ErrInput, dockerfile, from)
	}
	return ctxDir, dockerfile, nil
}
