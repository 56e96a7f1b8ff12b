package kinds

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hoist-build/hoist/internal/registry"
)

// Login is one entry of PLUGIN_LOGINS, Woodpecker's docker-buildx list of
// registries with their credentials: a username and password, or AWS keys
// for an ECR registry (whose login is then ECR's token).
type Login struct {
	Registry string   `json:"registry"`
	Username string   `json:"username"`
	Password string   `json:"password"`
	Email    string   `json:"email"`
	Config   string   `json:"config"`
	Mirrors  []string `json:"mirrors"`

	AWSAccessKeyID     string `json:"aws_access_key_id"`
	AWSSecretAccessKey string `json:"aws_secret_access_key"`
	AWSRegion          string `json:"aws_region"`
}

// ECRLogin is an ECR registry's own AWS credentials (a PLUGIN_LOGINS
// entry): its keychain serves that registry only.
type ECRLogin struct {
	Host                 string
	Region               string
	AccessKey, SecretKey string
	// Setting names the entry, for messages.
	Setting string
}

// Logins are PLUGIN_LOGINS as hoist's logins: usernames and passwords
// for the static keychain, AWS keys for ECR keychains of their own.
type Logins struct {
	Static []registry.Login
	ECR    []ECRLogin
}

// Secrets are every password and key the logins hold, to mask.
func (l Logins) Secrets() (out []string) {
	for _, s := range l.Static {
		out = append(out, s.Password)
	}
	for _, e := range l.ECR {
		out = append(out, e.AccessKey, e.SecretKey)
	}
	return out
}

// ParseLogins reads PLUGIN_LOGINS: a JSON list of {registry, username,
// password} and {registry, aws_access_key_id, aws_secret_access_key,
// aws_region} objects, as Woodpecker's plugin takes them (field names in
// any case). A registry left empty is Docker Hub's. An entry is refused,
// never ignored, when it has neither a username and password nor AWS keys
// (nor names an ECR registry, whose login is then the default AWS
// credential chain), names a registry twice, or carries what hoist does
// not do per registry: a docker config (use PLUGIN_CONFIG) or mirrors
// (use PLUGIN_REGISTRY_MIRRORS). An e-mail is accepted and unused, as
// registries no longer take one. Errors never quote a value but the
// registry.
func ParseLogins(raw string) (Logins, error) {
	var out Logins
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields()
	var list []Login
	if err := dec.Decode(&list); err != nil {
		return out, fmt.Errorf("%w: PLUGIN_LOGINS must be a JSON list of {registry, username, password} or {registry, aws_access_key_id, aws_secret_access_key, aws_region}: %s", ErrConfig, loginsProblem(err))
	}
	if dec.More() {
		return out, fmt.Errorf("%w: PLUGIN_LOGINS has more than one JSON value", ErrConfig)
	}
	seen := map[string]string{}
	for i, l := range list {
		where := fmt.Sprintf("PLUGIN_LOGINS[%d]", i)
		host, err := registry.NormalizeHost(l.Registry)
		if err != nil {
			return out, fmt.Errorf("%w: %s: registry %q: %w", ErrConfig, where, clip(l.Registry), err)
		}
		where += " (registry " + host + ")"
		if prev, ok := seen[host]; ok {
			return out, fmt.Errorf("%w: %s: the registry is named by %s already; give each registry one login", ErrConfig, where, prev)
		}
		seen[host] = fmt.Sprintf("PLUGIN_LOGINS[%d]", i)
		switch {
		case l.Config != "":
			return out, fmt.Errorf("%w: %s: a docker config per login is not supported; give it as PLUGIN_CONFIG", ErrConfig, where)
		case len(l.Mirrors) > 0:
			return out, fmt.Errorf("%w: %s: mirrors per registry are not supported; Docker Hub's mirrors are PLUGIN_REGISTRY_MIRRORS", ErrConfig, where)
		}
		keys := l.AWSAccessKeyID != "" || l.AWSSecretAccessKey != ""
		login := l.Username != "" || l.Password != ""
		switch {
		case keys && login:
			return out, fmt.Errorf("%w: %s: give a username and password, or AWS keys, not both", ErrConfig, where)
		case keys && (l.AWSAccessKeyID == "" || l.AWSSecretAccessKey == ""):
			return out, fmt.Errorf("%w: %s: needs both aws_access_key_id and aws_secret_access_key", ErrConfig, where)
		case keys || !login && IsECRHost(host):
			region := l.AWSRegion
			if region == "" {
				region = RegionOf(host)
			}
			if region == "" {
				region = DefaultRegion
			}
			out.ECR = append(out.ECR, ECRLogin{Host: host, Region: region, AccessKey: l.AWSAccessKeyID, SecretKey: l.AWSSecretAccessKey, Setting: where})
		case l.AWSRegion != "":
			return out, fmt.Errorf("%w: %s: aws_region is set, but the login has no AWS keys and the registry is no ECR host", ErrConfig, where)
		case l.Username == "" || l.Password == "":
			return out, fmt.Errorf("%w: %s: needs a username and a password (or, for ECR, aws_access_key_id and aws_secret_access_key)", ErrConfig, where)
		default:
			out.Static = append(out.Static, registry.Login{Registry: host, Username: l.Username, Password: l.Password, Setting: where})
		}
	}
	return out, nil
}

// loginsProblem says what is wrong with PLUGIN_LOGINS's JSON without
// quoting it (it holds passwords).
func loginsProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("JSON syntax error at byte %d", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be a %s", te.Field, te.Type)
		}
		return "it is not a list of objects"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + " (known: registry, username, password, email, aws_access_key_id, aws_secret_access_key, aws_region)"
	}
	return "not JSON"
}
