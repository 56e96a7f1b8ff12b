package step

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/runid"
	"github.com/hoist-build/hoist/internal/scan"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/sign"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// handStep is what every hand-built step shares: its directories, the
// push's limits, the progress, the run.
func handStep(t *testing.T, mode Mode, ws string, dests ...string) Step {
	t.Helper()
	st := Step{Mode: mode, TempDir: t.TempDir(), Workspace: files.Workspace(ws), Push: Push{Jobs: 4},
		Progress: progress.Plain, Version: "test", Run: runid.Run{ID: "hand-built-run", Name: "the hand-built steps' run"}}
	for _, d := range dests {
		tag, err := name.NewTag(d)
		if err != nil {
			t.Fatal(err)
		}
		st.Destinations = append(st.Destinations, tag)
	}
	return st
}

// run runs st, failing the test on an error; it returns the result and
// what the step printed.
func run(t *testing.T, st Step, rt Runtime) (*Result, string) {
	t.Helper()
	var log strings.Builder
	rt.Stdout, rt.Stderr = &log, &log
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := Run(ctx, st, rt)
	if err != nil {
		t.Fatalf("%s step: %v\n%s", st.Mode, err, log.String())
	}
	return res, log.String()
}

// Every mode, from a Step written by hand (no settings, no FromSettings),
// against real registries, the shared BuildKit, the Docker daemon, Trivy
// and a cosign key: a build pushed; a build kept (tarball, daemon, image
// store) and nothing pushed; that image pushed from the store, signed; the
// pushed image scanned; its signature verified. Digests are read back from
// the registries.
func TestHandBuiltSteps(t *testing.T) {
	f := harness.Inputs(t)
	engineDir, _ := harness.SharedEngine(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := t.TempDir()
	ctxDir := filepath.Join(ws, "ctx")
	os.MkdirAll(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+f.Base+"\nRUN echo 'built by hand' > /hand.txt\nCMD [\"cat\", \"/hand.txt\"]\n"), 0o644)
	request := func(names ...string) build.Request {
		return build.Request{ContextDir: ctxDir, Dockerfile: filepath.Join(ctxDir, "Dockerfile"), Compression: "gzip", Level: 1, Names: names}
	}

	t.Run("build-and-push", func(t *testing.T) {
		dest := reg.Host + "/hand/built:1"
		st := handStep(t, ModeBuild, ws, dest)
		st.Build = &Build{Tool: "buildkit", Request: request(dest), Engine: engine.Options{Dir: engineDir, Wait: time.Minute}}
		st.Outputs.DigestFile = filepath.Join(ws, "built.digest")
		res, _ := run(t, st, Runtime{})
		got := reg.Digest(t, dest)
		if !res.Pushed || res.Digest != got {
			t.Errorf("pushed %v, digest %s; the registry holds %s", res.Pushed, res.Digest, got)
		}
		if b, _ := os.ReadFile(st.Outputs.DigestFile); strings.TrimSpace(string(b)) != got {
			t.Errorf("digest file %q, the registry holds %s", b, got)
		}
		if out := f.Docker.RunImage(t, dest); out != "built by hand" {
			t.Errorf("the pushed image prints %q", out)
		}
	})

	// The build-only step names its image in the daemon and the store;
	// the push-only step pushes it from the store to dest.
	kept := "hand/kept:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	store := filepath.Join(ws, ".hoist", "images")
	tarPath := filepath.Join(ws, "out", "kept.tar")
	var builtDigest string
	t.Run("build-only", func(t *testing.T) {
		st := handStep(t, ModeBuildOnly, ws, "index.docker.io/"+kept)
		st.Build = &Build{Tool: "buildkit", Request: request(st.Destinations[0].Name()), TarPath: tarPath, TarFormat: "docker", Load: true, Store: store}
		st.UseDaemon, st.DockerHost = true, f.Docker.Host
		eng, err := engine.Open(context.Background(), engine.Options{Dir: engineDir, Wait: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		// The engine is the caller's: a BuildKit build runs on it.
		res, log := run(t, st, Runtime{Engine: eng})
		t.Cleanup(func() { harness.RunErr(f.Docker.Env(), "docker", "rmi", "-f", kept) })
		if res.Pushed || len(res.Destinations) > 0 || res.Digest == "" {
			t.Errorf("a build-only step pushed: %+v", res)
		}
		builtDigest = res.Digest
		for _, want := range []string{"wrote docker tarball " + tarPath, "loaded into", "recorded in the workspace image store " + store} {
			if !strings.Contains(log, want) {
				t.Errorf("the log says nothing of %q:\n%s", want, log)
			}
		}
		if out := strings.TrimSpace(f.Docker.Run(t, "run", "--rm", "--network", "host", kept)); out != "built by hand" {
			t.Errorf("the image loaded into the daemon prints %q", out)
		}
		if out, err := harness.RunErr(nil, "skopeo", "inspect", "--raw", "docker-archive:"+tarPath); err != nil || !strings.Contains(out, "layers") {
			t.Errorf("skopeo reads no image in the tarball: %v\n%s", err, out)
		}
		if out, err := harness.RunErr(nil, "skopeo", "inspect", "--raw", "oci:"+store+":index.docker.io/"+kept); err != nil || mustDigest(out) != builtDigest {
			t.Errorf("the store's entry %s is not %s: %v\n%s", kept, builtDigest, err, out)
		}
	})

	key, pub := keyPairFor(t, "hand-pw")
	pushed := reg.Host + "/hand/pushed:1"
	t.Run("push-only", func(t *testing.T) {
		st := handStep(t, ModePushOnly, ws, pushed)
		st.Source = Source{Image: kept, Store: store}
		st.Sign = &Signing{Key: key, Password: "hand-pw"}
		rt := Runtime{Mask: mask.NewSet("hand-pw")}
		res, _ := run(t, st, rt)
		got := reg.Digest(t, pushed)
		if got != builtDigest || res.Digest != got {
			t.Errorf("the registry holds %s; the build-only step built %s, the push-only step says %s", got, builtDigest, res.Digest)
		}
		if len(res.Signed) != 1 {
			t.Errorf("signed in %v", res.Signed)
		}
		// cosign, not hoist, checks the signature.
		if out, err := reg.Cosign(t, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--output", "text", pushed); err != nil {
			t.Errorf("cosign verify: %v\n%s", err, out)
		}
	})

	t.Run("scan-only", func(t *testing.T) {
		k := harness.Scan(t)
		st := handStep(t, ModeScanOnly, ws)
		st.Source = Source{Image: pushed}
		st.Scan = &scan.Options{Trivy: k.Trivy, CacheDir: t.TempDir(), DBRepositories: []string{k.DBRef}, Timeout: 5 * time.Minute, TempDir: st.TempDir,
			Records: filepath.Join(ws, ".hoist", "scans"), Workspace: st.Workspace, Run: st.Run,
			Policy: scan.Policy{Scanners: []string{"vuln"}, Severities: []string{"CRITICAL", "HIGH"}, ExitCode: 1}}
		res, _ := run(t, st, Runtime{})
		got := reg.Digest(t, pushed)
		if res.Scan == nil || res.Scan.Digest != got || !res.Scan.Passed {
			t.Fatalf("scan of %s: %+v", got, res.Scan)
		}
		if _, err := os.Stat(res.Scan.Path); err != nil {
			t.Errorf("scan record: %v", err)
		}
		if res.Pushed {
			t.Errorf("a scan-only step pushed")
		}
	})

	t.Run("verify", func(t *testing.T) {
		v, err := sign.LoadPublic(pub)
		if err != nil {
			t.Fatal(err)
		}
		st := handStep(t, ModeVerify, ws)
		st.Verify = &VerifyRequest{Image: pushed, Policy: sign.Policy{Key: v}}
		res, out := run(t, st, Runtime{})
		got := reg.Digest(t, pushed)
		if res.Verification == nil || res.Verification.Signatures < 1 || res.Digest != got {
			t.Errorf("verification of %s: %+v, digest %s\n%s", got, res.Verification, res.Digest, out)
		}
		if !strings.Contains(out, "verified "+reg.Host+"/hand/pushed@"+got) {
			t.Errorf("hoist verify printed:\n%s", out)
		}
	})
}

// mustDigest is the digest of a raw manifest, as skopeo inspect --raw
// prints it.
func mustDigest(raw string) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(raw)))
}

