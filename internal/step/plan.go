package step

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/kinds"
	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/runid"
	"github.com/hoist-build/hoist/internal/scan"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/sign"
)

// ErrSkip ends a step successfully, as the peers do: one that auto-tag
// skips (neither a tag nor the default branch), from FromSettings; one
// whose every destination holds its tag already (Push.SkipExisting), from
// Run.
var ErrSkip = errors.New("skipped")

// Environ is what the command layer knows of the process: FromSettings
// reads it, Run never does.
type Environ struct {
	Lookup  func(string) (string, bool)
	WorkDir string
	TempDir string
	// Environ is the process environment, for the Kaniko executor.
	Environ []string
	// Shield is called before the Kaniko executor starts (build.Kaniko's
	// Shield): the command layer's hook, nil when hoist runs in-process.
	Shield func() error
	// Terminal is set when stderr is a terminal.
	Terminal bool
	// Plugin is set when the settings come from a CI step's environment
	// (no command line): the peers' defaults apply.
	Plugin bool
	// ScanOnly plans hoist scan: a source, no destination.
	ScanOnly bool
	// Version is hoist's version, written into scan records and the
	// provenance ("dev" when empty).
	Version string
	// Secrets are secrets the caller knows of and the settings do not
	// say are (a pipeline's <+secrets.getValue(...)> values): the step's
	// mask starts with them, and the provenance records none of them.
	Secrets *mask.Set
}

// FromSettings turns settings into a step: the mode, the registry kind and
// the destinations, the credentials, the build, the outputs. This is where
// the plugin's rules live: the peers' modes, defaults and quirks. Every
// path is resolved against the working directory. Push-only is
// s.PushOnly; a build otherwise.
//
// Each concern is read by a function of its own that returns its value
// and its problems; they are composed here, and nowhere else is a value
// of the step changed once it is made. The Step returned with an error
// holds the secrets known so far (Secrets), to mask the error with.
func FromSettings(s *settings.Settings, env Environ) (Step, error) {
	var st Step
	path := resolver(env.WorkDir)
	// Every secret is known before anything is planned: every byte the
	// step writes, its errors included, is masked with them, and the
	// provenance records none of them (the step adds the tokens its
	// logins obtain, and the build secrets once read).
	st.Secrets = secretsOf(s, env, path)
	mode, err := modeOf(s, env)
	if err != nil {
		return st, err
	}
	// A migrating step's variables are honoured, refused or named: never
	// silently ignored.
	if st.Notes, err = unrecognized(env); err != nil {
		return st, err
	}
	if o := s.Origin("build-output"); o != "" && s.Origin("no-push") == o && (s.Repo != "" || len(s.Destinations) > 0) {
		// buildx pushes only with type=registry (or push=true): the
		// repository named beside such an output gets nothing.
		st.Notes = append(st.Notes, fmt.Sprintf("%s=%q pushes nothing, as buildx's --output does; the repository set beside it gets no image", o, s.Output))
	}
	if err := kanikoSecretFlags(s); err != nil {
		return st, err
	}
	if err := kanikoTrust(s); err != nil {
		return st, err
	}
	if st.Progress, err = progress.ParseMode(s.Progress, env.Terminal); err != nil {
		return st, fmt.Errorf("%w: %s: %w", settings.ErrInvalid, s.Origin("progress"), err)
	}
	if st.Push, err = pushOf(s); err != nil {
		return st, err
	}
	tgt, err := targetOf(s, env, mode, path)
	if err != nil {
		return st, err
	}
	st.Mode, st.Destinations = mode, tgt.dests
	st.Notes = append(st.Notes, tgt.note)
	if tgt.tagNote != "" {
		st.Notes = append(st.Notes, tgt.tagNote)
	}
	if st.Login, err = loginOf(s, env, tgt); err != nil {
		return st, err
	}
	st.Debug, st.Version = s.Debug, versionOf(env)
	st.Notes = append(st.Notes, debugNotes(s)...)
	if st.Transport, err = transportOf(s, env); err != nil {
		return st, err
	}
	st.GzipLevel = s.CompressionLevel
	st.KeepUncompressed = s.Compression == "uncompressed"
	st.CompressCache = path(s.CompressCache)
	st.Run = runid.New(runid.Config{Lookup: env.Lookup, RunID: s.RunID, Commit: commitOf(s, env), Dir: env.WorkDir})
	st.Insecure = s.Insecure
	st.TempDir = env.TempDir
	st.Workspace = files.Workspace(env.WorkDir)
	// PLUGIN_DAEMON_OFF says "do not start a daemon" to the peers; hoist
	// never starts one, and opens DOCKER_HOST only when the step needs it.
	st.UseDaemon, st.DockerHost = true, s.DockerHost
	if st.Outputs, err = outputsOf(s, st.Workspace, tgt.kindName, path); err != nil {
		return st, err
	}
	if !env.Plugin && st.Outputs.CardPath == "/dev/stdout" {
		// A CLI's stdout carries its result (the digest) only, for
		// d=$(hoist push ...) in a step of a runner that sets
		// DRONE_CARD_PATH=/dev/stdout for every step: the card goes to
		// the log by stderr, which the runner reads as well.
		st.Outputs.CardPath = "/dev/stderr"
	}
	var logins []registry.Login
	var secrets []string
	if st.Scan, logins, secrets, err = gateOf(s, env, mode, st.Run, path); err != nil {
		return st, err
	}
	st.Secrets.Add(secrets...)
	st.Login.Static.Extra = append(logins, st.Login.Static.Extra...)
	var signNotes []string
	if st.Sign, signNotes, err = signingOf(s, mode, path); err != nil {
		return st, err
	}
	st.Notes = append(st.Notes, signNotes...)
	if st.Attest, err = attestOf(s, env, st.Sign != nil, st.Scan != nil, path); err != nil {
		return st, err
	}
	if st.RequireScan, err = requireScanOf(s, path); err != nil {
		return st, err
	}
	if s.PushOnly {
		st.Source = sourceOf(s, tgt, path)
	}
	if st.Promote, err = promoteOf(s, &st, path); err != nil || s.PushOnly {
		return st, err
	}
	if st.Build, err = buildOf(s, env, st.Destinations, st.Secrets, path); err != nil {
		return st, err
	}
	if st.Attest.Provenance != nil {
		st.Attest.Provenance.Build = provenanceBuild(s, env, st.Build, st.Secrets)
	}
	return st, nil
}

