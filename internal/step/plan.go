package step

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/envlist"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/kinds"
	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/runid"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/sign"
	"github.com/hoist-build/hoist/internal/source"
	"github.com/hoist-build/hoist/internal/tags"
)

// ErrSkip ends a step that auto-tag skips (neither a tag nor the default
// branch), successfully, as the peers do.
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
func FromSettings(s *settings.Settings, env Environ) (Step, error) {
	var st Step
	path := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(env.WorkDir, p)
	}
	// Every secret is known before anything is planned: every byte the
	// step writes, its errors included, is masked with them, and the
	// provenance records none of them (the step adds the tokens its
	// logins obtain, and the build secrets once read).
	st.Mask = secretsOf(s, env, path)
	if err := checkModes(s); err != nil {
		return st, err
	}
	// A migrating step's variables are honoured, refused or named: never
	// silently ignored.
	unknown, err := settings.Unrecognized(env.Environ)
	if err != nil {
		return st, err
	}
	for _, n := range unknown {
		st.Notes = append(st.Notes, "warning: "+n)
	}
	if err := kanikoSecretFlags(s); err != nil {
		return st, err
	}
	if err := kanikoTrust(s); err != nil {
		return st, err
	}
	mode, err := progress.ParseMode(s.Progress, env.Terminal)
	if err != nil {
		return st, fmt.Errorf("%w: %s: %w", settings.ErrInvalid, s.Origin("progress"), err)
	}
	if s.Jobs < 1 || s.PushRetry < 0 || s.MaxParallel < 0 {
		return st, fmt.Errorf("%w: --jobs must be at least 1, --push-retry and --max-parallel at least 0", settings.ErrInvalid)
	}
	building := !s.PushOnly
	tagList := s.Tags
	if building {
		if tagList, err = buildTags(s); err != nil {
			return st, err
		}
	}
	kind, kindName, why, err := kindOf(s)
	if err != nil {
		return st, err
	}
	st.Notes = append(st.Notes, fmt.Sprintf("registry kind: %s (%s)", kindName, why))
	kcfg := kindsConfig(s, kindName, path)
	kcfg.Env = kinds.EnvOf(env.Lookup)
	repo, err := kinds.Repository(kind, kcfg)
	if err != nil {
		return st, err
	}
	pushing := s.PushOnly || !s.NoPush
	if (pushing && !env.ScanOnly) || s.Repo != "" || len(s.Destinations) > 0 {
		if st.Destinations, err = registry.Destinations(repo, tagList, s.Destinations, s.Insecure); err != nil {
			return st, err
		}
	}
	defaultFor := name.DefaultRegistry
	if len(st.Destinations) > 0 {
		defaultFor = st.Destinations[0].Context().RegistryStr()
	}
	st.Login = Login{
		Static: registry.Credentials{
			Registry: s.Registry, Username: s.Username, Password: s.Password, DefaultFor: defaultFor,
			Extra:  []registry.Login{{Registry: s.BaseRegistry, Username: s.BaseUsername, Password: s.BasePassword, Setting: "PLUGIN_BASE_IMAGE_REGISTRY/USERNAME/PASSWORD"}},
			Config: s.Config, Lookup: env.Lookup,
		},
		Kind: kind, Kinds: kcfg, Partial: s.PartialLogin,
	}

	st.Progress, st.Debug = mode, s.Debug
	st.Version = env.Version
	if st.Version == "" {
		st.Version = "dev"
	}
	if s.Debug {
		for _, kv := range s.Masked() {
			st.Notes = append(st.Notes, fmt.Sprintf("setting %s=%s (%s)", kv[0], kv[1], s.Origin(kv[0])))
		}
	}
	st.Transport = registry.TransportOptions{CACert: s.RegistryCertificate, SkipVerify: s.SkipTLSVerify, Timeout: s.RegistryTimeout, Insecure: s.Insecure,
		Proxy: registry.ProxyFrom(env.Lookup)}
	if len(s.RegistryRoutes) > 0 {
		st.Transport.Routes = map[string]string{}
		for _, r := range s.RegistryRoutes {
			host, addr, ok := strings.Cut(r, "=")
			if !ok || host == "" || addr == "" {
				return st, fmt.Errorf("%w: %s: %q is not HOST=127.0.0.1:PORT", settings.ErrInvalid, s.Origin("registry-routes"), r)
			}
			if host == "docker.io" {
				host = name.DefaultRegistry
			}
			st.Transport.Routes[host] = addr
		}
	}
	st.Push = Push{Jobs: s.Jobs, MaxParallel: s.MaxParallel, Retries: s.PushRetry, FailFast: s.FailFast}
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
	st.NoPush = !pushing
	// Every output path is checked before anything is built or pushed: a
	// push never succeeds only for the step to fail on an output. In the
	// workspace, a symbolic link that leads out of it is refused (the
	// repository, an earlier step or a restored cache may have put it
	// there): hoist writes nothing through it.
	for _, o := range [][2]string{{"digest-file", s.DigestFile}, {"output-file", s.OutputFile}, {"artifact-file", s.ArtifactFile},
		{"metadata-file", s.MetadataFile}, {"tar-path", s.TarPath}} {
		if o[1] == "" {
			continue
		}
		if _, _, err := st.Workspace.Target(path(o[1])); err != nil {
			return st, fmt.Errorf("%w: %s: %w", settings.ErrInvalid, s.Origin(o[0]), err)
		}
	}
	// So are the scan records a scanning step writes (the image store
	// is made before the build, the compression cache when a layer is
	// compressed: both before anything is pushed).
	if s.Scan && s.ScanRecords != "" {
		if err := st.Workspace.Check(path(s.ScanRecords)); err != nil {
			return st, fmt.Errorf("%w: %s: %w", settings.ErrInvalid, s.Origin("scan-records"), err)
		}
	}
	st.Outputs = Outputs{DigestFile: path(s.DigestFile), EnvFile: path(s.OutputFile), ArtifactFile: path(s.ArtifactFile), MetadataFile: path(s.MetadataFile),
		TarPath: s.TarPath, ArtifactType: kinds.ArtifactType(kindName), Registry: s.Registry}

	if s.Scan {
		if !pushing {
			return st, fmt.Errorf("%w: %s gates a push, and this step pushes nothing (%s): scan its tarball or image with hoist scan (or the scan step), or set PLUGIN_SCAN on the push-only step", settings.ErrInvalid, s.Origin("scan"), s.Origin("no-push"))
		}
		if st.Scan, err = scanOf(s, env, path); err != nil {
			return st, err
		}
		st.Scan.Run = st.Run
		trivyLogins(&st, env.Lookup)
	}
	if s.Sign {
		if !pushing {
			return st, fmt.Errorf("%w: %s signs what a step pushes, and this step pushes nothing (%s): set PLUGIN_SIGN on the push-only step that pushes this image", settings.ErrInvalid, s.Origin("sign"), s.Origin("no-push"))
		}
		switch {
		case s.SignKey != "" && s.SignIdentityToken != "":
			return st, fmt.Errorf("%w: %s and %s are both set: sign with the key, or keyless with the identity token, not both", settings.ErrInvalid, s.Origin("sign-key"), s.Origin("sign-identity-token"))
		case s.SignKey != "":
			key := s.SignKey
			if !strings.Contains(key, "-----BEGIN") {
				key = path(key)
			}
			if st.Sign, err = sign.Load(key, s.SignPassword); err != nil {
				return st, err
			}
		case s.SignIdentityToken != "":
			k := sign.Keyless{IDToken: s.SignIdentityToken, FulcioURL: s.SignFulcioURL}
			if s.SignTlogUpload {
				k.RekorURL = s.SignRekorURL
			}
			if st.Sign, err = sign.NewKeyless(k); err != nil {
				return st, err
			}
		default:
			return st, fmt.Errorf("%w: %s needs PLUGIN_SIGN_KEY (or PLUGIN_COSIGN_PRIVATE_KEY): a cosign private key; or, keyless, PLUGIN_SIGN_IDENTITY_TOKEN: the CI's OIDC identity token for Fulcio", settings.ErrInvalid, s.Origin("sign"))
		}
	}
	if err := attestOf(s, env, &st, path); err != nil {
		return st, err
	}
	if s.RequireScan {
		if !s.PushOnly {
			return st, fmt.Errorf("%w: %s checks the record of a pre-built image, and this step builds a new one: set PLUGIN_SCAN=true to scan it before its push", settings.ErrInvalid, s.Origin("require-scan"))
		}
		st.RequireScan = path(s.ScanRecords)
	}
	if s.PushOnly {
		var fallbacks []string
		// The names the build step recorded: the kind's full repository
		// (a build with the same settings names the same).
		if repo != "" {
			for _, t := range st.Destinations {
				if t.Context().Name() == repoName(repo, s.Insecure) {
					fallbacks = append(fallbacks, t.Name())
				}
			}
		}
		st.Source = &source.Request{TarPath: path(s.SourceTarPath), Image: s.SourceImage, Fallbacks: fallbacks, Store: path(s.ImageStore)}
		return st, nil
	}
	if st.Build, err = buildOf(s, env, &st, path); err != nil {
		return st, err
	}
	if st.Attest.Provenance != nil {
		st.Attest.Provenance.Build = provenanceBuild(s, env, st.Build, st.Mask)
	}
	return st, nil
}

