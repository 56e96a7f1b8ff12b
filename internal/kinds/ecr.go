// Package kinds holds the registry kinds beyond a plain Docker registry:
// Amazon ECR, Google Artifact Registry and Container Registry, Azure
// Container Registry. Each is an authn.Keychain that answers for the hosts
// it owns (anonymous elsewhere, so keychains compose), logs in the way its
// cloud does with the cloud's own SDK, once per run, and builds the
// references the vendor's build-and-push step builds.
package kinds

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/registry"
)

// ErrLogin marks credentials a cloud would not give.
var ErrLogin = errors.New("registry login failed")

// ErrConfig marks missing or malformed kind settings.
var ErrConfig = errors.New("invalid registry kind settings")

var ecrHost = regexp.MustCompile(`^(\d{12})\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)

// ECRHost is the registry of an account in a region: the FIPS endpoint and
// the China partition when asked.
func ECRHost(account, region string, fips bool) string {
	h := account + ".dkr.ecr"
	if fips {
		h += "-fips"
	}
	h += "." + region + ".amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		h += ".cn"
	}
	return h
}

// ECRConfig holds Amazon ECR's settings.
type ECRConfig struct {
	Region, Account       string
	FIPS                  bool
	AccessKey, SecretKey  string
	AssumeRole            string
	ExternalID            string
	Endpoint, STSEndpoint string
	// Registry is one more registry ECR's login serves (PLUGIN_ECR_REGISTRY).
	Registry string
	// CreateRepository creates missing repositories, with the lifecycle
	// and repository policies of these files.
	CreateRepository                  bool
	LifecyclePolicy, RepositoryPolicy string
	// ScanOnPush, when set, is the repository's scan-on-push: given to a
	// repository hoist creates, and put before every push.
	ScanOnPush *bool
}

// ecrKind is Amazon ECR: ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO.
type ecrKind struct{}

func (ecrKind) Names() []string       { return []string{"ecr"} }
func (ecrKind) Owns(host string) bool { return IsECRHost(host) }
func (ecrKind) Infer(host string) string {
	if IsECRHost(host) {
		return "ecr"
	}
	return ""
}

// Registry is PLUGIN_REGISTRY, or the account's registry in the region.
func (ecrKind) Registry(c *Config) (string, error) {
	if c.Registry != "" {
		return registry.NormalizeHost(c.Registry)
	}
	if c.ECR.Account != "" {
		region := c.ECR.Region
		if region == "" {
			region = DefaultRegion
		}
		return ECRHost(c.ECR.Account, region, c.ECR.FIPS), nil
	}
	return "", fmt.Errorf("%w: ECR needs its registry: PLUGIN_REGISTRY (ACCOUNT.dkr.ecr.REGION.amazonaws.com) or PLUGIN_ACCOUNT with PLUGIN_REGION", ErrConfig)
}

func (k ecrKind) Keychain(c *Config, selected bool, dests []string) (Keychain, error) {
	if !used(selected, nonEmpty(c.ECR.Registry), dests, k.Owns) {
		return nil, nil
	}
	e := &ECR{cfg: c.ECR, OIDCToken: c.OIDCToken, HTTP: c.HTTP, Env: c.Env}
	if selected {
		host, err := k.Registry(c)
		if err != nil {
			return nil, err
		}
		e.Hosts = append(e.Hosts, host)
		if e.cfg.Region == "" {
			e.cfg.Region = RegionOf(host)
		}
	}
	if e.cfg.Region == "" {
		for _, d := range dests {
			if e.cfg.Region = RegionOf(d); e.cfg.Region != "" {
				break
			}
		}
	}
	extra, err := extraHosts(c.ECR.Registry, "PLUGIN_ECR_REGISTRY")
	e.Hosts = append(e.Hosts, extra...)
	return e, err
}

// nonEmpty is the setting as a list: empty when it is.
func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// ECR logs in to Amazon ECR: static keys, an assumed role (with external
// id), a web identity (OIDC) token, or the default AWS credential chain;
// the registry password is the token ECR's GetAuthorizationToken returns.
type ECR struct {
	cfg       ECRConfig
	OIDCToken string
	// Hosts are registries this keychain serves besides ECR's own names.
	Hosts []string
	HTTP  *http.Client
	// Env is the step's environment, where the default AWS credential
	// chain looks (never the process's).
	Env Lookup

	// only restricts the keychain to Hosts (a PLUGIN_LOGINS entry's);
	// except are hosts another ECR keychain serves instead.
	only    bool
	except  []string
	setting string

	mu   sync.Mutex // guards Hosts once login adds the token's endpoint
	once sync.Once

	clientOnce sync.Once
	ecrClient  *ecr.Client
	clientErr  error
	auth       authn.AuthConfig
	err        error

	// ECR Public's login, separate: another API, in us-east-1 only.
	publicOnce sync.Once
	publicAuth authn.AuthConfig
	publicErr  error
}

// IsECRHost reports whether host is an ECR registry name (a port aside):
// a private registry of any partition, FIPS or not, or ECR Public.
func IsECRHost(host string) bool {
	h := hostname(host)
	return ecrHost.MatchString(h) || h == ECRPublicHost
}

// DefaultRegion is the region of an ECR login whose registry names none,
// as the peers default it.
const DefaultRegion = "us-east-1"

// ECRPublicHost is ECR Public's registry.
const ECRPublicHost = "public.ecr.aws"

// RegionOf is the region an ECR registry host names, "" for none.
func RegionOf(host string) string {
	if m := ecrHost.FindStringSubmatch(hostname(host)); m != nil {
		return m[3]
	}
	return ""
}

// Region is the region the login asks ECR in ("" for the default).
func (e *ECR) Region() string { return e.cfg.Region }

// Serves reports whether this keychain logs in to host.
func (e *ECR) Serves(host string) bool { return e.serves(host) }

func (e *ECR) serves(host string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if slices.Contains(e.except, host) {
		return false
	}
	return slices.Contains(e.Hosts, host) || !e.only && IsECRHost(host)
}

// Resolve implements authn.Keychain.
func (e *ECR) Resolve(res authn.Resource) (authn.Authenticator, error) {
	return e.ResolveContext(context.Background(), res)
}

// ResolveContext implements authn.ContextKeychain.
func (e *ECR) ResolveContext(ctx context.Context, res authn.Resource) (authn.Authenticator, error) {
	if hostname(res.RegistryStr()) == ECRPublicHost {
		return resolve(e.serves, res, func() (authn.AuthConfig, error) { return e.LoginPublic(ctx) })
	}
	return resolve(e.serves, res, func() (authn.AuthConfig, error) { return e.Login(ctx) })
}

// LoginPublic fetches ECR Public's registry credentials once per run, with
// the same AWS credentials, from its API in us-east-1.
func (e *ECR) LoginPublic(ctx context.Context) (authn.AuthConfig, error) {
	e.publicOnce.Do(func() {
		cfg, err := e.config(ctx)
		if err != nil {
			e.publicErr = err
			return
		}
		cfg.Region = DefaultRegion
		c := ecrpublic.NewFromConfig(cfg, func(o *ecrpublic.Options) {
			if e.cfg.Endpoint != "" {
				o.BaseEndpoint = aws.String(e.cfg.Endpoint)
			}
		})
		where := "the ECR Public API in " + DefaultRegion
		if e.cfg.Endpoint != "" {
			where = e.cfg.Endpoint
		}
		out, err := c.GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
		if err != nil {
			e.publicErr = failure(err, ErrLogin, "ECR Public GetAuthorizationToken at %s with %s: %s", where, e.credentialKind(), awsMessage(err))
			return
		}
		var raw []byte
		if out.AuthorizationData != nil && out.AuthorizationData.AuthorizationToken != nil {
			raw, err = base64.StdEncoding.DecodeString(*out.AuthorizationData.AuthorizationToken)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok {
			e.publicErr = fmt.Errorf("%w: ECR Public GetAuthorizationToken at %s returned no usable token", ErrLogin, where)
			return
		}
		e.publicAuth = authn.AuthConfig{Username: user, Password: pass}
	})
	return e.publicAuth, e.publicErr
}

// credentialKind names how the run authenticates, for messages.
func (e *ECR) credentialKind() string {
	if e.setting != "" {
		k := "the default AWS credential chain"
		if e.cfg.AccessKey != "" {
			k = "access key " + maskKey(e.cfg.AccessKey)
		}
		return k + " of " + e.setting
	}
	switch {
	case e.cfg.AssumeRole != "" && e.OIDCToken != "":
		return "web identity (OIDC) token for role " + e.cfg.AssumeRole
	case e.cfg.AssumeRole != "":
		return "assumed role " + e.cfg.AssumeRole
	case e.cfg.AccessKey != "":
		return "access key " + maskKey(e.cfg.AccessKey)
	}
	return "the default AWS credential chain"
}

func maskKey(k string) string {
	if len(k) > 8 {
		return k[:4] + "…" + k[len(k)-4:]
	}
	return "…"
}

func (e *ECR) config(ctx context.Context) (aws.Config, error) {
	region := e.cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	var cfg aws.Config
	if e.cfg.AccessKey != "" || e.cfg.SecretKey != "" {
		if e.cfg.AccessKey == "" || e.cfg.SecretKey == "" {
			return cfg, fmt.Errorf("%w: ECR needs both PLUGIN_ACCESS_KEY and PLUGIN_SECRET_KEY", ErrConfig)
		}
		// Keys the step's environment gave as AWS_ACCESS_KEY_ID may be
		// temporary: their session token goes with them.
		token := ""
		if e.Env.get("AWS_ACCESS_KEY_ID") == e.cfg.AccessKey {
			token = e.Env.get("AWS_SESSION_TOKEN")
		}
		cfg = aws.Config{Region: region, Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(e.cfg.AccessKey, e.cfg.SecretKey, token))}
	} else {
		var err error
		if cfg, err = awsDefaultChain(ctx, e.Env, region, e.HTTP, e.cfg.STSEndpoint); err != nil {
			return cfg, err
		}
	}
	if e.HTTP != nil {
		cfg.HTTPClient = e.HTTP
	}
	if e.cfg.AssumeRole != "" {
		stsc := sts.NewFromConfig(cfg, func(o *sts.Options) {
			if e.cfg.STSEndpoint != "" {
				o.BaseEndpoint = aws.String(e.cfg.STSEndpoint)
			}
		})
		if e.OIDCToken != "" {
			cfg.Credentials = aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(stsc, e.cfg.AssumeRole, tokenValue(e.OIDCToken), func(o *stscreds.WebIdentityRoleOptions) {
				o.RoleSessionName = "hoist"
			}))
		} else {
			cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsc, e.cfg.AssumeRole, func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = "hoist"
				if e.cfg.ExternalID != "" {
					o.ExternalID = aws.String(e.cfg.ExternalID)
				}
			}))
		}
	}
	return cfg, nil
}

type tokenValue string

func (t tokenValue) GetIdentityToken() ([]byte, error) { return []byte(t), nil }

// client is made once per run, so that assumed-role credentials are
// fetched once and shared by every call.
func (e *ECR) client(ctx context.Context) (*ecr.Client, error) {
	e.clientOnce.Do(func() {
		cfg, err := e.config(ctx)
		if err != nil {
			e.clientErr = err
			return
		}
		e.ecrClient = ecr.NewFromConfig(cfg, func(o *ecr.Options) {
			if e.cfg.Endpoint != "" {
				o.BaseEndpoint = aws.String(e.cfg.Endpoint)
			}
		})
	})
	return e.ecrClient, e.clientErr
}

func (e *ECR) endpoint() string {
	if e.cfg.Endpoint != "" {
		return e.cfg.Endpoint
	}
	return "the ECR API in " + e.cfg.Region
}

// Login fetches the registry credentials once per run.
func (e *ECR) Login(ctx context.Context) (authn.AuthConfig, error) {
	e.once.Do(func() {
		c, err := e.client(ctx)
		if err != nil {
			e.err = err
			return
		}
		out, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
		if err != nil {
			e.err = failure(err, ErrLogin, "ECR GetAuthorizationToken at %s with %s: %s", e.endpoint(), e.credentialKind(), awsMessage(err))
			return
		}
		if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
			e.err = fmt.Errorf("%w: ECR GetAuthorizationToken at %s returned no token", ErrLogin, e.endpoint())
			return
		}
		raw, err := base64.StdEncoding.DecodeString(*out.AuthorizationData[0].AuthorizationToken)
		user, pass, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok {
			e.err = fmt.Errorf("%w: ECR GetAuthorizationToken at %s returned a malformed token", ErrLogin, e.endpoint())
			return
		}
		e.auth = authn.AuthConfig{Username: user, Password: pass}
		if p := out.AuthorizationData[0].ProxyEndpoint; p != nil {
			if u, err := url.Parse(*p); err == nil && u.Host != "" && !e.serves(u.Host) {
				e.mu.Lock()
				e.Hosts = append(e.Hosts, u.Host)
				e.mu.Unlock()
			}
		}
	})
	return e.auth, e.err
}

// Secrets returns the registry password, once fetched, for masking.
func (e *ECR) Secrets() []string {
	return append(mask.LoginForms(e.auth.Username, e.auth.Password), mask.LoginForms(e.publicAuth.Username, e.publicAuth.Password)...)
}

// Prepare makes sure the ECR repositories exist (see EnsureRepository).
func (e *ECR) Prepare(ctx context.Context, repos []string) error {
	for _, full := range repos {
		host, r, _ := strings.Cut(full, "/")
		if hostname(host) == ECRPublicHost {
			// ECR Public's repositories are made in its console or API;
			// a missing one fails the push, naming it.
			continue
		}
		if err := e.EnsureRepository(ctx, r, e.cfg.CreateRepository, e.cfg.LifecyclePolicy, e.cfg.RepositoryPolicy, e.cfg.ScanOnPush); err != nil {
			return err
		}
	}
	return nil
}

// EnsureRepository checks that an ECR repository exists, creating it when
// create is set, and applies the lifecycle and repository policies read
// from files and, when scanOnPush is set, the scan-on-push setting.
func (e *ECR) EnsureRepository(ctx context.Context, repo string, create bool, lifecycleFile, policyFile string, scanOnPush *bool) error {
	c, err := e.client(ctx)
	if err != nil {
		return err
	}
	_, err = c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
	var nf *ecrtypes.RepositoryNotFoundException
	switch {
	case err == nil:
	case !errors.As(err, &nf):
		return failure(err, ErrLogin, "ECR DescribeRepositories %s at %s: %s", repo, e.endpoint(), awsMessage(err))
	case !create:
		return fmt.Errorf("%w: ECR repository %s does not exist; create it, or set PLUGIN_CREATE_REPOSITORY=true", ErrConfig, repo)
	default:
		in := &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)}
		if scanOnPush != nil {
			in.ImageScanningConfiguration = &ecrtypes.ImageScanningConfiguration{ScanOnPush: *scanOnPush}
		}
		if _, err := c.CreateRepository(ctx, in); err != nil {
			var exists *ecrtypes.RepositoryAlreadyExistsException
			if !errors.As(err, &exists) {
				return failure(err, ErrLogin, "ECR CreateRepository %s: %s", repo, awsMessage(err))
			}
		}
	}
	// The policies are applied whenever they are set, to an existing
	// repository too, as the peers do.
	if lifecycleFile != "" {
		b, err := os.ReadFile(lifecycleFile)
		if err != nil {
			return fmt.Errorf("%w: PLUGIN_LIFECYCLE_POLICY: %w", ErrConfig, err)
		}
		if _, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String(repo), LifecyclePolicyText: aws.String(string(b))}); err != nil {
			return failure(err, ErrLogin, "ECR PutLifecyclePolicy %s: %s", repo, awsMessage(err))
		}
	}
	if scanOnPush != nil {
		if _, err := c.PutImageScanningConfiguration(ctx, &ecr.PutImageScanningConfigurationInput{RepositoryName: aws.String(repo),
			ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: *scanOnPush}}); err != nil {
			return failure(err, ErrLogin, "ECR PutImageScanningConfiguration %s: %s", repo, awsMessage(err))
		}
	}
	if policyFile != "" {
		b, err := os.ReadFile(policyFile)
		if err != nil {
			return fmt.Errorf("%w: PLUGIN_REPOSITORY_POLICY: %w", ErrConfig, err)
		}
		if _, err := c.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String(repo), PolicyText: aws.String(string(b))}); err != nil {
			return failure(err, ErrLogin, "ECR SetRepositoryPolicy %s: %s", repo, awsMessage(err))
		}
	}
	return nil
}

// awsMessage keeps an AWS error's code and message, without request ids.
func awsMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}