// resolver resolves a path setting against the working directory.
func resolver(workDir string) func(string) string {
	return func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(workDir, p)
	}
}

// Limits of the files settings name, which the repository can plant.
const (
	// maxSecretFile is BuildKit's own limit of a build secret
	// (secretsprovider.MaxSecretSize).
	maxSecretFile = 500 << 10
	// maxConfigFile bounds a buildkitd.toml or a scan ignore file.
	maxConfigFile = 1 << 20
)

// readInput reads the file p a setting names (relative to the working
// directory): a regular file of at most max bytes, reached through no
// symbolic link that leads out of the working directory, as every file
// the repository can plant is read.
func readInput(path func(string) string, p string, max int64) ([]byte, error) {
	return files.Workspace(path(".")).ReadRegular(path(p), max)
}

// modeOf is the step's mode: hoist scan (env.ScanOnly), push-only, a
// build that pushes, or one that does not (PLUGIN_NO_PUSH).
func modeOf(s *settings.Settings, env Environ) (Mode, error) {
	if err := checkModes(s); err != nil {
		return 0, err
	}
	switch {
	case env.ScanOnly:
		return ModeScanOnly, nil
	case s.PushOnly:
		return ModePushOnly, nil
	case s.NoPush:
		return ModeBuildOnly, nil
	}
	return ModeBuild, nil
}

// unrecognized are the warnings for the peers' variables hoist does not
// act on; an error for those it refuses.
func unrecognized(env Environ) ([]string, error) {
	unknown, err := settings.Unrecognized(env.Environ)
	if err != nil {
		return nil, err
	}
	var notes []string
	for _, n := range unknown {
		notes = append(notes, "warning: "+n)
	}
	return notes, nil
}

// pushOf is the limits of the push.
func pushOf(s *settings.Settings) (Push, error) {
	if s.Jobs < 1 || s.PushRetry < 0 || s.MaxParallel < 0 {
		return Push{}, fmt.Errorf("%w: --jobs must be at least 1, --push-retry and --max-parallel at least 0", settings.ErrInvalid)
	}
	return Push{Jobs: s.Jobs, MaxParallel: s.MaxParallel, Retries: s.PushRetry, FailFast: s.FailFast, SkipExisting: s.SkipPushIfTagExists}, nil
}

