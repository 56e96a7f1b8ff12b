// Package cli is hoist's thin command layer: it parses and validates the
// settings, calls the library packages, prints results and maps errors to
// exit codes. Run with no arguments, hoist is a CI plugin driven by
// PLUGIN_* variables; with a command, a CLI.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/kinds"
	"github.com/hoist-build/hoist/internal/publish"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/scan"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/sign"
	"github.com/hoist-build/hoist/internal/source"
	"github.com/hoist-build/hoist/internal/step"
)

// Exit codes; documented in docs/usage.md.
const (
	ExitOK         = 0
	ExitFailure    = 1 // anything not listed below
	ExitSettings   = 2 // invalid settings or usage
	ExitSource     = 3 // the image to push (or verify) cannot be found or read, or its registry is unavailable
	ExitPush       = 4 // at least one destination failed
	ExitBuild      = 5 // the build failed (Dockerfile, a step, a base image)
	ExitEngine     = 6 // the build engine cannot be reached or started
	ExitScan       = 7 // the scan gate failed, PLUGIN_REQUIRE_SCAN found no passing record (--exit-code changes it), or the vulnerability database is not the one PLUGIN_SCAN_DB_DIGEST pins
	ExitScanner    = 8 // the scan could not run: Trivy missing or of another version, no usable database
	ExitUnverified = 9 // hoist verify, hoist promote: a signature or a required attestation does not verify
	ExitCancelled  = 130
)

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// Env is the process environment, injected so tests run in parallel.
type Env struct {
	Lookup  settings.LookupFunc
	WorkDir string
	// TempDir is where temporary files go (default os.TempDir()).
	TempDir string
	// Environ is the whole environment, for the Kaniko executor.
	Environ []string
	Stdout  io.Writer
	Stderr  io.Writer
	// Shield is called before the Kaniko executor starts, when set:
	// OSEnv's makes the process non-dumpable (see shield), for good, so
	// only the real binary sets it, never a test that runs hoist
	// in-process.
	Shield func() error
}

// OSEnv returns the real environment.
func OSEnv() Env {
	wd, _ := os.Getwd()
	return Env{Lookup: os.LookupEnv, WorkDir: wd, TempDir: os.TempDir(), Environ: os.Environ(), Stdout: os.Stdout, Stderr: os.Stderr, Shield: shield}
}

// Main runs hoist with args (without the program name) and returns the
// exit code.
func Main(ctx context.Context, args []string, env Env) int {
	root := newRoot(ctx, env)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	code := exitCode(ctx, err)
	if !errors.Is(err, errReported) {
		fmt.Fprintf(env.Stderr, "hoist: %s\n", indentJoined(err))
	}
	return code
}

// errReported marks an error whose details were already printed.
var errReported = errors.New("reported")

func exitCode(ctx context.Context, err error) int {
	var gate *scan.GateError
	var se *stepExit
	switch {
	case errors.As(err, &se) && se.code > 0:
		return se.code
	case errors.As(err, &gate):
		return gate.Code
	case errors.Is(err, step.ErrUnscanned), errors.Is(err, scan.ErrDBDigest):
		return ExitScan
	case errors.Is(err, scan.ErrScanner):
		return ExitScanner
	case errors.Is(err, sign.ErrUnverified):
		return ExitUnverified
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return ExitCancelled
	case errors.Is(err, settings.ErrInvalid), errors.Is(err, registry.ErrReference), errors.Is(err, registry.ErrCredentials), errors.Is(err, errUsage), errors.Is(err, build.ErrInput), errors.Is(err, kinds.ErrConfig), errors.Is(err, sign.ErrKey), errors.Is(err, files.ErrLinkOut):
		return ExitSettings
	case errors.Is(err, build.ErrBuild):
		return ExitBuild
	case errors.Is(err, build.ErrNoExecutor):
		return ExitEngine
	case errors.Is(err, engine.ErrEngine):
		return ExitEngine
	case errors.Is(err, source.ErrNotFound), errors.Is(err, source.ErrBadInput), errors.Is(err, source.ErrUnavailable), errors.Is(err, source.ErrTruncated), errors.Is(err, source.ErrDigestMismatch), errors.Is(err, sign.ErrImage), errors.Is(err, sign.ErrUnavailable):
		return ExitSource
	case errors.Is(err, publish.ErrPush), errors.Is(err, kinds.ErrLogin), errors.Is(err, sign.ErrSign):
		return ExitPush
	}
	return ExitFailure
}