// secretsOf is the mask of a step with these settings: the caller's
// secrets (env.Secrets), every secret setting and login, the content of
// the files secret settings name (a docker config, a JSON key, a signing
// key, the remote builder's TLS key: each masked line by line too), and
// the credentials Trivy takes from the environment.
func secretsOf(s *settings.Settings, env Environ, path func(string) string) *mask.Set {
	m := env.Secrets.Clone()
	for _, v := range s.Secrets() {
		m.Add(v)
		// Given as base64 (a JSON key or a client certificate, as
		// Harness passes them), it is masked decoded too.
		if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v)); err == nil && len(b) >= 3 && utf8.Valid(b) {
			m.Add(string(b))
		}
	}
	m.AddLogin(s.Username, s.Password)
	m.AddLogin(s.BaseUsername, s.BasePassword)
	for _, p := range []string{s.Config, s.JSONKey, s.SignKey, s.ClientCert, s.BuilderKey} {
		if b, ok := secretFile(p, path); ok {
			m.Add(string(b))
		}
	}
	if env.Lookup != nil {
		for _, k := range []string{"TRIVY_PASSWORD", "TRIVY_REGISTRY_TOKEN"} {
			if v, ok := env.Lookup(k); ok {
				m.Add(v)
			}
		}
		// The proxies' logins: the proxy variables reach every RUN (curl
		// -v prints them), in any of the forms tools take: with a scheme
		// or without (user:password@proxy:3128), a password or a token
		// as the user name (http://token@proxy).
		for _, k := range maskedProxyVars {
			for _, e := range []string{k, "HARNESS_" + k} {
				if v, ok := env.Lookup(e); ok {
					addURLLogin(m, v, true)
				}
			}
		}
	}
	// A login in any other setting's URL (a Fulcio URL, a registry
	// mirror): the settings do not call them secret, and debug prints
	// them.
	for _, kv := range s.Masked() {
		for _, f := range strings.FieldsFunc(kv[1], func(r rune) bool { return strings.ContainsRune(" ,;[]\n\t", r) }) {
			if strings.Contains(f, "://") {
				addURLLogin(m, f, false)
			}
		}
	}
	return m
}