// target is where a step's image goes: the registry kind (and why), the
// kinds' settings, the kind's repository and the destinations.
type target struct {
	kind     kinds.Kind
	kindName string
	note     string
	kcfg     kinds.Config
	repo     string
	dests    []name.Tag
	// tagNote says how auto-tag met the user's tags ("" for nothing).
	tagNote string
}

// targetOf reads the tags (a build's auto-tag and expand-tag), the
// registry kind and the destinations.
func targetOf(s *settings.Settings, env Environ, mode Mode, path func(string) string) (target, error) {
	var t target
	tagList := s.Tags
	if mode.Builds() {
		var err error
		if tagList, t.tagNote, err = buildTags(s); err != nil {
			return t, err
		}
	}
	kind, kindName, why, err := kindOf(s)
	if err != nil {
		return t, err
	}
	t.kind, t.kindName, t.note = kind, kindName, fmt.Sprintf("registry kind: %s (%s)", kindName, why)
	t.kcfg = kindsConfig(s, kindName, path)
	t.kcfg.Env = kinds.EnvOf(env.Lookup)
	if t.repo, err = kinds.Repository(kind, &t.kcfg); err != nil {
		return t, err
	}
	if mode.Pushes() || s.Repo != "" || len(s.Destinations) > 0 {
		if t.dests, err = registry.Destinations(t.repo, tagList, s.Destinations, s.Insecure); err != nil {
			return t, err
		}
	}
	return t, nil
}

// loginOf is how the step obtains credentials: the settings' logins (the
// default one for the first destination's registry), PLUGIN_LOGINS's, the
// docker config, the kind's.
func loginOf(s *settings.Settings, env Environ, t target) (Login, error) {
	defaultFor := name.DefaultRegistry
	if len(t.dests) > 0 {
		defaultFor = t.dests[0].Context().RegistryStr()
	}
	logins, err := kinds.ParseLogins(s.Logins)
	if err != nil {
		return Login{}, err
	}
	kcfg := t.kcfg
	kcfg.ECRLogins = logins.ECR
	user, password := s.Username, s.Password
	if _, docker := t.kind.(kinds.Docker); docker && user == "" && password == "" && s.AccessToken != "" {
		// plugins/docker's ACCESS_TOKEN: docker login -u oauth2accesstoken.
		user, password = "oauth2accesstoken", s.AccessToken
	}
	return Login{
		Static: registry.Credentials{
			Registry: s.Registry, Username: user, Password: password, DefaultFor: defaultFor,
			Extra:  append(logins.Static, registry.Login{Registry: s.BaseRegistry, Username: s.BaseUsername, Password: s.BasePassword, Setting: "PLUGIN_BASE_IMAGE_REGISTRY/USERNAME/PASSWORD"}),
			Config: s.Config, Lookup: env.Lookup,
		},
		Kind: t.kind, Kinds: kcfg, Partial: s.PartialLogin,
	}, nil
}

// versionOf is hoist's version ("dev" when the caller gives none).
func versionOf(env Environ) string {
	if env.Version == "" {
		return "dev"
	}
	return env.Version
}

// debugNotes print every setting, masked, with --debug.
func debugNotes(s *settings.Settings) []string {
	if !s.Debug {
		return nil
	}
	var notes []string
	for _, kv := range s.Masked() {
		notes = append(notes, fmt.Sprintf("setting %s=%s (%s)", kv[0], kv[1], s.Origin(kv[0])))
	}
	return notes
}

// transportOf is registry access: certificates, timeouts, plain HTTP,
// the step's proxies, the routes to loopback stand-ins.
func transportOf(s *settings.Settings, env Environ) (registry.TransportOptions, error) {
	o := registry.TransportOptions{CACert: s.RegistryCertificate, SkipVerify: s.SkipTLSVerify, Timeout: s.RegistryTimeout, Insecure: s.Insecure,
		Proxy: registry.ProxyFrom(env.Lookup)}
	if len(s.RegistryRoutes) > 0 {
		o.Routes = map[string]string{}
		for _, r := range s.RegistryRoutes {
			host, addr, ok := strings.Cut(r, "=")
			if !ok || host == "" || addr == "" {
				return o, fmt.Errorf("%w: %s: %q is not HOST=127.0.0.1:PORT", settings.ErrInvalid, s.Origin("registry-routes"), r)
			}
			if host == "docker.io" {
				host = name.DefaultRegistry
			}
			o.Routes[host] = addr
		}
	}
	return o, nil
}