var errUsage = errors.New("usage")

// indentJoined prints joined errors one per line.
func indentJoined(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "\n  ")
}

func newRoot(ctx context.Context, env Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "hoist",
		Short: "Build container images once, scan them, push the same bytes anywhere",
		Long: `hoist builds a container image once (BuildKit or Kaniko), keeps it as a
tarball, in the Docker daemon or in the workspace image store, and pushes
the same bytes to one or many registries at once (Docker registries, ECR,
GAR, GCR, ACR). It also pushes pre-built images: a tarball, an OCI layout,
an image in the daemon or in a registry.

Run with no arguments it is a CI plugin: every setting comes from PLUGIN_*
variables, as in a Drone, Harness or Woodpecker plugin step. Every setting
is also a flag; a flag wins over the environment. See docs/settings.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlugin(ctx, cmd, env)
		},
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	settings.AddFlags(root.PersistentFlags())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w: %w", errUsage, err)
	})

	push := &cobra.Command{
		Use:   "push",
		Short: "Push a pre-built image to every destination (push-only mode)",
		Example: `  hoist push --source-tar-path image.tar --repo registry.example.com/app --tags 1.2.3,latest
  hoist push --source-image app:dev --destination reg-a.example.com/app:1 --destination reg-b.example.com/app:1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := load(cmd, env)
			if err != nil {
				return err
			}
			s.PushOnly = true
			return runStep(ctx, s, env, false)
		},
	}
	buildCmd := &cobra.Command{
		Use:   "build",
		Short: "Build (BuildKit or Kaniko), then push to every destination (or, with --no-push, keep it)",
		Example: `  hoist build --context . --repo registry.example.com/app --tags 1.2.3
  hoist build --no-push --tar-path image.tar --repo app --tags dev`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := load(cmd, env)
			if err != nil {
				return err
			}
			if s.PushOnly && !s.NoPush {
				return fmt.Errorf("%w: hoist build does not take --push-only; use hoist push", errUsage)
			}
			return runStep(ctx, s, env, false)
		},
	}
	scanCmd := &cobra.Command{
		Use:   "scan IMAGE",
		Short: "Scan an image with Trivy, as push-only would push it, and record the verdict under its digest",
		Long: `hoist scan runs Trivy on IMAGE: a docker-archive or OCI archive (plain or
compressed), an OCI layout directory, or a reference looked up in the
workspace image store, the Docker daemon, then its registry, exactly as
push-only finds it. It prints Trivy's report, writes the reports asked for,
and records the verdict in --scan-records under the manifest digest that a
push of the same image pushes. The flags keep Trivy's names and meanings.`,
		Example: `  hoist scan image.tar
  hoist scan --severity HIGH,CRITICAL --format table,json,sarif --output ,report.json,report.sarif image.tar
  hoist scan --db-repository registry.internal/aquasecurity/trivy-db:2 registry.internal/team/app:1.2.3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := load(cmd, env)
			if err != nil {
				return err
			}
			s.SourceTarPath, s.SourceImage = "", args[0]
			if p := args[0]; !filepath.IsAbs(p) {
				p = filepath.Join(env.WorkDir, p)
				if _, err := os.Stat(p); err == nil {
					s.SourceTarPath, s.SourceImage = p, ""
				}
			} else {
				s.SourceTarPath, s.SourceImage = p, ""
			}
			return runScan(ctx, s, env)
		},
	}
	var verifyTrust step.Trust
	var verifyRequire []string
	verifyCmd := &cobra.Command{
		Use:   "verify IMAGE",
		Short: "Verify an image's cosign signature and its SBOM, provenance and scan attestations in its registry (a deploy gate)",
		Long: `hoist verify checks, in IMAGE's registry, that the image's digest carries a
cosign signature that verifies with --key (or, keyless, a certificate for
--certificate-identity and --certificate-oidc-issuer chaining to
--ca-roots), and each attestation --require
names: sbom (a signed CycloneDX SBOM), provenance (a signed SLSA provenance
v1 statement), scan (a signed provenance naming a passing scan record, none naming a failing one).
Offline: with --key the transparency log is not consulted (as cosign verify
--key --insecure-ignore-tlog); keyless, the log's signed timestamps are
checked with --rekor-key or --trusted-root, and the log is never asked. The registry settings (logins, docker config,
certificates, --insecure) apply as for a push. Exit 0: verified; 9: a
signature or a required attestation does not verify; 3: the image cannot be
read (not found, or its registry unavailable: nothing was verified); 2: bad
usage or key.`,
		Example: `  hoist verify --key cosign.pub registry.example.com/app:1.2.3
  hoist verify --key cosign.pub --require sbom,provenance,scan registry.example.com/app@sha256:...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := load(cmd, env)
			if err != nil {
				return err
			}
			st, err := step.VerifyFromSettings(s, stepEnviron(env, false), args[0], verifyTrust, verifyRequire)
			return runPlanned(ctx, st, err, env)
		},
	}
	verifyCmd.Flags().StringVar(&verifyTrust.Key, "key", "", "the cosign public key (cosign.pub), as a file path or PEM content")
	trustFlags(verifyCmd, &verifyTrust, "")
	verifyCmd.Flags().StringSliceVar(&verifyRequire, "require", nil, "attestations that must verify: sbom, provenance, scan (comma separated)")
	var promoteTrust step.Trust
	var promoteRequire []string
	promoteCmd := &cobra.Command{
		Use:   "promote SOURCE [DEST...]",
		Short: "Copy a digest, with its signatures, attestations and referrers, from its registry to other registries, after checking a policy on it",
		Long: `hoist promote copies the image SOURCE names in its registry (a tag is
resolved once and the digest printed) to every DEST (repo:tag; or the
destinations --repo, --tags and --destination give), registry to registry:
the image, then everything that hangs off its digest (cosign's signatures,
attestations and SBOM attachments, the OCI referrers, and those of each
manifest of an index), then the tags. Nothing is re-signed: the digest is
the same, so cosign verify passes on every destination. With --key, the
source's signature must verify (keyless: --certificate-identity,
--certificate-oidc-issuer and --ca-roots, with --rekor-key to check the
log's timestamps), and each attestation --require names (sbom,
provenance, scan), before any byte moves. It is a push-only step
with PLUGIN_PROMOTE=true. Exit 0: promoted everywhere; 9: the policy is not
met (nothing was written); 3: the source cannot be read; 4: a destination
failed (it got no tag); 2: bad usage or key.`,
		Example: `  hoist promote --key cosign.pub --require signature,sbom,provenance,scan \
    staging.example.com/app:rc-42 prod-eu.example.com/app:1.4.0 prod-us.example.com/app:1.4.0`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := load(cmd, env)
			if err != nil {
				return err
			}
			s.PushOnly, s.Promote, s.SourceTarPath, s.SourceImage = true, true, "", args[0]
			s.Destinations = append(s.Destinations, args[1:]...)
			var flags = []struct {
				flag string
				to   *string
				v    string
			}{{"key", &s.PromoteKey, promoteTrust.Key}, {"certificate-identity", &s.PromoteIdentity, promoteTrust.Identity},
				{"certificate-oidc-issuer", &s.PromoteIssuer, promoteTrust.Issuer}, {"ca-roots", &s.PromoteCARoots, promoteTrust.CARoots},
				{"rekor-key", &s.PromoteRekorKey, promoteTrust.RekorKey}, {"trusted-root", &s.PromoteTrustedRoot, promoteTrust.TrustedRoot}}
			for _, f := range flags {
				if cmd.Flags().Changed(f.flag) {
					*f.to = f.v
				}
			}
			if cmd.Flags().Changed("require") {
				s.PromoteRequire = promoteRequire
			}
			return runStep(ctx, s, env, false)
		},
	}
	promoteCmd.Flags().StringVar(&promoteTrust.Key, "key", "", "the cosign public key (cosign.pub) the source's signature must verify with, as a file path or PEM content (--promote-key)")
	trustFlags(promoteCmd, &promoteTrust, "promote-")
	promoteCmd.Flags().StringSliceVar(&promoteRequire, "require", nil, "what must verify on the source: signature, sbom, provenance, scan (comma separated; --promote-require)")
	engineCmd := &cobra.Command{Use: "engine", Short: "Manage the embedded BuildKit engine (start keeps it running for later builds)"}
	engineCmd.AddCommand(
		&cobra.Command{Use: "start", Short: "Start the embedded engine and leave it running", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return runEngine(ctx, cmd, env, "start") }},
		&cobra.Command{Use: "stop", Short: "Stop the embedded engine", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return runEngine(ctx, cmd, env, "stop") }},
		&cobra.Command{Use: "status", Short: "Say whether the embedded engine runs", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return runEngine(ctx, cmd, env, "status") }},
	)
	var markdown bool
	settingsCmd := &cobra.Command{
		Use:   "settings",
		Short: "List every setting with its flag and environment names",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if markdown {
				fmt.Fprint(env.Stdout, settings.Markdown())
				return nil
			}
			for _, f := range settings.Fields() {
				fmt.Fprintf(env.Stdout, "--%-22s %-45s %s\n", f.Flag, strings.Join(f.Env, ","), f.Doc)
			}
			return nil
		},
	}
	settingsCmd.Flags().BoolVar(&markdown, "markdown", false, "print docs/settings.md")
	version := &cobra.Command{
		Use:   "version",
		Short: "Print hoist's version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintln(env.Stdout, "hoist", Version)
		},
	}
	root.AddCommand(push, buildCmd, scanCmd, verifyCmd, promoteCmd, pipelineCommand(ctx, env), engineCmd, settingsCmd, version)
	return root
}