// maskedProxyVars are the proxy variables whose logins the mask holds:
// those a build gets (envlist.Proxy) and the others tools read.
var maskedProxyVars = append([]string{"ftp_proxy", "all_proxy", "FTP_PROXY", "ALL_PROXY"}, envlist.Proxy...)

// addURLLogin masks the login of the URL v: its password (with the
// user, as an Authorization header carries them), or, with userAlone, a
// user name without a password, which is then the token (curl sends it
// as user:). v may lack its scheme, as a proxy variable may.
func addURLLogin(m *mask.Set, v string, userAlone bool) {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return
	}
	user := u.User.Username()
	if pw, set := u.User.Password(); set && pw != "" {
		m.AddLogin(user, pw)
		return
	}
	if userAlone && user != "" {
		m.Add(user, base64.StdEncoding.EncodeToString([]byte(user+":")))
	}
}

// secretFile is the content of the file a secret setting names, when its
// value is a path (not inline content) to a regular file of at most 1 MiB.
func secretFile(v string, path func(string) string) ([]byte, bool) {
	if v == "" || len(v) > 4096 || strings.ContainsAny(v, "\n{") || strings.Contains(v, "-----BEGIN") {
		return nil, false
	}
	p := path(v)
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > 1<<20 {
		return nil, false
	}
	b, err := os.ReadFile(p)
	return b, err == nil
}

