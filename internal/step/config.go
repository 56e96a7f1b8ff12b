package step

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/kinds"
	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/runid"
	"github.com/hoist-build/hoist/internal/scan"
	"github.com/hoist-build/hoist/internal/sign"
)

// Mode is what a step does.
type Mode int

const (
	// ModeBuild builds the image (Build) and pushes it to every
	// destination, besides the build's own outputs.
	ModeBuild Mode = iota + 1
	// ModeBuildOnly builds the image and pushes nothing (PLUGIN_NO_PUSH):
	// the tarball, the daemon, the workspace image store.
	ModeBuildOnly
	// ModePushOnly pushes a pre-built image (Source) to every destination
	// (PLUGIN_PUSH_ONLY).
	ModePushOnly
	// ModeScanOnly scans a pre-built image (Source) and pushes nothing
	// (hoist scan).
	ModeScanOnly
	// ModeVerify verifies an image's signatures and attestations
	// (Verify; hoist verify): nothing is built or pushed.
	ModeVerify
)

func (m Mode) String() string {
	switch m {
	case ModeBuild:
		return "build-and-push"
	case ModeBuildOnly:
		return "build-only"
	case ModePushOnly:
		return "push-only"
	case ModeScanOnly:
		return "scan-only"
	case ModeVerify:
		return "verify"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Builds reports whether the mode builds an image.
func (m Mode) Builds() bool { return m == ModeBuild || m == ModeBuildOnly }

// Pushes reports whether the mode pushes to destinations.
func (m Mode) Pushes() bool { return m == ModeBuild || m == ModePushOnly }

// Step is the configuration of one step: plain values, which a caller may
// write by hand (Validate checks them) or have FromSettings make from the
// settings. Every path is absolute. Run takes the handles of a run (the
// output sinks, the mask, an engine) apart, in a Runtime.
type Step struct {
	// Mode says what the step does, and which of Build, Source and
	// Verify it reads.
	Mode Mode
	// Build is the build of ModeBuild and ModeBuildOnly.
	Build *Build
	// Source is the pre-built image of ModePushOnly and ModeScanOnly.
	Source Source
	// Verify is the request of ModeVerify.
	Verify *VerifyRequest
	// Promote, when set, has ModePushOnly promote Source from its
	// registry (PromoteRequest).
	Promote *PromoteRequest
	// Scan, when set, scans the image with Trivy before anything is
	// pushed, and pushes nothing when the gate fails (ModeBuild,
	// ModePushOnly); ModeScanOnly needs it.
	Scan *scan.Options
	// RequireScan is the scan records directory where the image's digest
	// must have a passing record before it is pushed ("" for none;
	// ModePushOnly).
	RequireScan string
	// Sign, when set, signs the pushed digest in every destination
	// repository after the push.
	Sign *Signing
	// Attest is what is attached to the signed digest (SBOM, provenance).
	Attest Attest

	// Destinations are every repo:tag the image goes to.
	Destinations []name.Tag
	Login        Login
	Transport    registry.TransportOptions
	Push         Push
	// GzipLevel compresses layers that arrive uncompressed (0: hoist's
	// default); KeepUncompressed pushes them as they are.
	GzipLevel        int
	KeepUncompressed bool
	// CompressCache is the workspace's compression cache ("" for none).
	CompressCache string
	// Run is the pipeline run the step belongs to: the workspace's state
	// (scan records, the compression cache, the image store) vouches for
	// something only when this run made it.
	Run      runid.Run
	Insecure bool
	// TempDir holds temporary layers and tarballs.
	TempDir string
	// Workspace is the working directory, whose content hoist does not
	// own: every file the step writes in it (outputs, tarball, image
	// store, compression cache, scan records and reports) follows no
	// symbolic link out of it (files.Workspace).
	Workspace files.Workspace
	// UseDaemon allows the Docker daemon at DockerHost.
	UseDaemon  bool
	DockerHost string
	Outputs    Outputs

	// Secrets are the secrets the configuration holds or names (secret
	// settings, logins, the content of key files, build secrets): Run
	// masks them in every byte it writes, from its first. Run never
	// changes this set; it adds to Runtime.Mask.
	Secrets *mask.Set
	// Progress is how progress is shown.
	Progress progress.Mode
	// Debug logs every registry request of the push.
	Debug bool
	// Notes are printed first (the settings with --debug, what the
	// settings chose).
	Notes []string
	// Version is hoist's version, for scan records and the provenance.
	Version string
}

// Source is a pre-built image: a tarball or OCI layout, a reference (in
// the workspace image store, the daemon, its registry), or, with neither,
// the names the build step recorded (Fallbacks, looked up in the store
// and the daemon).
type Source struct {
	TarPath   string
	Image     string
	Fallbacks []string
	// Store is the workspace image store, looked in first.
	Store string
}

// Signing is how the pushed digest is signed: with a cosign private key
// (Key: PEM content or an absolute path; Password decrypts it), or
// keyless (Keyless), never both.
type Signing struct {
	Key, Password string
	Keyless       *sign.Keyless
	// Annotations are signed in each signature's payload (cosign sign
	// -a; PLUGIN_COSIGN_PARAMS).
	Annotations map[string]string
}

// signer is the stateful signer of a run (its key decrypted once).
func (s *Signing) signer() (*sign.Signer, error) {
	var sg *sign.Signer
	var err error
	if s.Keyless != nil {
		sg, err = sign.NewKeyless(*s.Keyless)
	} else {
		sg, err = sign.Load(s.Key, s.Password)
	}
	if err != nil {
		return nil, err
	}
	sg.Annotations = s.Annotations
	return sg, nil
}

// Login is how the step obtains credentials.
type Login struct {
	Static registry.Credentials
	// Kind is the registry kind of the step's own registry (nil: every
	// host's own kind); Kinds the kinds' settings.
	Kind  kinds.Kind
	Kinds kinds.Config
	// Partial pushes to the registries it has credentials for when
	// another's cannot be obtained.
	Partial bool
}

// Push are the limits of the push.
type Push struct {
	Jobs, MaxParallel, Retries int
	FailFast                   bool
	// SkipExisting leaves out every repository that holds one of its
	// tags already, asked before anything is built (plugins/ecr's
	// skip_push_if_tag_exists); a step with nothing left is skipped.
	SkipExisting bool
}

// Outputs are the files a CI system reads after the step.
type Outputs struct {
	DigestFile, EnvFile, ArtifactFile, MetadataFile string
	// TarPath is the IMAGE_TAR_PATH value, as the user gave it.
	TarPath string
	// ArtifactType and Registry fill the artifact file.
	ArtifactType, Registry string
	// CardPath is where the card goes (DRONE_CARD_PATH): /dev/stdout or
	// /dev/stderr (the Runtime's writers), else a file.
	CardPath string
}

// Runtime are the handles of one run of a step, apart from its
// configuration.
type Runtime struct {
	// Stdout and Stderr are the step's output (nil: discarded); the
	// caller masks them with Mask. Terminal, when set, is the (masked)
	// terminal BuildKit draws its display on.
	Stdout, Stderr io.Writer
	Terminal       io.Writer
	// Mask is the mask of the run: Run adds the step's Secrets to it
	// first, then every credential it obtains (nil: a set of its own).
	Mask *mask.Set
	// Engine, when set, is the BuildKit a BuildKit build runs on (the
	// pipeline's shared engine); Run does not close it. Nil: the step
	// opens the engine its Build names.
	Engine *engine.Engine
}

// Validate reports every problem of the configuration at once, each
// naming the field, wrapped in ErrInvalid; nil when Run can take it.
func (st *Step) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	abs := func(field, p string) {
		if p != "" && !filepath.IsAbs(p) {
			bad("%s %q is not an absolute path", field, p)
		}
	}
	switch st.Mode {
	case ModeBuild, ModeBuildOnly:
		if st.Build == nil {
			bad("Mode %s needs Build", st.Mode)
		}
	case ModePushOnly, ModeScanOnly:
		if st.Build != nil {
			bad("Mode %s takes a pre-built Source, and Build is set", st.Mode)
		}
	case ModeVerify:
		if st.Verify == nil || st.Verify.Image == "" || !st.Verify.Policy.Valid() {
			bad("Mode verify needs Verify with an Image and a Policy of a Key or an Identity from sign.LoadIdentity")
		}
	default:
		bad("Mode %d is none of build-and-push, build-only, push-only, scan-only, verify", int(st.Mode))
	}
	if st.Mode != ModeVerify && st.Verify != nil {
		bad("Verify is set, and Mode is %s (not verify)", st.Mode)
	}
	if p := st.Promote; p != nil && p.Policy != nil && !p.Policy.Valid() {
		bad("Promote.Policy needs a Key or an Identity from sign.LoadIdentity, one of them")
	}
	if st.Promote != nil && (st.Mode != ModePushOnly || st.Source.Image == "" || st.Source.TarPath != "" || st.Sign != nil || st.Scan != nil) {
		bad("Promote copies Source.Image from its registry: Mode push-only, no TarPath, nothing signed or scanned")
	}
	if st.Mode.Pushes() && len(st.Destinations) == 0 {
		bad("Mode %s pushes, and Destinations is empty", st.Mode)
	}
	if st.Mode == ModeScanOnly && st.Scan == nil {
		bad("Mode scan-only needs Scan")
	}
	if !st.Mode.Pushes() && st.Mode != ModeScanOnly && st.Scan != nil {
		bad("Scan gates a push, and Mode %s pushes nothing", st.Mode)
	}
	if st.RequireScan != "" && st.Mode != ModePushOnly {
		bad("RequireScan checks the record of a pre-built image before its push: Mode push-only, not %s", st.Mode)
	}
	if st.Sign != nil {
		if !st.Mode.Pushes() {
			bad("Sign signs what a step pushes, and Mode %s pushes nothing", st.Mode)
		}
		if (st.Sign.Key == "") == (st.Sign.Keyless == nil) {
			bad("Sign needs a Key or Keyless, exactly one")
		}
	}
	if (st.Attest.SBOM || st.Attest.Provenance != nil) && st.Sign == nil {
		bad("Attest attaches signed attestations, and Sign is not set")
	}
	if st.Attest.SBOM && st.Scan == nil && st.Attest.SBOMScan == nil {
		bad("Attest.SBOM needs Scan or Attest.SBOMScan (how Trivy runs)")
	}
	if b := st.Build; b != nil && st.Mode.Builds() {
		switch b.Tool {
		case "buildkit", "kaniko":
		default:
			bad("Build.Tool %q: want buildkit or kaniko", b.Tool)
		}
		if b.Request.ContextDir == "" {
			bad("Build.Request.ContextDir is empty")
		}
		abs("Build.Request.ContextDir", b.Request.ContextDir)
		abs("Build.Request.Dockerfile", b.Request.Dockerfile)
		abs("Build.TarPath", b.TarPath)
		abs("Build.Store", b.Store)
		if b.TarPath != "" && b.TarFormat != "docker" && b.TarFormat != "oci" {
			bad("Build.TarFormat %q: want docker or oci", b.TarFormat)
		}
		if (b.Load || b.InDaemon) && !st.UseDaemon {
			bad("Build.Load and Build.InDaemon need the Docker daemon, and UseDaemon is false")
		}
		if b.Load && len(st.Destinations) == 0 {
			bad("Build.Load names the image in the daemon by the Destinations, and there are none")
		}
		if b.Store != "" && len(st.Destinations) == 0 {
			bad("Build.Store records the image under the Destinations, and there are none")
		}
		if b.InDaemon && b.Tool != "buildkit" {
			bad("Build.InDaemon is a BuildKit build, and Build.Tool is %s", b.Tool)
		}
		// The daemon is an InDaemon build's only output: no layout for
		// the store, a docker tarball saved from it, one platform.
		if b.InDaemon && b.Store != "" {
			bad("Build.InDaemon writes the image into the daemon, and Build.Store needs an image layout")
		}
		if b.InDaemon && b.TarPath != "" && b.TarFormat != "docker" {
			bad("Build.InDaemon saves a docker tarball from the daemon, and Build.TarFormat is %q", b.TarFormat)
		}
		if b.InDaemon && len(b.Request.Platforms) > 1 {
			bad("Build.InDaemon builds one platform, and Build.Request.Platforms has %d", len(b.Request.Platforms))
		}
		abs("Build.Engine.Dir", b.Engine.Dir)
	}
	if st.TempDir == "" {
		bad("TempDir is empty")
	}
	abs("TempDir", st.TempDir)
	abs("Workspace", string(st.Workspace))
	abs("CompressCache", st.CompressCache)
	abs("RequireScan", st.RequireScan)
	abs("Source.TarPath", st.Source.TarPath)
	abs("Source.Store", st.Source.Store)
	for _, o := range [][2]string{{"DigestFile", st.Outputs.DigestFile}, {"EnvFile", st.Outputs.EnvFile},
		{"ArtifactFile", st.Outputs.ArtifactFile}, {"MetadataFile", st.Outputs.MetadataFile}, {"CardPath", st.Outputs.CardPath}} {
		abs("Outputs."+o[0], o[1])
	}
	if st.Push.Jobs < 0 || st.Push.MaxParallel < 0 || st.Push.Retries < 0 {
		bad("Push.Jobs, Push.MaxParallel and Push.Retries are at least 0")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: step: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}