func load(cmd *cobra.Command, env Env) (*settings.Settings, error) {
	return settings.Load(cmd.Flags(), env.Lookup, env.WorkDir)
}

// runPlugin is the plugin entry point: the mode comes from the settings.
func runPlugin(ctx context.Context, cmd *cobra.Command, env Env) error {
	s, err := load(cmd, env)
	if err != nil {
		return err
	}
	return runStep(ctx, s, env, true)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// runEngine starts, stops or reports the embedded engine.
func runEngine(ctx context.Context, cmd *cobra.Command, env Env, action string) error {
	s, err := load(cmd, env)
	if err != nil {
		return err
	}
	dir := s.EngineDir
	if dir == "" {
		dir = engine.DefaultDir(env.Lookup)
	}
	switch action {
	case "start":
		bin := s.Buildkitd
		if strings.ContainsRune(bin, filepath.Separator) {
			bin = abs(env, bin)
		}
		e, err := engine.Open(ctx, engine.Options{Dir: dir, Binary: bin, Env: env.Environ, Mirrors: s.RegistryMirrors, Keep: true, Network: s.Network,
			Logf: func(f string, a ...any) { fmt.Fprintf(env.Stderr, f+"\n", a...) }})
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, e.Addr)
		return e.Close()
	case "stop":
		if err := engine.Stop(dir); err != nil {
			return fmt.Errorf("%w: %w", engine.ErrEngine, err)
		}
		fmt.Fprintln(env.Stderr, "engine stopped")
		return nil
	}
	pid, err := engine.Status(ctx, dir)
	if err != nil {
		fmt.Fprintf(env.Stdout, "stopped (%s)\n", dir)
		return fmt.Errorf("%w: %w", errReported, engine.ErrEngine)
	}
	fmt.Fprintf(env.Stdout, "running, pid %d, %s\n", pid, engine.Socket(dir))
	return nil
}