// kindsConfig is the settings of every registry kind.
func kindsConfig(s *settings.Settings, kindName string, path func(string) string) *kinds.Config {
	return &kinds.Config{
		Type: kindName, Registry: s.Registry, Repo: s.Repo, Username: s.Username, OIDCToken: s.OIDCToken, ExpandRepo: s.ExpandRepo,
		ECR: kinds.ECRConfig{Region: s.Region, Account: s.Account, FIPS: s.FIPS, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
			AssumeRole: s.AssumeRole, ExternalID: s.ExternalID, Endpoint: s.ECREndpoint, STSEndpoint: s.STSEndpoint, Registry: s.ECRRegistry,
			CreateRepository: s.CreateRepository, LifecyclePolicy: path(s.LifecyclePolicy), RepositoryPolicy: path(s.RepositoryPolicy)},
		Google: kinds.GoogleConfig{JSONKey: s.JSONKey, AccessToken: s.AccessToken, ProjectID: s.ProjectID, Location: s.Location,
			ProjectNumber: s.ProjectNumber, PoolID: s.PoolID, ProviderID: s.ProviderID, ServiceAccount: s.ServiceAccount,
			STSURL: s.GoogleSTSURL, IAMURL: s.GoogleIAMURL, Registry: s.GARRegistry},
		ACR: kinds.ACRConfig{TenantID: s.TenantID, ClientID: s.ClientID, ClientSecret: s.ClientSecret, ClientCertificate: s.ClientCert,
			AuthorityHost: s.AzureAuthority, Registry: s.ACRRegistry},
	}
}

// Refs are the references a step with these settings names (repo x
// tags, and PLUGIN_DESTINATIONS), and whether it pushes to them (a
// build-only step records its image under them), without planning the
// rest of the step: the pipeline runner plans its local registries and
// checks its steps' hand-overs with them.
func Refs(s *settings.Settings) (refs []name.Tag, pushes bool, err error) {
	if err := checkModes(s); err != nil {
		return nil, false, err
	}
	pushes = s.PushOnly || !s.NoPush
	tagList := s.Tags
	if !s.PushOnly {
		if tagList, err = buildTags(s); err != nil {
			if errors.Is(err, ErrSkip) {
				return nil, false, nil
			}
			return nil, false, err
		}
	}
	kind, kindName, _, err := kindOf(s)
	if err != nil {
		return nil, false, err
	}
	repo, err := kinds.Repository(kind, kindsConfig(s, kindName, func(p string) string { return p }))
	if err != nil {
		return nil, false, err
	}
	if repo == "" && len(s.Destinations) == 0 {
		return nil, pushes, nil
	}
	refs, err = registry.Destinations(repo, tagList, s.Destinations, s.Insecure)
	return refs, pushes, err
}

// checkModes rejects contradicting mode settings.
func checkModes(s *settings.Settings) error {
	if s.NoPush && s.PushOnly {
		return fmt.Errorf("%w: inputs no-push and push-only cannot be used together. please define only one (%s=true and %s=true; a stage-level PLUGIN_NO_PUSH reaches every step of the stage: set PLUGIN_NO_PUSH=false on the push step)", settings.ErrInvalid, s.Origin("no-push"), s.Origin("push-only"))
	}
	return nil
}