// outputsOf is the files a CI system reads after the step. Every output
// path is checked before anything is built or pushed: a push never
// succeeds only for the step to fail on an output. In the workspace, a
// symbolic link that leads out of it is refused (the repository, an
// earlier step or a restored cache may have put it there): hoist writes
// nothing through it. So are the scan records a scanning step writes (the
// image store is made before the build, the compression cache when a
// layer is compressed: both before anything is pushed).
func outputsOf(s *settings.Settings, ws files.Workspace, kindName string, path func(string) string) (Outputs, error) {
	for _, o := range [][2]string{{"digest-file", s.DigestFile}, {"output-file", s.OutputFile}, {"artifact-file", s.ArtifactFile},
		{"metadata-file", s.MetadataFile}, {"tar-path", s.TarPath}, {"card-path", s.CardPath}} {
		if o[1] == "" || o[0] == "card-path" && (o[1] == "/dev/stdout" || o[1] == "/dev/stderr") {
			continue
		}
		if _, _, err := ws.Target(path(o[1])); err != nil {
			return Outputs{}, fmt.Errorf("%w: %s: %w", settings.ErrInvalid, s.Origin(o[0]), err)
		}
	}
	if s.Scan && s.ScanRecords != "" {
		if err := ws.Check(path(s.ScanRecords)); err != nil {
			return Outputs{}, fmt.Errorf("%w: %s: %w", settings.ErrInvalid, s.Origin("scan-records"), err)
		}
	}
	return Outputs{DigestFile: path(s.DigestFile), EnvFile: path(s.OutputFile), ArtifactFile: path(s.ArtifactFile), MetadataFile: path(s.MetadataFile),
		TarPath: s.TarPath, ArtifactType: kinds.ArtifactType(kindName), Registry: s.Registry, CardPath: path(s.CardPath)}, nil
}

// gateOf is the scan gate of a step that scans (PLUGIN_SCAN), and
// Trivy's own login for its database repositories (logins behind the
// settings' own, and the secrets to mask).
func gateOf(s *settings.Settings, env Environ, mode Mode, run runid.Run, path func(string) string) (*scan.Options, []registry.Login, []string, error) {
	if !s.Scan {
		return nil, nil, nil, nil
	}
	if !mode.Pushes() && mode != ModeScanOnly {
		return nil, nil, nil, fmt.Errorf("%w: %s gates a push, and this step pushes nothing (%s): scan its tarball or image with hoist scan (or the scan step), or set PLUGIN_SCAN on the push-only step", settings.ErrInvalid, s.Origin("scan"), s.Origin("no-push"))
	}
	o, err := scanOf(s, env, path)
	if err != nil {
		return nil, nil, nil, err
	}
	o.Run = run
	logins, secrets := trivyLogins(o.DBRepositories, env.Lookup)
	return o, logins, secrets, nil
}

// signAsked says whether the settings ask for signing, and where: PLUGIN_SIGN,
// or, with PLUGIN_SIGN unset, a cosign key (plugins/docker signs whenever
// PLUGIN_COSIGN_PRIVATE_KEY is set; it has no PLUGIN_SIGN).
func signAsked(s *settings.Settings) (bool, string) {
	if !s.IsSet("sign") && s.SignKey != "" {
		return true, s.Origin("sign-key") + " (without PLUGIN_SIGN)"
	}
	return s.Sign, s.Origin("sign")
}

// signingOf is how a signing step signs (PLUGIN_SIGN, or a key alone):
// with a cosign key (checked here, read again when the step runs) or
// keyless. notes say why a key given signs nothing.
func signingOf(s *settings.Settings, mode Mode, path func(string) string) (*Signing, []string, error) {
	asked, origin := signAsked(s)
	implied := asked && !s.IsSet("sign")
	var notes []string
	switch {
	case !asked && s.SignKey != "":
		notes = append(notes, fmt.Sprintf("%s is set and %s=false: nothing is signed", s.Origin("sign-key"), s.Origin("sign")))
	case implied && mode == ModeScanOnly:
		// hoist scan signs nothing; a key in its environment is not its.
		return nil, nil, nil
	case implied && !mode.Pushes():
		// plugins/docker signs after a push; with dry_run it pushes,
		// and signs, nothing.
		notes = append(notes, fmt.Sprintf("%s: this step pushes nothing (%s), so nothing is signed", origin, s.Origin("no-push")))
	case asked:
		sg, err := signingWith(s, mode, origin, path)
		return sg, nil, err
	}
	if s.CosignParams != "" {
		notes = append(notes, fmt.Sprintf("%s has no effect: nothing is signed", s.Origin("cosign-params")))
	}
	return nil, notes, nil
}