// keyPairFor makes a cosign key pair with the pinned cosign CLI.
func keyPairFor(t *testing.T, password string) (key, pub string) {
	t.Helper()
	dir := t.TempDir()
	cosign := harness.Tool(t, "cosign")
	if out, err := harness.RunErr([]string{"COSIGN_PASSWORD=" + password, "HOME=" + dir}, "sh", "-c", "cd "+dir+" && "+cosign+" generate-key-pair"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	return filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
}

// A Step written by hand is checked, never dereferenced blindly: the
// zero Step, and one of each mode without what the mode needs, fail with
// ErrInvalid naming every problem at once; none panics.
func TestHandBuiltStepValidated(t *testing.T) {
	t.Parallel()
	tag, _ := name.NewTag("127.0.0.1:1/app:1")
	for _, c := range []struct {
		name string
		st   Step
		want []string
	}{
		{"zero", Step{}, []string{"Mode 0 is none of", "TempDir is empty"}},
		{"build without Build", Step{Mode: ModeBuild, TempDir: "/tmp"}, []string{"Mode build-and-push needs Build", "Destinations is empty"}},
		{"build-only, relative paths", Step{Mode: ModeBuildOnly, TempDir: "tmp", Build: &Build{Tool: "docker", Request: build.Request{ContextDir: "ctx"}, TarPath: "x.tar", TarFormat: "zip", Load: true}},
			[]string{`Build.Tool "docker"`, `Build.Request.ContextDir "ctx" is not an absolute path`, `Build.TarPath "x.tar"`, `Build.TarFormat "zip"`, "UseDaemon is false", "Build.Load names the image", `TempDir "tmp"`}},
		{"push-only with a build, a scan-only Scan missing", Step{Mode: ModeScanOnly, TempDir: "/tmp", Build: &Build{}}, []string{"takes a pre-built Source", "needs Scan"}},
		{"verify without a key", Step{Mode: ModeVerify, TempDir: "/tmp", Verify: &VerifyRequest{Image: "x"}}, []string{"needs Verify with an Image and a Policy of a Key or an Identity"}},
		{"verify by an identity not read by LoadIdentity", Step{Mode: ModeVerify, TempDir: "/tmp", Verify: &VerifyRequest{Image: "x", Policy: sign.Policy{Identity: &sign.Identity{Subject: "a@b", Issuer: "https://i"}}}},
			[]string{"an Identity from sign.LoadIdentity"}},
		{"a promotion under a hand-built identity", Step{Mode: ModePushOnly, TempDir: "/tmp", Destinations: []name.Tag{tag}, Source: Source{Image: "r.example/a:1"},
			Promote: &PromoteRequest{Source: "r.example/a:1", Policy: &sign.Policy{Identity: &sign.Identity{Subject: "a@b", Issuer: "https://i"}}}},
			[]string{"Promote.Policy needs a Key or an Identity from sign.LoadIdentity"}},
		{"sign on a build-only step, both keys", Step{Mode: ModeBuildOnly, TempDir: "/tmp", Build: &Build{Tool: "buildkit", Request: build.Request{ContextDir: "/ctx"}},
			Sign: &Signing{Key: "k", Keyless: &sign.Keyless{}}, Attest: Attest{SBOM: true}},
			[]string{"Sign signs what a step pushes", "a Key or Keyless, exactly one", "Attest.SBOM needs Scan"}},
		{"a build in the daemon with a store, an OCI tarball, two platforms, a relative engine",
			Step{Mode: ModeBuildOnly, TempDir: "/tmp", UseDaemon: true, Destinations: []name.Tag{tag}, Build: &Build{Tool: "buildkit", InDaemon: true, Store: "/s", TarPath: "/x.tar", TarFormat: "oci",
				Request: build.Request{ContextDir: "/ctx", Platforms: []string{"linux/amd64", "linux/arm64"}}, Engine: engine.Options{Dir: "engine"}}},
			[]string{"Build.Store needs an image layout", `Build.TarFormat is "oci"`, "Build.Request.Platforms has 2", `Build.Engine.Dir "engine" is not an absolute path`}},
		{"require-scan on a build", Step{Mode: ModeBuild, TempDir: "/tmp", Destinations: []name.Tag{tag}, Build: &Build{Tool: "buildkit", Request: build.Request{ContextDir: "/ctx"}}, RequireScan: "/r"},
			[]string{"RequireScan checks the record of a pre-built image"}},
	} {
		err := c.st.Validate()
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v\nsays nothing of %q", c.name, err, w)
			}
		}
		res, rerr := Run(context.Background(), c.st, Runtime{})
		if rerr == nil || rerr.Error() != err.Error() || res == nil {
			t.Errorf("%s: Run gave %v, want Validate's error", c.name, rerr)
		}
	}
	// A hand-built push-only step with a zero Login runs (no nil
	// pointer): its source is missing, which the source says.
	st := Step{Mode: ModePushOnly, TempDir: t.TempDir(), Destinations: []name.Tag{tag}, Source: Source{TarPath: filepath.Join(t.TempDir(), "missing.tar")}}
	if _, err := Run(context.Background(), st, Runtime{}); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("push-only of a missing tarball: %v", err)
	}
}