// repoName is a repository's full name (index.docker.io/library/app).
func repoName(repo string, insecure bool) string {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(repo, opts...)
	if err != nil {
		return repo
	}
	return r.Name()
}

// buildTags applies --auto-tag and --expand-tag, as the peers do for builds.
func buildTags(s *settings.Settings) ([]string, error) {
	if s.AutoTag && s.ExpandTag {
		return nil, fmt.Errorf("%w: The auto-tag flag conflicts with the expand-tag flag (PLUGIN_AUTO_TAG and PLUGIN_EXPAND_TAG are both true)", settings.ErrInvalid)
	}
	out := s.Tags
	if s.AutoTag {
		if s.IsSet("tags") && !(len(s.Tags) == 1 && s.Tags[0] == "latest") {
			return nil, fmt.Errorf("%w: The auto-tag flag does not work with user provided tags %v (%s); remove them or PLUGIN_AUTO_TAG", settings.ErrInvalid, s.Tags, s.Origin("tags"))
		}
		t, err := tags.Auto(s.CommitRef, s.RepoBranch, s.AutoTagSuffix)
		if errors.Is(err, tags.ErrSkip) {
			return nil, fmt.Errorf("%w: skipping automated docker build for %s: it is neither a tag nor the default branch (DRONE_REPO_BRANCH=%q)", ErrSkip, s.CommitRef, s.RepoBranch)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", settings.ErrInvalid, err)
		}
		out = t
	}
	if s.ExpandTag {
		out = tags.Expand(out)
	}
	return out, nil
}

// buildOf is the build of a build step: the request, the tool, the engine
// or Kaniko, and the build-only outputs.
func buildOf(s *settings.Settings, env Environ, st *Step, path func(string) string) (*Build, error) {
	b := &Build{TarPath: path(s.TarPath), TarFormat: s.TarFormat, Load: s.Load, BuilderTimeout: s.BuilderTimeout}
	var err error
	// Build secrets are secrets from the moment they are read: they
	// join the step's mask there.
	b.Request, b.Notes, err = buildRequest(s, env, st.Destinations, path, st.Mask)
	if err != nil {
		return nil, err
	}
	if s.Load && len(st.Destinations) == 0 {
		return nil, fmt.Errorf("%w: PLUGIN_BUILDX_LOAD needs PLUGIN_REPO (and tags) to name the image in the daemon", settings.ErrInvalid)
	}
	tool, why, err := buildTool(s)
	if err != nil {
		return nil, err
	}
	b.Tool = tool
	b.Notes = append(b.Notes, fmt.Sprintf("build tool: %s (%s)", tool, why))
	switch s.BuilderDriver {
	case "", "embedded", "remote":
	case "docker":
		if tool == "kaniko" {
			return nil, fmt.Errorf("%w: PLUGIN_BUILDER_DRIVER=docker is a BuildKit builder, and the build tool is kaniko", settings.ErrInvalid)
		}
		if s.TarPath != "" && s.TarFormat != "docker" {
			return nil, fmt.Errorf("%w: the Docker daemon saves docker tarballs only; PLUGIN_BUILDX_OUTPUT_FORMAT=%s needs the embedded engine or a BuildKit at PLUGIN_BUILDER_REMOTE_CONN", settings.ErrInvalid, s.TarFormat)
		}
		if len(b.Request.Platforms) > 1 {
			return nil, fmt.Errorf("%w: the Docker daemon's builder keeps one platform; build several with the embedded engine", settings.ErrInvalid)
		}
		b.InDaemon = true
		return b, nil
	default:
		return nil, fmt.Errorf("%w: %s=%q: want docker, or leave it empty", settings.ErrInvalid, s.Origin("builder-driver"), s.BuilderDriver)
	}
	if s.NoPush && len(st.Destinations) > 0 {
		b.Store = path(s.ImageStore)
	}
	if tool == "kaniko" {
		b.Kaniko = kanikoOf(s, env, path)
		if s.BaseUsername != "" || s.BasePassword != "" {
			b.BaseLogin = registry.Login{Registry: s.BaseRegistry, Username: s.BaseUsername, Password: s.BasePassword, Setting: "PLUGIN_BASE_IMAGE_REGISTRY/USERNAME/PASSWORD"}
		}
		return b, nil
	}
	b.Engine, b.EngineCA, err = engineOf(s, env, st.Destinations, path)
	return b, err
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

// kanikoSecretFlags refuses a secret given as a flag to a Kaniko build:
// the Dockerfile's RUN steps run beside hoist and read its command line
// (/proc/PID/cmdline is readable by every process of the container, even
// though hoist makes itself non-dumpable), while its environment is
// closed to them. Secrets come through the environment, the plugin way.
func kanikoSecretFlags(s *settings.Settings) error {
	if s.PushOnly {
		return nil
	}
	if tool, _, err := buildTool(s); err != nil || tool != "kaniko" {
		return nil
	}
	var given, envs []string
	for _, f := range settings.Fields() {
		if f.Secret && strings.HasPrefix(s.Origin(f.Flag), "--") {
			given = append(given, "--"+f.Flag)
			if len(f.Env) > 0 {
				envs = append(envs, f.Env[0])
			}
		}
	}
	if len(given) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: this step builds with Kaniko, whose Dockerfile RUN steps run beside hoist, and a Dockerfile's RUN can read hoist's command line (/proc/PID/cmdline): "+
		"give the secret in the step's environment instead (%s), as a plugin step does; hoist's environment is closed to them",
		settings.ErrInvalid, strings.Join(given, ", "), strings.Join(envs, ", "))
}