// signingWith is the signing of a step that asks for it (origin says where).
func signingWith(s *settings.Settings, mode Mode, origin string, path func(string) string) (*Signing, error) {
	if !mode.Pushes() && mode != ModeScanOnly {
		return nil, fmt.Errorf("%w: %s signs what a step pushes, and this step pushes nothing (%s): set PLUGIN_SIGN on the push-only step that pushes this image", settings.ErrInvalid, origin, s.Origin("no-push"))
	}
	params, err := sign.ParseParams(s.CosignParams)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", settings.ErrInvalid, s.Origin("cosign-params"), err)
	}
	switch {
	case s.SignKey != "" && s.SignIdentityToken != "":
		return nil, fmt.Errorf("%w: %s and %s are both set: sign with the key, or keyless with the identity token, not both", settings.ErrInvalid, s.Origin("sign-key"), s.Origin("sign-identity-token"))
	case s.SignKey != "":
		if err := keyParams(s, params); err != nil {
			return nil, err
		}
		key := s.SignKey
		if !strings.Contains(key, "-----BEGIN") {
			key = path(key)
		}
		sg := &Signing{Key: key, Password: s.SignPassword, Annotations: params.Annotations}
		if _, err := sg.signer(); err != nil {
			return nil, err
		}
		return sg, nil
	case s.SignIdentityToken != "":
		upload, rekor, err := keylessLog(s, params)
		if err != nil {
			return nil, err
		}
		k := sign.Keyless{IDToken: s.SignIdentityToken, FulcioURL: s.SignFulcioURL}
		if upload {
			k.RekorURL = rekor
		}
		sg := &Signing{Keyless: &k, Annotations: params.Annotations}
		if _, err := sg.signer(); err != nil {
			return nil, err
		}
		return sg, nil
	}
	return nil, fmt.Errorf("%w: %s needs PLUGIN_SIGN_KEY (or PLUGIN_COSIGN_PRIVATE_KEY): a cosign private key; or, keyless, PLUGIN_SIGN_IDENTITY_TOKEN: the CI's OIDC identity token for Fulcio", settings.ErrInvalid, origin)
}

// keyParams refuses the transparency log flags of PLUGIN_COSIGN_PARAMS a
// key's signature cannot honour: hoist records a key's signature in no
// log (cosign v2, which plugins/docker runs, records it in Rekor unless
// told --tlog-upload=false, which is thus honoured).
func keyParams(s *settings.Settings, p sign.Params) error {
	flag := ""
	switch {
	case p.TlogUpload != nil && !*p.TlogUpload:
		return nil
	case p.RekorURL != "":
		flag = "--rekor-url"
	case p.TlogUpload != nil && *p.TlogUpload:
		flag = "--tlog-upload"
	default:
		return nil
	}
	return fmt.Errorf("%w: %s: %s: a signature made with a key is stored in the registry only, and recorded in no transparency log (cosign verify --key then needs --insecure-ignore-tlog=true): remove it (or say --tlog-upload=false), or sign keyless (PLUGIN_SIGN_IDENTITY_TOKEN), whose signatures go to Rekor", settings.ErrInvalid, s.Origin("cosign-params"), flag)
}

// keylessLog is whether keyless signatures are recorded in Rekor, and
// where: PLUGIN_SIGN_TLOG_UPLOAD and PLUGIN_SIGN_REKOR_URL, or cosign's
// flags in PLUGIN_COSIGN_PARAMS; the two set to different values are
// refused.
func keylessLog(s *settings.Settings, p sign.Params) (upload bool, rekor string, err error) {
	upload, rekor = s.SignTlogUpload, s.SignRekorURL
	if p.TlogUpload != nil {
		if s.IsSet("sign-tlog-upload") && s.SignTlogUpload != *p.TlogUpload {
			return false, "", fmt.Errorf("%w: %s says --tlog-upload=%v and %s says %v: give one", settings.ErrInvalid, s.Origin("cosign-params"), *p.TlogUpload, s.Origin("sign-tlog-upload"), s.SignTlogUpload)
		}
		upload = *p.TlogUpload
	}
	if p.RekorURL != "" {
		if s.IsSet("sign-rekor-url") && s.SignRekorURL != p.RekorURL {
			return false, "", fmt.Errorf("%w: %s says --rekor-url=%s and %s says %s: give one", settings.ErrInvalid, s.Origin("cosign-params"), p.RekorURL, s.Origin("sign-rekor-url"), s.SignRekorURL)
		}
		rekor = p.RekorURL
	}
	return upload, rekor, nil
}