// The steps FromSettings makes are valid, in every mode.
func TestFromSettingsValid(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		{"PLUGIN_REPO": "reg.example.com/app"},
		{"PLUGIN_REPO": "app", "PLUGIN_NO_PUSH": "true", "PLUGIN_TAR_PATH": "out/image.tar"},
		{"PLUGIN_NO_PUSH": "true"},
		{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REPO": "reg.example.com/app", "PLUGIN_SOURCE_TAR_PATH": "image.tar"},
		{"PLUGIN_REPO": "app", "PLUGIN_BUILDER_DRIVER": "docker"},
	} {
		st, err := plan(t, env)
		if err != nil {
			t.Errorf("%v: %v", env, err)
			continue
		}
		if err := st.Validate(); err != nil {
			t.Errorf("%v: the step FromSettings made (%s) is not valid: %v", env, st.Mode, err)
		}
	}
	env := map[string]string{"PLUGIN_SOURCE_TAR_PATH": "image.tar", "PLUGIN_SCAN_TRIVY": "/bin/true", "PLUGIN_SIGN": "true", "PLUGIN_SBOM": "true", "PLUGIN_SIGN_KEY": "missing.key"}
	s, err := settings.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "/work")
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if _, err := ScanFromSettings(s, Environ{Lookup: lookup, WorkDir: "/work", TempDir: "/tmp"}); !errors.Is(err, sign.ErrKey) {
		t.Errorf("hoist scan with a signing key that is missing: %v, want it checked (sign.ErrKey)", err)
	}
	delete(env, "PLUGIN_SIGN_KEY")
	env["PLUGIN_SIGN_KEY"] = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
	if s, err = settings.Load(nil, lookup, "/work"); err != nil {
		t.Fatal(err)
	}
	st, err := ScanFromSettings(s, Environ{Lookup: lookup, WorkDir: "/work", TempDir: "/tmp"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Validate(); err != nil || st.Mode != ModeScanOnly || st.Sign != nil {
		t.Errorf("hoist scan: mode %s, sign %v, valid: %v", st.Mode, st.Sign, err)
	}
}

// A hand-built step that names no engine builds on the caller's, but
// what it asks of the engine is checked as for an engine it names: a
// Docker Hub mirror the running engine was started without is an error
// that says so, before anything is built (not a build without it).
func TestCallersEngineIsCheckedForTheStep(t *testing.T) {
	f := harness.Inputs(t)
	engineDir, _ := harness.SharedEngine(t)
	ws := t.TempDir()
	ctxDir := filepath.Join(ws, "ctx")
	os.MkdirAll(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+f.Base+"\n"), 0o644)
	eng, err := engine.Open(context.Background(), engine.Options{Dir: engineDir, Wait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	st := handStep(t, ModeBuildOnly, ws, "index.docker.io/hand/mirror:1")
	st.Build = &Build{Tool: "buildkit", Request: build.Request{ContextDir: ctxDir, Dockerfile: filepath.Join(ctxDir, "Dockerfile")},
		TarPath: filepath.Join(ws, "out.tar"), TarFormat: "docker", Engine: engine.Options{Mirrors: []string{"mirror.example.com"}}}
	_, err = Run(context.Background(), st, Runtime{Stdout: io.Discard, Stderr: io.Discard, Engine: eng})
	if !errors.Is(err, engine.ErrEngine) || !strings.Contains(err.Error(), "Docker Hub mirror mirror.example.com") || !strings.Contains(err.Error(), engineDir) {
		t.Fatalf("a mirror the caller's engine lacks: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ws, "out.tar")); !os.IsNotExist(err) {
		t.Errorf("the step wrote its tarball: %v", err)
	}
}
