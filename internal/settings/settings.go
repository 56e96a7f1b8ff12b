// Package settings defines hoist's one settings contract: every setting, its
// command-line flag, its environment names, its default and its
// documentation, in one struct. Values are read in two steps: raw strings
// (from a flag, else the first environment name that is present, else the
// default), then typed and validated, with every problem reported at once.
package settings

import (
	"time"
)

// Settings holds every setting of hoist.
//
// Struct tags, read by this package and by the docs generator:
//
//	flag    the long flag name (one per setting)
//	env     environment names, comma separated; the first one present wins,
//	        even when its value is empty (the peers' urfave/cli rule)
//	default the value when neither a flag nor an environment name is given
//	sep     list separator for []string fields (default ",")
//	secret  "true": the value is masked in every output
//	group   heading in docs/settings.md and in --help
//	doc     one sentence for users
//	envfile "yes": an env file (--env-file) may set it; "values": an env
//	        file may set it with values only (KEY=value items, none taken
//	        from the environment). An env file may set nothing else: it is
//	        written by whoever can write the workspace, so a setting joins
//	        the allowlist only when it says nothing of where a secret goes,
//	        what is read or written, what network RUN gets or what a
//	        verdict rests on (docs/usage.md, "Settings from an env file")
type Settings struct {
	// Mode.
	PushOnly bool `flag:"push-only" env:"PLUGIN_PUSH_ONLY" group:"Mode" doc:"Push a pre-built image (from --source-tar-path, --source-image or the local daemon); do not build."`
	NoPush   bool `flag:"no-push" env:"PLUGIN_DRY_RUN,PLUGIN_NO_PUSH" group:"Mode" doc:"Build only; push nothing. PLUGIN_DRY_RUN is read before PLUGIN_NO_PUSH, as plugins/docker and plugins/buildx read them: when both are present the first wins, even empty (a stage's PLUGIN_DRY_RUN=false overrides a step's PLUGIN_NO_PUSH=true)."`

	// Source of a pre-built image.
	SourceTarPath string `flag:"source-tar-path" env:"PLUGIN_SOURCE_TAR_PATH" group:"Source" doc:"Image to push: a docker-archive or OCI archive tarball (plain or gzip) or an OCI image layout directory."`
	SourceImage   string `flag:"source-image" env:"PLUGIN_SOURCE_IMAGE" group:"Source" doc:"Image to push by reference: looked up in the local Docker daemon, then in its registry. Inside a tarball holding several images it picks one. No tag means latest; name@sha256:... works."`

	// Build (BuildKit).
	Dockerfile       string   `flag:"dockerfile" env:"PLUGIN_DOCKERFILE" group:"Build" doc:"Dockerfile to build (default: Dockerfile in the context). Relative to the working directory."`
	Context          string   `flag:"context" env:"PLUGIN_CONTEXT" default:"." group:"Build" doc:"Build context directory."`
	Target           string   `flag:"target" env:"PLUGIN_TARGET" envfile:"yes" group:"Build" doc:"Dockerfile stage to build."`
	BuildArgs        []string `flag:"build-args" env:"PLUGIN_BUILD_ARGS" envfile:"values" group:"Build" doc:"Build arguments KEY=value, comma separated (a bare KEY takes its value from the environment)."`
	BuildArgsNew     []string `flag:"build-args-new" env:"PLUGIN_BUILD_ARGS_NEW" envfile:"values" sep:";" group:"Build" doc:"Build arguments KEY=value separated by semicolons, for values holding commas; used instead of --build-args when --multiple-build-args is set."`
	MultiBuildArgs   bool     `flag:"multiple-build-args" env:"PLUGIN_MULTIPLE_BUILD_ARGS" envfile:"yes" group:"Build" doc:"Read build arguments from --build-args-new."`
	BuildArgsFromEnv []string `flag:"build-args-from-env" env:"PLUGIN_BUILD_ARGS_FROM_ENV" group:"Build" doc:"Names of environment variables passed as build arguments of the same name."`
	Labels           []string `flag:"labels" env:"PLUGIN_CUSTOM_LABELS,PLUGIN_LABEL,PLUGIN_LABELS" envfile:"yes" group:"Build" doc:"Image labels KEY=value, comma separated (PLUGIN_LABEL and PLUGIN_LABELS are the Woodpecker and thegeeklab names)."`
	AutoLabel        bool     `flag:"auto-label" env:"PLUGIN_DEFAULT_LABELS,PLUGIN_AUTO_LABEL" default:"true" group:"Build" doc:"Add the org.opencontainers.image.{created,revision,source,url} labels from the CI's commit variables."`
	Platforms        []string `flag:"platform" env:"PLUGIN_PLATFORM,PLUGIN_CUSTOM_PLATFORM,PLUGIN_PLATFORMS" envfile:"yes" group:"Build" doc:"Target platforms, comma separated (linux/amd64,linux/arm64); several make an image index. PLUGIN_PLATFORMS is the Woodpecker and thegeeklab name."`
	SecretsFromEnv   []string `flag:"secrets-from-env" env:"PLUGIN_SECRETS_FROM_ENV" group:"Build" doc:"Build secrets id=ENV_NAME, comma separated, for RUN --mount=type=secret."`
	SecretsFromFile  []string `flag:"secrets-from-file" env:"PLUGIN_SECRETS_FROM_FILE" group:"Build" doc:"Build secrets id=path, comma separated."`
	Secret           []string `flag:"secret" env:"PLUGIN_SECRET" sep:";" group:"Build" doc:"Build secrets as buildx --secret takes them, semicolon separated: id=ID,src=PATH (a file), id=ID,env=NAME (a variable), type=env or type=file; with neither src nor env, the variable ID if set, else the file ID."`
	SecretsList      []string `flag:"secrets" env:"PLUGIN_SECRETS" sep:"," escape:"\\" group:"Build" doc:"Build secrets as --secret takes them, comma separated, a comma inside one preceded by a backslash (thegeeklab's escape), as the Woodpecker and thegeeklab plugins read them; given with --secret, both must say the same."`
	AddHosts         []string `flag:"add-host" env:"PLUGIN_ADD_HOST" group:"Build" doc:"Extra /etc/hosts entries host:ip for RUN steps, comma separated."`
	NoCache          bool     `flag:"no-cache" env:"PLUGIN_NO_CACHE" envfile:"yes" group:"Build" doc:"Do not use the build cache."`
	Pull             bool     `flag:"pull" env:"PLUGIN_PULL_IMAGE" envfile:"yes" default:"true" group:"Build" doc:"Check the registry for newer base images."`
	Network          string   `flag:"network" env:"PLUGIN_NETWORK" group:"Build" doc:"Network of RUN steps: default, host or none. default: what docker build gives, a network namespace of their own on a bridge with NAT, out of reach of the machine's loopback services; where no bridge can work (no CNI plugins, no permission) the embedded engine refuses to start. host: the machine's network, loopback included. none: no network. With host or none the embedded engine starts on the host's network where no bridge can work. A remote BuildKit (--builder-addr) keeps its own default."`
	Compression      string   `flag:"compression" env:"PLUGIN_COMPRESSION" group:"Build" doc:"Layer compression: gzip, zstd or uncompressed. Unset: gzip at level 1 for every build, so the digest a build-only step reports is the one its push-only steps push. Layers that arrive uncompressed (docker save) are gzipped at --compression-level when pushed, unless this says uncompressed."`
	CompressionLevel int      `flag:"compression-level" env:"PLUGIN_COMPRESSION_LEVEL" default:"0" group:"Build" doc:"Compression level; 0: level 1 for gzip, the compressor's default for zstd."`
	CommitSHA        string   `flag:"commit-sha" env:"DRONE_COMMIT_SHA" group:"Build" doc:"Commit of the build, for the revision label."`
	RemoteURL        string   `flag:"remote-url" env:"CI_REMOTE_URL,DRONE_REMOTE_URL" group:"Build" doc:"Repository URL, for the source label."`
	RepoLink         string   `flag:"repo-link" env:"PLUGIN_REPO_LINK,DRONE_REPO_LINK" group:"Build" doc:"Repository web page, for the url label."`
	NamedContexts    []string `flag:"named-context" env:"PLUGIN_NAMED_CONTEXT" group:"Build" doc:"Extra named build contexts as buildx --build-context takes them, comma separated: NAME=docker-image://REF (an image; FROM NAME and COPY --from=NAME use it), NAME=DIR (a directory inside the working directory, relative to it). Other schemes are refused. BuildKit only."`
	SSHAgentKey      string   `flag:"ssh-agent-key" env:"PLUGIN_SSH_AGENT_KEY" secret:"true" group:"Build" doc:"An SSH private key (PEM or OpenSSH, without a passphrase), offered to the build as its default SSH agent: RUN --mount=type=ssh sees an agent holding it at $SSH_AUTH_SOCK, as docker build --ssh default=KEYFILE gives. The key never reaches the image, the context, the workspace or any output: BuildKit's agent reads it from a file only its owner can read, in hoist's temporary directory, removed before the build starts. BuildKit only."`

	// Base images.
	BaseRegistry string `flag:"base-image-registry" env:"PLUGIN_DOCKER_REGISTRY,PLUGIN_BASE_IMAGE_REGISTRY,DOCKER_BASE_IMAGE_REGISTRY" group:"Build" doc:"Registry that base images are pulled from with --base-image-username and --base-image-password. The names are read in the peers' order: PLUGIN_DOCKER_* first, then PLUGIN_BASE_IMAGE_*, then DOCKER_BASE_IMAGE_* (plugins/docker); the first present wins, even empty. The Kaniko plugins' fourth name, DOCKER_REGISTRY/USERNAME/PASSWORD, is --registry's here, as in plugins/docker."`
	BaseUsername string `flag:"base-image-username" env:"PLUGIN_DOCKER_USERNAME,PLUGIN_BASE_IMAGE_USERNAME,DOCKER_BASE_IMAGE_USERNAME" group:"Build" doc:"User name for --base-image-registry (names read in the order of --base-image-registry's)."`
	BasePassword string `flag:"base-image-password" env:"PLUGIN_DOCKER_PASSWORD,PLUGIN_BASE_IMAGE_PASSWORD,DOCKER_BASE_IMAGE_PASSWORD" secret:"true" group:"Build" doc:"Password for --base-image-registry (names read in the order of --base-image-registry's)."`

	// Layer cache.
	CacheFrom   []string `flag:"cache-from" env:"PLUGIN_CACHE_FROM" sep:";" group:"Cache" doc:"Cache sources, semicolon separated: type=registry,ref=REF, type=local,src=DIR, type=s3,bucket=B,region=R[,endpoint_url=URL,use_path_style=true,access_key_id=K,secret_access_key=S], type=azblob or type=gha (BuildKit's backends; Harness's type=gcs and type=azure are refused)."`
	CacheTo     []string `flag:"cache-to" env:"PLUGIN_CACHE_TO" sep:";" group:"Cache" doc:"Cache destinations, semicolon separated: type=registry,ref=REF,mode=max, type=local,dest=DIR, type=s3,bucket=B,region=R,... (as --cache-from), type=inline."`
	EnableCache bool     `flag:"enable-cache" env:"PLUGIN_ENABLE_CACHE" group:"Cache" doc:"Use a registry layer cache at --cache-repo (default: the first destination's repository, tag buildcache) when no --cache-from/--cache-to is given."`
	CacheRepo   string   `flag:"cache-repo" env:"PLUGIN_CACHE_REPO" group:"Cache" doc:"Registry reference of the layer cache for --enable-cache."`
	CacheImages []string `flag:"cache-images" env:"PLUGIN_CACHE_IMAGES" group:"Cache" doc:"Registry caches, comma separated image references, each added to --cache-from and to --cache-to with mode=max (Woodpecker's cache_images)."`

	CachePathStyle         bool   `flag:"cache-path-style" env:"PLUGIN_PATH_STYLE,AWS_PLUGIN_PATH_STYLE" group:"Cache" doc:"Add use_path_style=true to every type=s3 cache entry that does not set use_path_style (an S3-compatible server addressed as ENDPOINT/BUCKET), as the buildx plugin does."`
	CacheTLSInsecure       bool   `flag:"cache-tls-insecure" env:"PLUGIN_CACHE_TLS_INSECURE" group:"Cache" doc:"Refused with a cache entry: BuildKit's layer caches cannot skip certificate checks (the buildx plugin adds tls_insecure_skip_verify, an attribute of Harness's own BuildKit)."`
	HarnessS3AccessKey     string `flag:"harness-s3-access-key" env:"PLUGIN_HARNESS_SELF_HOSTED_S3_ACCESS_KEY" secret:"true" group:"Cache" doc:"Harness's Docker Layer Caching on self-hosted S3: the access key that replaces access_key_id=harness_placeholder_aws_creds in the type=s3 cache entries Harness sends."`
	HarnessS3SecretKey     string `flag:"harness-s3-secret-key" env:"PLUGIN_HARNESS_SELF_HOSTED_S3_SECRET_KEY" secret:"true" group:"Cache" doc:"Harness's Docker Layer Caching on self-hosted S3: the secret key that replaces secret_access_key=harness_placeholder_aws_creds."`
	HarnessGCPJSONKey      string `flag:"harness-gcp-json-key" env:"PLUGIN_HARNESS_SELF_HOSTED_GCP_JSON_KEY" secret:"true" group:"Cache" doc:"Harness's Docker Layer Caching on GCS: masked; its type=gcs cache entries are refused (a backend of Harness's own BuildKit; docs/usage.md, Layer cache)."`
	HarnessAzureAccountKey string `flag:"harness-azure-account-key" env:"PLUGIN_HARNESS_SELF_HOSTED_AZURE_ACCOUNT_KEY" secret:"true" group:"Cache" doc:"Harness's Docker Layer Caching on Azure: masked; its type=azure cache entries are refused (a backend of Harness's own BuildKit; upstream's is type=azblob)."`
	HarnessAzureTenantID   string `flag:"harness-azure-tenant-id" env:"PLUGIN_HARNESS_SELF_HOSTED_AZURE_TENANT_ID" group:"Cache" doc:"Harness's Docker Layer Caching on Azure: its type=azure cache entries are refused."`
	HarnessAzureClientID   string `flag:"harness-azure-client-id" env:"PLUGIN_HARNESS_SELF_HOSTED_AZURE_CLIENT_ID" group:"Cache" doc:"Harness's Docker Layer Caching on Azure: its type=azure cache entries are refused."`
	HarnessAzureSecret     string `flag:"harness-azure-client-secret" env:"PLUGIN_HARNESS_SELF_HOSTED_AZURE_CLIENT_SECRET" secret:"true" group:"Cache" doc:"Harness's Docker Layer Caching on Azure: masked; its type=azure cache entries are refused."`
	HarnessAzureOIDCToken  string `flag:"harness-azure-oidc-token" env:"PLUGIN_HARNESS_SELF_HOSTED_AZURE_OIDC_TOKEN" secret:"true" group:"Cache" doc:"Harness's Docker Layer Caching on Azure: masked; its type=azure cache entries are refused."`

	// Build outputs.
	TarPath       string `flag:"tar-path" env:"PLUGIN_TAR_PATH,PLUGIN_DESTINATION_TAR_PATH" group:"Build outputs" doc:"Also write the built image as a tarball here (parent directories are created)."`
	TarFormat     string `flag:"tar-format" env:"PLUGIN_BUILDX_OUTPUT_FORMAT" default:"docker" group:"Build outputs" doc:"Tarball format: docker (docker load reads it) or oci."`
	Load          bool   `flag:"load" env:"PLUGIN_BUILDX_LOAD" group:"Build outputs" doc:"Load the built image into the Docker daemon under every repo:tag."`
	ImageStore    string `flag:"image-store" env:"PLUGIN_IMAGE_STORE" default:".hoist/images" group:"Build outputs" doc:"Workspace image store (an OCI layout) where build-only runs record their image and push-only runs look first (an entry vouches for its layers only in the run that recorded it)."`
	CompressCache string `flag:"compress-cache" env:"PLUGIN_COMPRESS_CACHE" default:".hoist/compressed" group:"Build outputs" doc:"Workspace cache of layers hoist compressed, by diff_id and compressor: a push-only step from an uncompressed tarball (docker save) compresses each layer once, and parallel steps take it from there (a later run's steps check an entry before they use it). Empty: no cache."`
	MetadataFile  string `flag:"metadata-file" env:"PLUGIN_METADATA_FILE" group:"Build outputs" doc:"Write BuildKit's exporter response (containerimage.digest, ...) as JSON here."`
	Output        string `flag:"build-output" env:"PLUGIN_OUTPUT" group:"Build outputs" doc:"Where the built image goes, as buildx --output says it (thegeeklab's and Woodpecker's buildx plugins): type=registry or type=image,push=true pushes (the default); type=docker,dest=FILE and type=oci,dest=FILE write that tarball (--tar-path, --tar-format) and push nothing; type=docker without dest loads the image into the Docker daemon (--load) and pushes nothing; type=image without push=true pushes nothing; type=local,dest=DIR and type=tar,dest=FILE write the image's filesystem (not an image) to a new or empty directory or to a file, and push nothing (BuildKit only). Other types and attributes are refused, with the reason."`

	// Build engine.
	BuildTool       string        `flag:"build-tool" env:"PLUGIN_BUILD_TOOL" group:"Engine" doc:"buildkit or kaniko. Empty: kaniko inside Kubernetes (unless CI_USE_BUILDX_ON_K8 is true), buildkit anywhere else."`
	BuildxOnK8      bool          `flag:"buildx-on-k8" env:"CI_USE_BUILDX_ON_K8" group:"Engine" doc:"Inside Kubernetes, build with BuildKit rather than Kaniko."`
	Infrastructure  string        `flag:"infrastructure" env:"PLUGIN_INFRASTRUCTURE" group:"Engine" doc:"Where the step runs, when it cannot be detected: kubernetes, vm or cloud. Kubernetes is detected from KUBERNETES_SERVICE_HOST."`
	KubernetesHost  string        `flag:"kubernetes-service-host" env:"KUBERNETES_SERVICE_HOST" group:"Engine" doc:"Set by Kubernetes in every pod; its presence selects Kaniko."`
	KanikoExecutor  string        `flag:"kaniko-executor" env:"PLUGIN_KANIKO_EXECUTOR" default:"/kaniko/executor" group:"Engine" doc:"The Kaniko executor, run only inside hoist's Kaniko image."`
	BuilderDriver   string        `flag:"builder-driver" env:"PLUGIN_BUILDER_DRIVER" group:"Engine" doc:"docker: build with the Docker daemon's built-in BuildKit (the image lands in the daemon; tarballs are saved from it). Empty: the embedded engine, or the BuildKit at --builder-addr."`
	BuilderAddr     string        `flag:"builder-addr" env:"PLUGIN_BUILDER_REMOTE_CONN,BUILDKIT_HOST" group:"Engine" doc:"A running BuildKit: unix://PATH, tcp://HOST:PORT, docker-container://NAME or kube-pod://NAME. Empty: hoist starts its own (the embedded engine)."`
	BuilderPush     string        `flag:"builder-push" env:"PLUGIN_BUILDER_PUSH" default:"auto" group:"Engine" doc:"Whether the BuildKit at --builder-addr pushes the built image itself, by digest and untagged, to the first destination, for hoist to push from there to every destination (the image's bytes then never travel to hoist): auto, when nothing needs the bytes here (no tarball, load, image store, filesystem export, scan gate, SBOM or signing) and the registry is not on loopback, is reached without hoist's own CA, proxy or route, and needs no plain HTTP; true, the same and also to a loopback registry (say so only when the builder shares this host's network); false, never (hoist takes the image from the builder and pushes it). The builder pushes with its own registry configuration (its buildkitd.toml) and the step's credentials for that registry."`
	BuilderTimeout  time.Duration `flag:"builder-timeout" env:"PLUGIN_BUILDER_TIMEOUT" default:"15s" group:"Engine" doc:"How long to wait for a builder at --builder-addr to answer."`
	BuilderTLSCA    string        `flag:"builder-tls-ca" env:"PLUGIN_BUILDER_TLS_CA" group:"Engine" doc:"CA certificate file for a tcp:// builder."`
	BuilderCert     string        `flag:"builder-tls-cert" env:"PLUGIN_BUILDER_TLS_CERT" group:"Engine" doc:"Client certificate file for a tcp:// builder."`
	BuilderKey      string        `flag:"builder-tls-key" env:"PLUGIN_BUILDER_TLS_KEY" group:"Engine" doc:"Client key file for a tcp:// builder."`
	EngineDir       string        `flag:"engine-dir" env:"PLUGIN_ENGINE_DIR" group:"Engine" doc:"State directory of the embedded engine (default: $XDG_CACHE_HOME/hoist/buildkit or ~/.cache/hoist/buildkit)."`
	KeepEngine      bool          `flag:"keep-engine" env:"PLUGIN_KEEP_ENGINE" group:"Engine" doc:"Leave the embedded engine running after the build (hoist engine stop ends it)."`
	Buildkitd       string        `flag:"buildkitd" env:"PLUGIN_BUILDKITD" default:"buildkitd" group:"Engine" doc:"The buildkitd executable of the embedded engine (looked up on PATH, then beside hoist)."`
	RegistryMirrors []string      `flag:"registry-mirrors" env:"PLUGIN_REGISTRY_MIRRORS,PLUGIN_MIRROR,DOCKER_PLUGIN_MIRROR" group:"Engine" doc:"Docker Hub mirrors for base image pulls of the embedded engine, comma separated."`
	BuildkitConfig  string        `flag:"buildkit-config" env:"PLUGIN_BUILDKIT_CONFIG,PLUGIN_BUILDER_CONFIG" group:"Engine" doc:"A buildkitd.toml, as its content (what the buildx plugins take) or a file path: its [registry.\"HOST\"] entries (mirrors, http, insecure, ca) configure the embedded engine's access to HOST, beside what hoist's own settings give; every other key is refused, named (hoist's engine is configured by its settings). With Kaniko they are the executor's per-registry flags (--registry-map, --insecure-registry, --skip-tls-verify-registry, --registry-certificate). Not with a BuildKit hoist does not start (--builder-addr, --builder-driver=docker)."`

	// Destinations.
	Repo          string   `flag:"repo" env:"PLUGIN_REPO" group:"Destination" doc:"Repository to push to, e.g. registry.example.com/team/app; combined with every tag. For ecr, gar, gcr and acr it is under PLUGIN_REGISTRY unless it already starts with it."`
	ExpandRepo    bool     `flag:"expand-repo" env:"PLUGIN_EXPAND_REPO" group:"Destination" doc:"docker kind: put --repo under --registry (REGISTRY/REPO) unless it already starts with it or the registry is Docker Hub, as the Kaniko plugin does."`
	Tags          []string `flag:"tags" env:"PLUGIN_TAG,PLUGIN_TAGS" envfile:"yes" default:"latest" group:"Destination" doc:"Tags, comma separated. Without a flag or variable the file .tags in the working directory is read (a regular file of at most 64 KiB, reached by no link out of the workspace); else latest."`
	TagsFile      string   `flag:"tags-file" env:"PLUGIN_TAGS_FILE,PLUGIN_TAG_FILE" group:"Destination" doc:"A file of tags, one a line, read in place of --tags (Woodpecker's tags_file): relative to the working directory, a regular file of at most 64 KiB, reached by no link out of the workspace."`
	Destinations  []string `flag:"destination" env:"PLUGIN_DESTINATIONS,PLUGIN_EXTRA_TAGS" group:"Destination" doc:"Extra full references (registry/repo:tag), comma separated or a repeated flag; each may be on another registry. PLUGIN_EXTRA_TAGS is thegeeklab's name; its .extratags file is not read (a repository file does not choose where the image and the credentials go)."`
	ExpandTag     bool     `flag:"expand-tag" env:"PLUGIN_EXPAND_TAG" envfile:"yes" group:"Destination" doc:"Expand each semantic-version tag into major, major.minor and major.minor.patch (v1.2.3 gives 1, 1.2, 1.2.3) when building."`
	AutoTag       bool     `flag:"auto-tag" env:"PLUGIN_DEFAULT_TAGS,PLUGIN_AUTO_TAG" envfile:"yes" group:"Destination" doc:"Tags from the commit when building: latest on the default branch, X, X.Y, X.Y.Z for a tag vX.Y.Z; other refs skip the build. With --tags other than latest, those are pushed too, after the automatic ones (Woodpecker's merge; drone-kaniko refuses the pair, drone-docker drops the tags), and alone on other refs; latest alone, given or not, is not added (Woodpecker adds it)."`
	AutoTagSuffix string   `flag:"auto-tag-suffix" env:"PLUGIN_DEFAULT_SUFFIX,PLUGIN_AUTO_TAG_SUFFIX" envfile:"yes" group:"Destination" doc:"Suffix for automatic tags (1.2-SUFFIX; SUFFIX alone instead of latest)."`
	DefaultTag    string   `flag:"auto-tag-default" env:"PLUGIN_DEFAULT_TAG" envfile:"yes" default:"latest" group:"Destination" doc:"The automatic tag of the default branch, in place of latest (Woodpecker's default_tag); with --auto-tag-suffix the suffix alone is used, as there."`
	CommitRef     string   `flag:"commit-ref" env:"DRONE_COMMIT_REF" group:"Destination" doc:"The git ref of the build (refs/heads/main, refs/tags/v1.2.3), for --auto-tag."`
	RepoBranch    string   `flag:"repo-branch" env:"DRONE_REPO_BRANCH" group:"Destination" doc:"The repository's default branch, for --auto-tag."`

	// plugins/ecr's, for every registry kind.
	SkipPushIfTagExists bool `flag:"skip-push-if-tag-exists" env:"PLUGIN_SKIP_PUSH_IF_TAG_EXISTS" group:"Destination" doc:"Before anything is built or pushed, ask each destination's registry (any kind, as plugins/ecr asks ECR) whether it holds the tag already: a repository holding one of its tags gets none of them (plugins/ecr skips the push when any tag exists), the others are pushed; when every one holds one, nothing is built or pushed and the step succeeds, saying so. The tags asked are those pushed (after auto-tag and expand-tag; plugins/ecr asks PLUGIN_TAGS as given). A registry that cannot tell (unreachable, refusing access, failing after the retries) fails the step (exit 4) before anything is pushed; the check is bounded (each request by PLUGIN_REGISTRY_TIMEOUT, the whole by 2 minutes)."`

	// Registry access.
	Registry            string        `flag:"registry" env:"PLUGIN_REGISTRY,DOCKER_REGISTRY,BASE_REGISTRY" group:"Registry access" doc:"Registry that --username and --password log in to (default: the registry of --repo)."`
	Username            string        `flag:"username" env:"PLUGIN_USERNAME,DOCKER_USERNAME,SERVICE_PRINCIPAL_CLIENT_ID" group:"Registry access" doc:"User name for --registry (SERVICE_PRINCIPAL_CLIENT_ID: the ACR plugins' service principal login)."`
	Password            string        `flag:"password" env:"PLUGIN_PASSWORD,DOCKER_PASSWORD,SERVICE_PRINCIPAL_CLIENT_SECRET" secret:"true" group:"Registry access" doc:"Password or token for --registry (SERVICE_PRINCIPAL_CLIENT_SECRET: the ACR plugins' service principal login)."`
	Config              string        `flag:"config" env:"PLUGIN_CONFIG,DOCKER_PLUGIN_CONFIG" secret:"true" group:"Registry access" doc:"Docker config.json as JSON content or as a file path; its auths and credential helpers are used for every registry. Without it, $DOCKER_CONFIG/config.json or ~/.docker/config.json is used."`
	RegistryCertificate string        `flag:"registry-certificate" env:"PLUGIN_REGISTRY_CERTIFICATE" group:"Registry access" doc:"Extra CA certificate(s) to trust, as a PEM file path or PEM content."`
	Insecure            bool          `flag:"insecure" env:"PLUGIN_INSECURE" group:"Registry access" doc:"Allow plain HTTP to the registries (loopback registries are always allowed): a registry that answers TLS is still reached over TLS, its certificate verified. It does not skip certificate checks (docker's insecure-registries does; here that is PLUGIN_SKIP_TLS_VERIFY), and does not apply to the vulnerability database."`
	SkipTLSVerify       bool          `flag:"skip-tls-verify" env:"PLUGIN_SKIP_TLS_VERIFY" group:"Registry access" doc:"Do not verify registry TLS certificates (pushes, sources, base images, signatures, the vulnerability database). Prefer PLUGIN_REGISTRY_CERTIFICATE with the registry's CA."`
	PushRetry           int           `flag:"push-retry" env:"PLUGIN_PUSH_RETRY" default:"3" group:"Registry access" doc:"Retries, with backoff, of a request that failed with 408, 429, 5xx or a dropped connection; never on other 4xx."`
	RegistryTimeout     time.Duration `flag:"registry-timeout" env:"PLUGIN_REGISTRY_TIMEOUT" default:"30s" group:"Registry access" doc:"Bound on connecting to a registry and on waiting for each response."`
	RegistryRoutes      []string      `flag:"registry-routes" env:"PLUGIN_REGISTRY_ROUTES" group:"Registry access" doc:"HOST=127.0.0.1:PORT or HOST=https://127.0.0.1:PORT pairs, comma separated: every request for registry HOST goes to that loopback address instead, and no reference changes. Plain: over HTTP and without logging in (a local stand-in; hoist pipeline run --local sets it in the plugin images it runs). https: over HTTPS, the certificate checked for HOST and the login as usual (curl's --resolve)."`
	Logins              string        `flag:"logins" env:"PLUGIN_LOGINS" secret:"true" group:"Registry access" doc:"Woodpecker's list of registry logins, JSON: [{\"registry\": HOST, \"username\": U, \"password\": P}, {\"registry\": ECR_HOST, \"aws_access_key_id\": K, \"aws_secret_access_key\": S, \"aws_region\": R}]; each registry is logged in to with its own (an ECR one through ECR's token; no keys on an ECR host: the default AWS credential chain). An empty registry is Docker Hub; --registry's own login wins for its registry. A docker config or mirrors per login, a registry named twice, or a login without credentials are refused."`

	// Registry kinds.
	RegistryType     string `flag:"registry-type" env:"PLUGIN_REGISTRY_TYPE" group:"Registry kinds" doc:"Kind of PLUGIN_REGISTRY: docker (any OCI registry), ecr, gar, gcr or acr; it builds the references and logs in the cloud's way, and is the artifact file's registryType. Unset: inferred from the registry's host (ACCOUNT.dkr.ecr.REGION.amazonaws.com and public.ecr.aws: ecr; LOCATION-docker.pkg.dev: gar; gcr.io: gcr; NAME.azurecr.io: acr; any other: docker)."`
	Account          string `flag:"account" env:"PLUGIN_ACCOUNT,ECR_ACCOUNT" group:"Registry kinds" doc:"ECR: the AWS account id; with PLUGIN_REGION it names the registry when PLUGIN_REGISTRY is empty."`
	Region           string `flag:"region" env:"PLUGIN_REGION,ECR_REGION,PLUGIN_AWS_REGION,AWS_REGION" group:"Registry kinds" doc:"ECR: the AWS region (default: the region the registry host names, else us-east-1)."`
	FIPS             bool   `flag:"fips" env:"PLUGIN_FIPS" group:"Registry kinds" doc:"ECR: use the FIPS registry endpoint of the region."`
	AccessKey        string `flag:"access-key" env:"PLUGIN_ACCESS_KEY,ECR_ACCESS_KEY,PLUGIN_AWS_ACCESS_KEY_ID,AWS_ACCESS_KEY_ID" secret:"true" group:"Registry kinds" doc:"ECR: AWS access key id (without one, the default AWS credential chain)."`
	SecretKey        string `flag:"secret-key" env:"PLUGIN_SECRET_KEY,ECR_SECRET_KEY,PLUGIN_AWS_SECRET_ACCESS_KEY,AWS_SECRET_ACCESS_KEY" secret:"true" group:"Registry kinds" doc:"ECR: AWS secret access key."`
	AssumeRole       string `flag:"assume-role" env:"PLUGIN_ASSUME_ROLE" group:"Registry kinds" doc:"ECR: a role ARN to assume (with PLUGIN_OIDC_TOKEN_ID: web identity federation)."`
	ExternalID       string `flag:"external-id" env:"PLUGIN_EXTERNAL_ID" secret:"true" group:"Registry kinds" doc:"ECR: the external id for the assumed role."`
	OIDCToken        string `flag:"oidc-token" env:"PLUGIN_OIDC_TOKEN_ID" secret:"true" group:"Registry kinds" doc:"An OIDC token from the CI, exchanged for cloud credentials (ECR: AssumeRoleWithWebIdentity)."`
	CreateRepository bool   `flag:"create-repository" env:"PLUGIN_CREATE_REPOSITORY,ECR_CREATE_REPOSITORY,PLUGIN_ECR_CREATE_REPOSITORY" group:"Registry kinds" doc:"ECR: create the repository when it does not exist."`
	LifecyclePolicy  string `flag:"lifecycle-policy" env:"PLUGIN_LIFECYCLE_POLICY,PLUGIN_ECR_LIFECYCLE_POLICY" group:"Registry kinds" doc:"ECR: a lifecycle policy file, applied to the repository before every push."`
	ScanOnPush       bool   `flag:"scan-on-push" env:"PLUGIN_SCAN_ON_PUSH,PLUGIN_ECR_SCAN_ON_PUSH" group:"Registry kinds" doc:"ECR: the repository's scan-on-push, true or false, set when hoist creates the repository and before every push; unset, it is left as it is (the peers set it only with PLUGIN_CREATE_REPOSITORY, and then false when unset)."`
	RepositoryPolicy string `flag:"repository-policy" env:"PLUGIN_REPOSITORY_POLICY,PLUGIN_ECR_REPOSITORY_POLICY" group:"Registry kinds" doc:"ECR: a repository policy file, applied to the repository before every push."`
	ECRRegistry      string `flag:"ecr-registry" env:"PLUGIN_ECR_REGISTRY" group:"Registry kinds" doc:"A further registry host that is ECR, for a run mixing kinds (ECR's own amazonaws.com hosts are recognised anyway)."`
	ECREndpoint      string `flag:"ecr-endpoint" env:"PLUGIN_ECR_ENDPOINT" group:"Registry kinds" doc:"ECR API endpoint override (private clouds, tests)."`
	STSEndpoint      string `flag:"sts-endpoint" env:"PLUGIN_STS_ENDPOINT" group:"Registry kinds" doc:"AWS STS endpoint override."`

	JSONKey        string `flag:"json-key" env:"PLUGIN_JSON_KEY,GCR_JSON_KEY,GOOGLE_CREDENTIALS,TOKEN" secret:"true" group:"Registry kinds" doc:"GAR/GCR: a service-account JSON key: JSON, base64 JSON, or a file path."`
	AccessToken    string `flag:"access-token" env:"PLUGIN_ACCESS_TOKEN,ACCESS_TOKEN" secret:"true" group:"Registry kinds" doc:"GAR/GCR: a ready OAuth access token. For any other registry, as plugins/docker takes ACCESS_TOKEN: the login oauth2accesstoken with this token for --registry, unless --username and --password are set."`
	Location       string `flag:"location" env:"PLUGIN_LOCATION" group:"Registry kinds" doc:"GAR: the location (us, europe-west1, ...); with PLUGIN_PROJECT_ID it names LOCATION-docker.pkg.dev/PROJECT when PLUGIN_REGISTRY is empty."`
	ProjectID      string `flag:"project-id" env:"PLUGIN_PROJECT_ID" group:"Registry kinds" doc:"GAR/GCR: the project id, when PLUGIN_REGISTRY does not carry it."`
	ProjectNumber  string `flag:"project-number" env:"PLUGIN_PROJECT_NUMBER" group:"Registry kinds" doc:"GAR/GCR workload identity: the project of the pool."`
	PoolID         string `flag:"pool-id" env:"PLUGIN_POOL_ID" group:"Registry kinds" doc:"GAR/GCR workload identity: the pool id."`
	ProviderID     string `flag:"provider-id" env:"PLUGIN_PROVIDER_ID" group:"Registry kinds" doc:"GAR/GCR workload identity: the provider id."`
	ServiceAccount string `flag:"service-account-email" env:"PLUGIN_SERVICE_ACCOUNT_EMAIL" group:"Registry kinds" doc:"GAR/GCR workload identity: the service account to act as."`
	GARRegistry    string `flag:"gar-registry" env:"PLUGIN_GAR_REGISTRY" group:"Registry kinds" doc:"A further registry host that is GAR/GCR, for a run mixing kinds (pkg.dev and gcr.io hosts are recognised anyway)."`
	GoogleSTSURL   string `flag:"google-sts-endpoint" env:"PLUGIN_GOOGLE_STS_ENDPOINT" group:"Registry kinds" doc:"Google STS endpoint override."`
	GoogleIAMURL   string `flag:"google-iam-endpoint" env:"PLUGIN_GOOGLE_IAM_ENDPOINT" group:"Registry kinds" doc:"Google IAM credentials endpoint override."`

	TenantID       string `flag:"tenant-id" env:"TENANT_ID,AZURE_TENANT_ID,PLUGIN_TENANT_ID" group:"Registry kinds" doc:"ACR: the Azure AD tenant. The ACR names are read in the ACR plugins' order: the bare names first, PLUGIN_* last."`
	ClientID       string `flag:"client-id" env:"CLIENT_ID,AZURE_CLIENT_ID,PLUGIN_CLIENT_ID,AZURE_APP_ID" group:"Registry kinds" doc:"ACR: the service principal (application) id. The plugins disagree on PLUGIN_CLIENT_ID and AZURE_APP_ID: given both, they must say the same."`
	ClientSecret   string `flag:"client-secret" env:"CLIENT_SECRET,PLUGIN_CLIENT_SECRET,AZURE_CLIENT_SECRET" secret:"true" group:"Registry kinds" doc:"ACR: the service principal's client secret."`
	ClientCert     string `flag:"client-certificate" env:"CLIENT_CERTIFICATE,PLUGIN_CLIENT_CERTIFICATE" secret:"true" group:"Registry kinds" doc:"ACR: the service principal's certificate and key, PEM or base64 PEM."`
	AzureAuthority string `flag:"azure-authority-host" env:"AZURE_AUTHORITY_HOST,PLUGIN_AZURE_AUTHORITY_HOST" group:"Registry kinds" doc:"ACR: Azure AD authority override (sovereign clouds, tests)."`
	ACRRegistry    string `flag:"acr-registry" env:"PLUGIN_ACR_REGISTRY" group:"Registry kinds" doc:"A further registry host that is ACR, for a run mixing kinds (azurecr.io hosts are recognised anyway)."`

	PartialLogin bool `flag:"partial-login" env:"PLUGIN_PARTIAL_LOGIN" group:"Registry kinds" doc:"When the credentials of some registries cannot be had, push to the others instead of pushing nothing (the run still fails)."`

	// Docker daemon.
	DockerHost string `flag:"docker-host" env:"DOCKER_HOST" default:"unix:///var/run/docker.sock" group:"Docker daemon" doc:"Docker daemon to look up --source-image in."`
	DaemonOff  bool   `flag:"daemon-off" env:"PLUGIN_DAEMON_OFF" group:"Docker daemon" doc:"Accepted as the peers send it (Harness sets it on every VM and Cloud step): hoist never starts a Docker daemon, so it changes nothing. A step that needs a daemon (--load, --builder-driver=docker, a source image found only there) uses the one at DOCKER_HOST; any other step never touches it."`

	// Performance.
	MaxParallel int  `flag:"max-parallel" env:"PLUGIN_MAX_PARALLEL" default:"0" group:"Performance" doc:"Repositories pushed at once (the tags of one repository are pushed together); 0 means all."`
	Jobs        int  `flag:"jobs" env:"PLUGIN_JOBS" default:"4" group:"Performance" doc:"Blobs uploaded at once per destination."`
	FailFast    bool `flag:"fail-fast" env:"PLUGIN_FAIL_FAST" group:"Performance" doc:"Stop every destination at the first failure instead of letting the others finish."`

	// Outputs.
	DigestFile   string `flag:"digest-file" env:"PLUGIN_DIGEST_FILE" group:"Outputs" doc:"Write the pushed image's digest (sha256:...) to this file."`
	OutputFile   string `flag:"output-file" env:"DRONE_OUTPUT" group:"Outputs" doc:"Write step outputs as KEY=value lines (digest, IMAGE, IMAGE_REFS, IMAGE_DIGEST_REF) to this file, as Drone and Harness read it."`
	ArtifactFile string `flag:"artifact-file" env:"PLUGIN_ARTIFACT_FILE" group:"Outputs" doc:"Write the Harness/Drone artifact JSON (kind docker/v1) listing every pushed image to this file."`
	CardPath     string `flag:"card-path" env:"DRONE_CARD_PATH" group:"Outputs" doc:"Write the step's card (the image, its tags, digest and size; the scan verdict and the signed repositories when there are any) here, as the peers write it for the Drone and Harness UI: /dev/stdout or /dev/stderr get it as the runner's escape sequence (Drone's runner sets /dev/stdout; the CLI writes a /dev/stdout card to stderr, its stdout being its result), any other path a JSON file. It holds nothing but those fields. Unset: no card."`

	// Scan gate (Trivy). The flags keep Trivy's names and meanings.
	Scan              bool          `flag:"scan" env:"PLUGIN_SCAN" group:"Scan gate" doc:"Scan the image with Trivy before anything is pushed (the same image, so the digest scanned is the digest pushed) and push nothing when the gate fails; the verdict is recorded in --scan-records."`
	RequireScan       bool          `flag:"require-scan" env:"PLUGIN_REQUIRE_SCAN" group:"Scan gate" doc:"Push only a digest that has a passing scan record in --scan-records made in this pipeline run (by hoist scan or a PLUGIN_SCAN step, in any process); refuse any other, and a record another run, the repository or a restored cache left."`
	ScanScanners      []string      `flag:"scanners" env:"PLUGIN_SCAN_SCANNERS" default:"vuln,secret" group:"Scan gate" doc:"Trivy's --scanners: vuln and/or secret (secret needs no database)."`
	ScanSeverity      []string      `flag:"severity" env:"PLUGIN_SCAN_SEVERITY" default:"UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL" group:"Scan gate" doc:"Trivy's --severity: the severities reported and gated on, comma separated."`
	ScanIgnoreUnfixed bool          `flag:"ignore-unfixed" env:"PLUGIN_SCAN_IGNORE_UNFIXED" group:"Scan gate" doc:"Trivy's --ignore-unfixed: leave out vulnerabilities that have no fixed version."`
	ScanIgnoreFile    string        `flag:"ignorefile" env:"PLUGIN_SCAN_IGNOREFILE" default:".trivyignore" group:"Scan gate" doc:"Trivy's --ignorefile: findings to leave out, one id per line (.trivyignore) or .trivyignore.yaml. The default may be absent; a file named explicitly must exist."`
	ScanSkipFiles     []string      `flag:"skip-files" env:"PLUGIN_SCAN_SKIP_FILES" group:"Scan gate" doc:"Trivy's --skip-files: image paths (globs) not scanned, comma separated."`
	ScanSkipDirs      []string      `flag:"skip-dirs" env:"PLUGIN_SCAN_SKIP_DIRS" group:"Scan gate" doc:"Trivy's --skip-dirs: image directories (globs) not scanned, comma separated."`
	ScanFormat        []string      `flag:"format" env:"PLUGIN_SCAN_FORMAT" default:"table" group:"Scan gate" doc:"Trivy's --format, one or several: table, json, sarif, cyclonedx, spdx-json. Each goes to the --output at the same position; formats past the last --output (at most one) go to standard output (hoist scan) or the log, so --format json,table --output r.json writes r.json and prints the table."`
	ScanOutput        []string      `flag:"output" env:"PLUGIN_SCAN_OUTPUT" group:"Scan gate" doc:"Trivy's --output: the report files, comma separated, one per --format in order; each directory must exist."`
	ScanExitCode      int           `flag:"exit-code" env:"PLUGIN_SCAN_EXIT_CODE" default:"7" group:"Scan gate" doc:"Trivy's --exit-code: the exit code when the gate fails (findings remain after --severity, --ignore-unfixed and the ignore file). 0 reports without gating; the record then says failed and PLUGIN_REQUIRE_SCAN refuses the digest."`
	ScanDBRepository  []string      `flag:"db-repository" env:"PLUGIN_SCAN_DB_REPOSITORY" group:"Scan gate" doc:"Trivy's --db-repository: OCI registries holding Trivy's vulnerability database (a mirror of ghcr.io/aquasecurity/trivy-db:2), fetched when the cache has no usable database. hoist fetches it itself, with the registries' TLS settings (PLUGIN_REGISTRY_CERTIFICATE, PLUGIN_SKIP_TLS_VERIFY) and logins; over plain HTTP only from loopback (PLUGIN_INSECURE does not apply)."`
	ScanDBDigest      string        `flag:"db-digest" env:"PLUGIN_SCAN_DB_DIGEST" group:"Scan gate" doc:"Pin the vulnerability database: the manifest digest (sha256:...) of the database artifact, as crane digest prints it. hoist fetches it from --db-repository and refuses (exit 7, both digests named) an artifact of another digest; a cached database counts only when hoist fetched it with that digest in this pipeline run. The scan record and the provenance name the digest of the database used, pinned or not."`
	ScanCacheDir      string        `flag:"cache-dir" env:"PLUGIN_SCAN_CACHE_DIR,TRIVY_CACHE_DIR" group:"Scan gate" doc:"Trivy's --cache-dir: its database (DIR/db/trivy.db and metadata.json, as trivy --download-db-only writes them; a local database directory goes here) and its layer cache. Default: $XDG_CACHE_HOME/trivy or ~/.cache/trivy, as Trivy's."`
	ScanStaleDB       string        `flag:"stale-db" env:"PLUGIN_SCAN_STALE_DB" default:"fail" group:"Scan gate" doc:"A database past its NextUpdate with no --db-repository to refresh it from: fail (the default) or warn and scan with it."`
	ScanTrivy         string        `flag:"trivy" env:"PLUGIN_SCAN_TRIVY" default:"trivy" group:"Scan gate" doc:"The Trivy executable (looked up on PATH, then beside hoist); it must be the version hoist pins."`
	ScanTimeout       time.Duration `flag:"scan-timeout" env:"PLUGIN_SCAN_TIMEOUT" default:"10m" group:"Scan gate" doc:"Bound on one Trivy run (Trivy's --timeout)."`
	ScanRecords       string        `flag:"scan-records" env:"PLUGIN_SCAN_RECORDS" default:".hoist/scans" group:"Scan gate" doc:"Where scan records are written and PLUGIN_REQUIRE_SCAN looks: one JSON file per manifest digest."`

	// Signing.
	Sign              bool   `flag:"sign" env:"PLUGIN_SIGN" group:"Signing" doc:"After every destination holds the image, sign its manifest digest with PLUGIN_SIGN_KEY (cosign's key-based signing, through cosign's Go packages) or keyless (PLUGIN_SIGN_IDENTITY_TOKEN) and store the signature in each destination repository, where cosign verify --key finds it. A step that only builds has nothing to sign. Unset, a key given (PLUGIN_SIGN_KEY or PLUGIN_COSIGN_PRIVATE_KEY) signs, as plugins/docker signs whenever it has PLUGIN_COSIGN_PRIVATE_KEY; false: nothing is signed, with a notice."`
	SignKey           string `flag:"sign-key" env:"PLUGIN_SIGN_KEY,PLUGIN_COSIGN_PRIVATE_KEY" secret:"true" group:"Signing" doc:"The cosign private key (cosign generate-key-pair's cosign.key), as PEM content or a file path."`
	SignPassword      string `flag:"sign-password" env:"PLUGIN_SIGN_PASSWORD,PLUGIN_COSIGN_PASSWORD" secret:"true" group:"Signing" doc:"The password PLUGIN_SIGN_KEY is encrypted with."`
	SignIdentityToken string `flag:"sign-identity-token" env:"PLUGIN_SIGN_IDENTITY_TOKEN,SIGSTORE_ID_TOKEN" secret:"true" group:"Signing" doc:"Keyless signing, in place of PLUGIN_SIGN_KEY: the CI's OIDC identity token (a JWT with the audience sigstore), which Fulcio (PLUGIN_SIGN_FULCIO_URL) exchanges for a short-lived certificate of a key made for this step; cosign verify --certificate-identity --certificate-oidc-issuer checks the signature. Not tested against the public Sigstore services (see docs/usage.md)."`
	SignFulcioURL     string `flag:"sign-fulcio-url" env:"PLUGIN_SIGN_FULCIO_URL" default:"https://fulcio.sigstore.dev" group:"Signing" doc:"Keyless signing: the Fulcio certificate authority."`
	SignRekorURL      string `flag:"sign-rekor-url" env:"PLUGIN_SIGN_REKOR_URL" default:"https://rekor.sigstore.dev" group:"Signing" doc:"Keyless signing: the Rekor transparency log (API v1) every signature and attestation is recorded in, as cosign does."`
	SignTlogUpload    bool   `flag:"sign-tlog-upload" env:"PLUGIN_SIGN_TLOG_UPLOAD" default:"true" group:"Signing" doc:"Keyless signing: record the signatures in Rekor. false: no record (a verifier then needs --insecure-ignore-tlog), for a private Fulcio without a log."`
	SBOM              bool   `flag:"sbom" env:"PLUGIN_SBOM" group:"Signing" doc:"With PLUGIN_SIGN: attach the image's CycloneDX SBOM, written by Trivy from the very bytes pushed (each platform's), to the signed digest as a signed in-toto attestation (cosign verify-attestation --type cyclonedx)."`
	Provenance        bool   `flag:"provenance" env:"PLUGIN_PROVENANCE" group:"Signing" doc:"With PLUGIN_SIGN: attach a SLSA provenance v1 statement (the CI's source and commit, the Dockerfile and its digest, the build arguments that are not secrets, the base images as BuildKit resolved them, builder and hoist versions, the scan record and its verdict) as a signed in-toto attestation (cosign verify-attestation --type slsaprovenance1)."`
	CosignParams      string `flag:"cosign-params" env:"PLUGIN_COSIGN_PARAMS" group:"Signing" doc:"Flags of cosign sign, as plugins/docker passes them on (split on white space): -a/--annotations key=value (signed in the signature's payload; cosign verify -a key=value checks them), --tlog-upload and --rekor-url (keyless signing's log: PLUGIN_SIGN_TLOG_UPLOAD, PLUGIN_SIGN_REKOR_URL; a key's signature is recorded in no log, so with a key only --tlog-upload=false is taken) and -y/--yes (hoist never asks). Any other flag is refused (exit 2), naming it."`

	// Promotion.
	Promote            bool     `flag:"promote" env:"PLUGIN_PROMOTE" group:"Promote" doc:"With PLUGIN_PUSH_ONLY and a registry PLUGIN_SOURCE_IMAGE: promote that digest (a tag is resolved once, and the digest printed) to every destination, registry to registry, with everything that hangs off it: cosign's signatures, attestations and SBOM attachments (sha256-<hex>.sig/.att/.sbom tags) and the OCI referrers of the digest and, for an index, of each of its manifests. Nothing is re-signed; cosign verify passes on every destination because the digest is the same. Each destination gets the image untagged, then what hangs off it, then its tags: one whose copy fails gets no tag. The source is looked up in its registry only (never the Docker daemon or the workspace image store)."`
	PromoteKey         string   `flag:"promote-key" env:"PLUGIN_PROMOTE_KEY" group:"Promote" doc:"The cosign public key (cosign.pub), as PEM content or a file path, that the source's signature and the attestations PLUGIN_PROMOTE_REQUIRE names must verify with, on the source, before any byte moves (exit 9 when they do not, and nothing is written anywhere). For keyless signatures, give the identity instead (PLUGIN_PROMOTE_CERTIFICATE_IDENTITY and the settings after it)."`
	PromoteRequire     []string `flag:"promote-require" env:"PLUGIN_PROMOTE_REQUIRE" group:"Promote" doc:"What the source must carry, verified with PLUGIN_PROMOTE_KEY (or the keyless identity) before the promotion: signature, sbom, provenance, scan (a signed provenance naming a passing scan record, and none naming a failing one), comma separated. signature is implied by a key."`
	PromoteIdentity    string   `flag:"promote-certificate-identity" env:"PLUGIN_PROMOTE_CERTIFICATE_IDENTITY" group:"Promote" doc:"Keyless, in place of PLUGIN_PROMOTE_KEY: the identity the source's signer must have been certified for (the certificate's subject alternative name: an email or a URI, matched exactly), as cosign verify --certificate-identity. Needs PLUGIN_PROMOTE_CERTIFICATE_OIDC_ISSUER, and PLUGIN_PROMOTE_CA_ROOTS or PLUGIN_PROMOTE_TRUSTED_ROOT."`
	PromoteIssuer      string   `flag:"promote-certificate-oidc-issuer" env:"PLUGIN_PROMOTE_CERTIFICATE_OIDC_ISSUER" group:"Promote" doc:"Keyless: the OIDC issuer of the signer's identity token, recorded in its certificate, matched exactly (cosign verify --certificate-oidc-issuer)."`
	PromoteCARoots     string   `flag:"promote-ca-roots" env:"PLUGIN_PROMOTE_CA_ROOTS" group:"Promote" doc:"Keyless: the certificate authority's root certificate (Fulcio's), then any intermediates, as PEM content or a file path (cosign verify --ca-roots). Certificate transparency (SCTs) is not checked with it (use PLUGIN_PROMOTE_TRUSTED_ROOT for that)."`
	PromoteRekorKey    string   `flag:"promote-rekor-key" env:"PLUGIN_PROMOTE_REKOR_KEY" group:"Promote" doc:"Keyless: the transparency log's public key (PEM content or a file path; cosign's SIGSTORE_REKOR_PUBLIC_KEY). Each signature must then carry the log's signed entry timestamp, checked offline, and its short-lived certificate is checked at the time the log recorded it. Unset: the log is not consulted and the certificate must be valid now (as cosign verify --insecure-ignore-tlog)."`
	PromoteTrustedRoot string   `flag:"promote-trusted-root" env:"PLUGIN_PROMOTE_TRUSTED_ROOT" group:"Promote" doc:"Keyless, in place of PLUGIN_PROMOTE_CA_ROOTS and PLUGIN_PROMOTE_REKOR_KEY: a Sigstore trusted root (trusted_root.json, a file path; cosign verify --trusted-root), whose certificate authorities the certificate must chain to, whose transparency logs' timestamps each signature must carry, and whose CT logs' SCT the certificate must carry, when it lists any."`

	// Behaviour.
	Progress string `flag:"progress" env:"PLUGIN_PROGRESS" default:"auto" group:"General" doc:"Progress display: auto (bars on a terminal, plain lines otherwise), tty, plain or quiet."`
	Debug    bool   `flag:"debug" env:"PLUGIN_DEBUG" group:"General" doc:"Log every registry request (secrets masked)."`
	EnvFile  string `flag:"env-file" env:"PLUGIN_ENV_FILE" group:"General" doc:"A dotenv file loaded before the other settings; variables already set win. It may set only the settings marked as from an env file (the tags, build arguments with values, labels, the target, the platforms, no-cache and pull); any other variable in it, a setting or not, is refused (exit 2, naming the file, the line and the variable)."`
	RunID    string `flag:"run-id" env:"PLUGIN_RUN_ID" group:"General" doc:"A value unique to this pipeline run, for a CI whose own run variables hoist does not know (Jenkins: $BUILD_TAG, Buildkite: $BUILDKITE_BUILD_ID, ...); with --commit-sha it is the run identity that workspace state (scan records, the compression cache, the image store) must carry to count, and it comes before the CI's variables. With CI set and no run identity, that state counts for nothing."`

	// Kaniko executor flags (tag kaniko: the executor flag it is passed as;
	// used only when Kaniko builds).
	SnapshotMode     string   `flag:"snapshot-mode" env:"PLUGIN_SNAPSHOT_MODE" kaniko:"--snapshot-mode" group:"Kaniko" doc:"Kaniko snapshot mode: full, redo or time."`
	CacheTTL         string   `flag:"cache-ttl" env:"PLUGIN_CACHE_TTL" kaniko:"--cache-ttl" group:"Kaniko" doc:"How long Kaniko's layer cache entries stay valid (a duration such as 6h; a bare number means hours)."`
	Reproducible     bool     `flag:"reproducible" env:"PLUGIN_REPRODUCIBLE" kaniko:"--reproducible" group:"Kaniko" doc:"Strip timestamps from Kaniko's image for reproducible digests."`
	SkipUnusedStages bool     `flag:"skip-unused-stages" env:"PLUGIN_SKIP_UNUSED_STAGES" kaniko:"--skip-unused-stages" group:"Kaniko" doc:"Kaniko builds only the stages the target needs."`
	UseNewRun        bool     `flag:"use-new-run" env:"PLUGIN_USE_NEW_RUN" kaniko:"--use-new-run" group:"Kaniko" doc:"Kaniko's experimental RUN implementation."`
	SingleSnapshot   bool     `flag:"single-snapshot" env:"PLUGIN_SINGLE_SNAPSHOT" kaniko:"--single-snapshot" group:"Kaniko" doc:"Kaniko takes one snapshot at the end of the build."`
	CacheCopyLayers  bool     `flag:"cache-copy-layers" env:"PLUGIN_CACHE_COPY_LAYERS" kaniko:"--cache-copy-layers" group:"Kaniko" doc:"Kaniko caches COPY layers too."`
	CacheRunLayers   bool     `flag:"cache-run-layers" env:"PLUGIN_CACHE_RUN_LAYERS" kaniko:"--cache-run-layers" group:"Kaniko" doc:"Kaniko caches RUN layers (its default)."`
	IgnorePaths      []string `flag:"ignore-path" env:"PLUGIN_IGNORE_PATHS,PLUGIN_IGNORE_PATH" kaniko:"--ignore-path" group:"Kaniko" doc:"Paths Kaniko leaves out of snapshots, comma separated."`
	ContextSubPath   string   `flag:"context-sub-path" env:"PLUGIN_CONTEXT_SUB_PATH" kaniko:"--context-sub-path" group:"Kaniko" doc:"Sub-path of the context Kaniko builds."`
	Verbosity        string   `flag:"verbosity" env:"PLUGIN_VERBOSITY" kaniko:"--verbosity" group:"Kaniko" doc:"Kaniko's log level: panic, fatal, error, warn, info, debug or trace."`
	FSExtractRetry   int      `flag:"image-fs-extract-retry" env:"PLUGIN_IMAGE_FS_EXTRACT_RETRY" default:"0" kaniko:"--image-fs-extract-retry" group:"Kaniko" doc:"Retries of Kaniko's base-image extraction."`
	DownloadRetry    int      `flag:"image-download-retry" env:"PLUGIN_IMAGE_DOWNLOAD_RETRY" default:"0" kaniko:"--image-download-retry" group:"Kaniko" doc:"Retries of Kaniko's base-image downloads."`

	origin map[string]string // flag name → where its value came from
}
