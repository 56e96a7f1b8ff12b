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
type Settings struct {
	// Mode.
	PushOnly bool `flag:"push-only" env:"PLUGIN_PUSH_ONLY" group:"Mode" doc:"Push a pre-built image (from --source-tar-path, --source-image or the local daemon); do not build."`
	NoPush   bool `flag:"no-push" env:"PLUGIN_NO_PUSH,PLUGIN_DRY_RUN" group:"Mode" doc:"Build only; push nothing. PLUGIN_NO_PUSH is read before PLUGIN_DRY_RUN."`

	// Source of a pre-built image.
	SourceTarPath string `flag:"source-tar-path" env:"PLUGIN_SOURCE_TAR_PATH" group:"Source" doc:"Image to push: a docker-archive or OCI archive tarball (plain or gzip) or an OCI image layout directory."`
	SourceImage   string `flag:"source-image" env:"PLUGIN_SOURCE_IMAGE" group:"Source" doc:"Image to push by reference: looked up in the local Docker daemon, then in its registry. Inside a tarball holding several images it picks one. No tag means latest; name@sha256:... works."`

	// Destinations.
	Repo         string   `flag:"repo" env:"PLUGIN_REPO" group:"Destination" doc:"Repository to push to, e.g. registry.example.com/team/app; combined with every tag."`
	Tags         []string `flag:"tags" env:"PLUGIN_TAG,PLUGIN_TAGS" default:"latest" group:"Destination" doc:"Tags, comma separated. Without a flag or variable the file .tags in the working directory is read; else latest."`
	Destinations []string `flag:"destination" env:"PLUGIN_DESTINATIONS" group:"Destination" doc:"Extra full references (registry/repo:tag), comma separated or a repeated flag; each may be on another registry."`

	// Registry access.
	Registry            string        `flag:"registry" env:"PLUGIN_REGISTRY,DOCKER_REGISTRY" group:"Registry access" doc:"Registry that --username and --password log in to (default: the registry of --repo)."`
	Username            string        `flag:"username" env:"PLUGIN_USERNAME,DOCKER_USERNAME" group:"Registry access" doc:"User name for --registry."`
	Password            string        `flag:"password" env:"PLUGIN_PASSWORD,DOCKER_PASSWORD" secret:"true" group:"Registry access" doc:"Password or token for --registry."`
	Config              string        `flag:"config" env:"PLUGIN_CONFIG,DOCKER_PLUGIN_CONFIG" secret:"true" group:"Registry access" doc:"Docker config.json as JSON content or as a file path; its auths and credential helpers are used for every registry. Without it, $DOCKER_CONFIG/config.json or ~/.docker/config.json is used."`
	RegistryCertificate string        `flag:"registry-certificate" env:"PLUGIN_REGISTRY_CERTIFICATE" group:"Registry access" doc:"Extra CA certificate(s) to trust, as a PEM file path or PEM content."`
	Insecure            bool          `flag:"insecure" env:"PLUGIN_INSECURE" group:"Registry access" doc:"Allow plain HTTP to the registries (loopback registries are always allowed)."`
	SkipTLSVerify       bool          `flag:"skip-tls-verify" env:"PLUGIN_SKIP_TLS_VERIFY" group:"Registry access" doc:"Do not verify registry TLS certificates."`
	PushRetry           int           `flag:"push-retry" env:"PLUGIN_PUSH_RETRY" default:"3" group:"Registry access" doc:"Retries, with backoff, of a request that failed with 408, 429, 5xx or a dropped connection; never on other 4xx."`
	RegistryTimeout     time.Duration `flag:"registry-timeout" env:"PLUGIN_REGISTRY_TIMEOUT" default:"30s" group:"Registry access" doc:"Bound on connecting to a registry and on waiting for each response."`

	// Docker daemon.
	DockerHost string `flag:"docker-host" env:"DOCKER_HOST" default:"unix:///var/run/docker.sock" group:"Docker daemon" doc:"Docker daemon to look up --source-image in."`
	DaemonOff  bool   `flag:"daemon-off" env:"PLUGIN_DAEMON_OFF" group:"Docker daemon" doc:"Never use a Docker daemon."`

	// Performance.
	MaxParallel int  `flag:"max-parallel" env:"PLUGIN_MAX_PARALLEL" default:"0" group:"Performance" doc:"Destinations pushed at once; 0 means all."`
	Jobs        int  `flag:"jobs" env:"PLUGIN_JOBS" default:"4" group:"Performance" doc:"Blobs uploaded at once per destination."`
	FailFast    bool `flag:"fail-fast" env:"PLUGIN_FAIL_FAST" group:"Performance" doc:"Stop every destination at the first failure instead of letting the others finish."`

	// Outputs.
	DigestFile   string `flag:"digest-file" env:"PLUGIN_DIGEST_FILE" group:"Outputs" doc:"Write the pushed image's digest (sha256:...) to this file."`
	OutputFile   string `flag:"output-file" env:"DRONE_OUTPUT" group:"Outputs" doc:"Write step outputs as KEY=value lines (digest, IMAGE, IMAGE_REFS, IMAGE_DIGEST_REF) to this file, as Drone and Harness read it."`
	ArtifactFile string `flag:"artifact-file" env:"PLUGIN_ARTIFACT_FILE" group:"Outputs" doc:"Write the Harness/Drone artifact JSON (kind docker/v1) listing every pushed image to this file."`
	RegistryType string `flag:"registry-type" env:"PLUGIN_REGISTRY_TYPE" default:"Docker" group:"Outputs" doc:"Registry type recorded in the artifact file: Docker, ECR, GCR, GAR or ACR."`

	// Behaviour.
	Progress string `flag:"progress" env:"PLUGIN_PROGRESS" default:"auto" group:"General" doc:"Progress display: auto (bars on a terminal, plain lines otherwise), tty, plain or quiet."`
	Debug    bool   `flag:"debug" env:"PLUGIN_DEBUG" group:"General" doc:"Log every registry request (secrets masked)."`
	EnvFile  string `flag:"env-file" env:"PLUGIN_ENV_FILE" group:"General" doc:"A dotenv file loaded before the other settings; variables already set win."`

	origin map[string]string // flag name → where its value came from
}