// trustFlags are the keyless flags of hoist verify and hoist promote,
// cosign verify's names: the identity, its issuer, the CA roots and the
// log's key. prefix names the settings they stand for (promote's), if any.
func trustFlags(cmd *cobra.Command, t *step.Trust, prefix string) {
	also := func(flag string) string {
		if prefix == "" {
			return ""
		}
		return " (--" + prefix + flag + ")"
	}
	cmd.Flags().StringVar(&t.Identity, "certificate-identity", "", "keyless: the identity the signer's certificate must name, exactly (an email or URI)"+also("certificate-identity"))
	cmd.Flags().StringVar(&t.Issuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer its certificate must name, exactly"+also("certificate-oidc-issuer"))
	cmd.Flags().StringVar(&t.CARoots, "ca-roots", "", "keyless: the CA's root certificate, then intermediates (PEM file or content; Fulcio's root)"+also("ca-roots"))
	cmd.Flags().StringVar(&t.TrustedRoot, "trusted-root", "", "keyless, in place of --ca-roots and --rekor-key: a Sigstore trusted_root.json (its CAs, transparency logs and CT logs)"+also("trusted-root"))
	cmd.Flags().StringVar(&t.RekorKey, "rekor-key", "", "keyless: the transparency log's public key (PEM file or content): each signature's log timestamp is then checked, offline"+also("rekor-key"))
}