// kanikoTrust refuses what a Kaniko build step cannot be trusted with.
// Kaniko runs the Dockerfile's RUN steps as root in the step's own
// container, beside hoist: they can read what that container holds and
// replace any file in it, for the rest of the step. So hoist signs,
// attests and scans nothing in the container that built with Kaniko: the
// signing key or identity token, Trivy and its database and the CA
// certificates a verdict would rest on would all be the build's to read
// or replace. (PLUGIN_REQUIRE_SCAN reads the record of a pre-built image,
// so it is a push-only setting, refused on every build.)
func kanikoTrust(s *settings.Settings) error {
	if s.PushOnly {
		return nil
	}
	tool, why, err := buildTool(s)
	if err != nil || tool != "kaniko" {
		return nil // a bad tool is reported with the build
	}
	var asked []string
	for _, f := range []struct {
		flag string
		on   bool
	}{{"sign", s.Sign}, {"sbom", s.SBOM}, {"provenance", s.Provenance}, {"scan", s.Scan}} {
		if f.on {
			asked = append(asked, s.Origin(f.flag))
		}
	}
	if len(asked) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: this step builds with Kaniko (%s), which runs the Dockerfile's RUN steps as root in this very container, beside hoist: "+
		"they could read the signing key or identity token and replace Trivy, its database or the CA certificates, so hoist does not sign, attest or scan in the container that built. "+
		"Build only here (PLUGIN_NO_PUSH=true with PLUGIN_TAR_PATH=image.tar), then scan, sign and push that tarball in a step of its own "+
		"(PLUGIN_PUSH_ONLY=true, PLUGIN_SOURCE_TAR_PATH=image.tar, with %s there; docs/usage.md), or build with BuildKit (PLUGIN_BUILD_TOOL=buildkit)",
		settings.ErrInvalid, strings.Join(asked, ", "), why, strings.Join(asked, ", "))
}

