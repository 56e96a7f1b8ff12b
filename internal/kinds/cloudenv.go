package kinds

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Lookup reads one variable of a step's environment.
type Lookup func(key string) (string, bool)

// cloudVars are the variables of a step's environment the clouds' default
// credential chains read (awsDefaultChain, ACR's newCredential, Google's
// Application Default Credentials).
var cloudVars = []string{
	"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN",
	"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
	"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "HOME",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	"AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD",
	"GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "GCE_METADATA_HOST",
}

// EnvOf reads, once, the variables of a step's environment the clouds'
// default credential chains use, so that a login during the run reads
// the step's values and never the process's.
func EnvOf(lookup func(string) (string, bool)) Lookup {
	m := map[string]string{}
	if lookup != nil {
		for _, k := range cloudVars {
			if v, ok := lookup(k); ok {
				m[k] = v
			}
		}
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// get is the value of key in the step's environment; a nil Lookup is an
// empty environment (never the process's).
func (l Lookup) get(key string) string {
	if l == nil {
		return ""
	}
	v, _ := l(key)
	return v
}

// first is the value of the first key set.
func (l Lookup) first(keys ...string) string {
	for _, k := range keys {
		if v := l.get(k); v != "" {
			return v
		}
	}
	return ""
}

// ecsHost is where a relative container credentials URI is served.
const ecsHost = "http://169.254.170.2"

// awsDefaultChain is the AWS SDK's default credential chain, in its order,
// read from the step's environment instead of the process's: keys
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), a web
// identity (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN), a shared
// config profile (AWS_PROFILE, AWS_CONFIG_FILE,
// AWS_SHARED_CREDENTIALS_FILE, or the files under $HOME/.aws), the
// container endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI or
// _RELATIVE_URI) and the instance metadata service (unless
// AWS_EC2_METADATA_DISABLED).
func awsDefaultChain(ctx context.Context, env Lookup, region string, client *http.Client, stsEndpoint string) (aws.Config, error) {
	cfg := aws.Config{Region: region}
	if client != nil {
		cfg.HTTPClient = client
	}
	key, secret := env.first("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"), env.first("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY")
	switch {
	case key != "" && secret != "":
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(key, secret, env.get("AWS_SESSION_TOKEN")))
		return cfg, nil
	case env.get("AWS_WEB_IDENTITY_TOKEN_FILE") != "":
		role := env.get("AWS_ROLE_ARN")
		if role == "" {
			return cfg, fmt.Errorf("%w: AWS_WEB_IDENTITY_TOKEN_FILE is set without AWS_ROLE_ARN, the role to assume with it", ErrConfig)
		}
		session := env.get("AWS_ROLE_SESSION_NAME")
		if session == "" {
			session = "hoist"
		}
		stsc := sts.NewFromConfig(cfg, func(o *sts.Options) {
			if stsEndpoint != "" {
				o.BaseEndpoint = aws.String(stsEndpoint)
			}
		})
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(stsc, role, stscreds.IdentityTokenFile(env.get("AWS_WEB_IDENTITY_TOKEN_FILE")), func(o *stscreds.WebIdentityRoleOptions) {
			o.RoleSessionName = session
		}))
		return cfg, nil
	}
	if profile, files, creds := awsSharedFiles(env); profile != "" {
		opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region), awsconfig.WithSharedConfigProfile(profile),
			awsconfig.WithSharedConfigFiles(files), awsconfig.WithSharedCredentialsFiles(creds)}
		if client != nil {
			opts = append(opts, awsconfig.WithHTTPClient(client))
		}
		c, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return cfg, fmt.Errorf("%w: AWS profile %q: %w", ErrConfig, profile, err)
		}
		return c, nil
	}
	if uri := env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"); uri != "" || env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != "" {
		if uri == "" {
			uri = ecsHost + env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
		}
		token, tokenFile := env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"), env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
		cfg.Credentials = aws.NewCredentialsCache(endpointcreds.New(uri, func(o *endpointcreds.Options) {
			if client != nil {
				o.HTTPClient = client
			}
			o.AuthorizationToken = token
			if tokenFile != "" {
				o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
					b, err := os.ReadFile(tokenFile)
					return strings.TrimSpace(string(b)), err
				})
			}
		}))
		return cfg, nil
	}
	state := imds.ClientEnabled
	if strings.EqualFold(env.get("AWS_EC2_METADATA_DISABLED"), "true") {
		state = imds.ClientDisabled
	}
	endpoint := env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
	if endpoint == "" {
		endpoint = "http://169.254.169.254"
	}
	cfg.Credentials = aws.NewCredentialsCache(ec2rolecreds.New(func(o *ec2rolecreds.Options) {
		o.Client = imds.New(imds.Options{ClientEnableState: state, Endpoint: endpoint})
	}))
	return cfg, nil
}

// awsSharedFiles is the shared config profile the step's environment
// names, and the files to read it from: "" when it names none and no
// default file exists.
func awsSharedFiles(env Lookup) (profile string, config, creds []string) {
	home := env.get("HOME")
	file := func(key, name string) []string {
		if v := env.get(key); v != "" {
			return []string{v}
		}
		if home != "" {
			return []string{filepath.Join(home, ".aws", name)}
		}
		return nil
	}
	config, creds = file("AWS_CONFIG_FILE", "config"), file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
	profile = env.first("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
	if profile != "" {
		return profile, config, creds
	}
	for _, f := range append(append([]string{}, config...), creds...) {
		if _, err := os.Stat(f); err == nil {
			return "default", config, creds
		}
	}
	return "", nil, nil
}