// requireScanOf is the records directory PLUGIN_REQUIRE_SCAN checks.
func requireScanOf(s *settings.Settings, path func(string) string) (string, error) {
	if !s.RequireScan {
		return "", nil
	}
	if !s.PushOnly {
		return "", fmt.Errorf("%w: %s checks the record of a pre-built image, and this step builds a new one: set PLUGIN_SCAN=true to scan it before its push", settings.ErrInvalid, s.Origin("require-scan"))
	}
	return path(s.ScanRecords), nil
}

// sourceOf is the pre-built image of a push-only step. Without a tarball
// or an image, the names the build step recorded: the kind's full
// repository (a build with the same settings names the same).
func sourceOf(s *settings.Settings, t target, path func(string) string) Source {
	var fallbacks []string
	if t.repo != "" {
		for _, d := range t.dests {
			if d.Context().Name() == repoName(t.repo, s.Insecure) {
				fallbacks = append(fallbacks, d.Name())
			}
		}
	}
	return Source{TarPath: path(s.SourceTarPath), Image: s.SourceImage, Fallbacks: fallbacks, Store: path(s.ImageStore)}
}

// kindsConfig is the settings of every registry kind.
func kindsConfig(s *settings.Settings, kindName string, path func(string) string) kinds.Config {
	return kinds.Config{
		Type: kindName, Registry: s.Registry, Repo: s.Repo, Username: s.Username, Password: s.Password, OIDCToken: s.OIDCToken, ExpandRepo: s.ExpandRepo,
		ECR: kinds.ECRConfig{Region: s.Region, Account: s.Account, FIPS: s.FIPS, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
			AssumeRole: s.AssumeRole, ExternalID: s.ExternalID, Endpoint: s.ECREndpoint, STSEndpoint: s.STSEndpoint, Registry: s.ECRRegistry,
			CreateRepository: s.CreateRepository, LifecyclePolicy: path(s.LifecyclePolicy), RepositoryPolicy: path(s.RepositoryPolicy), ScanOnPush: scanOnPush(s)},
		Google: kinds.GoogleConfig{JSONKey: s.JSONKey, AccessToken: s.AccessToken, ProjectID: s.ProjectID, Location: s.Location,
			ProjectNumber: s.ProjectNumber, PoolID: s.PoolID, ProviderID: s.ProviderID, ServiceAccount: s.ServiceAccount,
			STSURL: s.GoogleSTSURL, IAMURL: s.GoogleIAMURL, Registry: s.GARRegistry},
		ACR: kinds.ACRConfig{TenantID: s.TenantID, ClientID: s.ClientID, ClientSecret: s.ClientSecret, ClientCertificate: s.ClientCert,
			AuthorityHost: s.AzureAuthority, Registry: s.ACRRegistry},
	}
}

// commitOf is the commit of the build for the run identity: the
// --commit-sha flag, or its variable in the step's own environment (an
// env file, which the repository may write, does not name it: a record
// committed to the repository cannot hold the hash of its own commit,
// unless the repository says which commit that is).
func commitOf(s *settings.Settings, env Environ) string {
	if strings.HasPrefix(s.Origin("commit-sha"), "--") {
		return s.CommitSHA
	}
	for _, f := range settings.Fields() {
		if f.Flag != "commit-sha" {
			continue
		}
		for _, e := range f.Env {
			if v, ok := env.Lookup(e); ok {
				return v
			}
		}
	}
	return ""
}

// scanOnPush is PLUGIN_SCAN_ON_PUSH when it is set: ECR's scan-on-push is
// changed only when a step says so.
func scanOnPush(s *settings.Settings) *bool {
	if !s.IsSet("scan-on-push") {
		return nil
	}
	v := s.ScanOnPush
	return &v
}