// buildTool picks the build tool and says why.
func buildTool(s *settings.Settings) (tool, why string, err error) {
	tool = strings.ToLower(strings.TrimSpace(s.BuildTool))
	k8s := s.KubernetesHost != "" || strings.EqualFold(s.Infrastructure, "kubernetes") || strings.EqualFold(s.Infrastructure, "k8s")
	switch {
	case tool == "buildkit" || tool == "kaniko":
		return tool, s.Origin("build-tool") + " says so", nil
	case tool != "":
		return "", "", fmt.Errorf("%w: %s=%q: want buildkit or kaniko", settings.ErrInvalid, s.Origin("build-tool"), s.BuildTool)
	case k8s && s.BuildxOnK8:
		return "buildkit", "running in Kubernetes, and CI_USE_BUILDX_ON_K8 is true", nil
	case k8s:
		inK8s := "KUBERNETES_SERVICE_HOST is set"
		if s.KubernetesHost == "" {
			inK8s = s.Origin("infrastructure") + "=" + s.Infrastructure
		}
		return "kaniko", "running in Kubernetes (" + inK8s + "); CI_USE_BUILDX_ON_K8=true picks BuildKit", nil
	}
	return "buildkit", "not in Kubernetes", nil
}

// kanikoOf is the Kaniko builder. Its docker config is written when the
// step runs, from the step's keychain (see runner.kanikoConfig), so that
// Kaniko pulls and pushes with the credentials BuildKit would use.
func kanikoOf(s *settings.Settings, env Environ, path func(string) string) build.Kaniko {
	return build.Kaniko{
		Executor: path(s.KanikoExecutor), TempDir: env.TempDir, Env: env.Environ, Shield: env.Shield,
		Insecure: s.Insecure, SkipTLSVerify: s.SkipTLSVerify, Mirrors: s.RegistryMirrors, Extra: s.KanikoArgs(),
	}
}

// engineOf is the BuildKit to build with: a remote one, or the embedded
// engine configured for the step's registries; and a registry CA given as
// PEM content, which the step writes into the engine's directory.
func engineOf(s *settings.Settings, env Environ, dests []name.Tag, path func(string) string) (engine.Options, string, error) {
	dir := s.EngineDir
	if dir == "" {
		dir = engine.DefaultDir(env.Lookup)
	}
	o := engine.Options{
		Addr: s.BuilderAddr, TLSCA: path(s.BuilderTLSCA), TLSCert: path(s.BuilderCert), TLSKey: path(s.BuilderKey),
		Dir: path(dir), Binary: program(s.Buildkitd, path), Env: env.Environ, Mirrors: s.RegistryMirrors, Keep: s.KeepEngine,
		Network: s.Network, Wait: 60 * time.Second,
	}
	if s.BuilderAddr != "" {
		o.Wait = s.BuilderTimeout
	}
	if !s.Insecure && !s.SkipTLSVerify && s.RegistryCertificate == "" {
		return o, "", nil
	}
	var hosts []string
	for _, d := range dests {
		hosts = append(hosts, d.RegistryStr())
	}
	if s.BaseRegistry != "" {
		if h, err := registry.NormalizeHost(s.BaseRegistry); err == nil {
			hosts = append(hosts, h)
		}
	}
	pem, caFile := "", ""
	if strings.Contains(s.RegistryCertificate, "-----BEGIN") {
		pem = s.RegistryCertificate
	} else if s.RegistryCertificate != "" {
		caFile = path(s.RegistryCertificate)
	}
	for _, h := range hosts {
		// PLUGIN_INSECURE allows plain HTTP; only PLUGIN_SKIP_TLS_VERIFY
		// skips certificate checks.
		reg := engine.Registry{Host: h, HTTP: s.Insecure, Insecure: s.SkipTLSVerify}
		if caFile != "" {
			reg.CAFiles = []string{caFile}
		}
		o.Registries = append(o.Registries, reg)
	}
	return o, pem, nil
}

// program is a program setting (PLUGIN_SCAN_TRIVY, PLUGIN_BUILDKITD): a
// name, looked for on the step's PATH, or a path, resolved as every path
// setting is (against the working directory). A program runs in a
// directory of its own (Trivy in an empty one), so a relative path would
// name another file there.
func program(name string, path func(string) string) string {
	if strings.ContainsRune(name, filepath.Separator) {
		return path(name)
	}
	return name
}
