package kinds

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/registry"
)

// PLUGIN_LOGINS as Woodpecker's plugin reads it (field names in any
// case): username and password logins, ECR logins by AWS keys or by an
// ECR host alone (the default chain); what hoist cannot honour is
// refused, naming the entry and its registry, never a password.
func TestParseLogins(t *testing.T) {
	t.Parallel()
	const ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
	got, err := ParseLogins(`[{"registry": "https://reg.example.com/", "username": "u", "password": "p1-secret"},
		{"Registry": "", "Username": "hub", "Password": "p2-secret", "email": "a@b"},
		{"registry": "` + ecr + `", "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "s3-secret"},
		{"registry": "public.ecr.aws", "aws_region": "us-east-1"},
		{"registry": "127.0.0.1:5000", "aws_access_key_id": "AKIA2", "aws_secret_access_key": "s4-secret", "aws_region": "eu-west-3"}]`)
	if err != nil {
		t.Fatal(err)
	}
	want := Logins{
		Static: []registry.Login{{Registry: "reg.example.com", Username: "u", Password: "p1-secret", Setting: "PLUGIN_LOGINS[0] (registry reg.example.com)"},
			{Registry: name.DefaultRegistry, Username: "hub", Password: "p2-secret", Setting: "PLUGIN_LOGINS[1] (registry index.docker.io)"}},
		ECR: []ECRLogin{{Host: ecr, Region: "eu-west-1", AccessKey: "AKIAEXAMPLE", SecretKey: "s3-secret", Setting: "PLUGIN_LOGINS[2] (registry " + ecr + ")"},
			{Host: "public.ecr.aws", Region: "us-east-1", Setting: "PLUGIN_LOGINS[3] (registry public.ecr.aws)"},
			{Host: "127.0.0.1:5000", Region: "eu-west-3", AccessKey: "AKIA2", SecretKey: "s4-secret", Setting: "PLUGIN_LOGINS[4] (registry 127.0.0.1:5000)"}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("logins (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"p1-secret", "p2-secret", "AKIAEXAMPLE", "s3-secret", "", "", "AKIA2", "s4-secret"}, got.Secrets()); d != "" {
		t.Errorf("secrets (-want +got):\n%s", d)
	}
	if l, err := ParseLogins(" "); err != nil || len(l.Static)+len(l.ECR) != 0 {
		t.Errorf("empty: %v %v", l, err)
	}

	for _, c := range []struct{ raw, want string }{
		{`[{"registry": "r.example.com", "username": "u", "password": "pw-secret"`, "the JSON ends early"},
		{`[{"registry": "r.example.com", "username": "u", "password": "pw-secret",}]`, "JSON syntax error at byte"},
		{`{"registry": "r.example.com"}`, "it is not a list of objects"},
		{`[{"registry": "r.example.com", "user": "u", "password": "pw-secret"}]`, `unknown field "user"`},
		{`[{"registry": "r.example.com", "password": "pw-secret"}]`, "PLUGIN_LOGINS[0] (registry r.example.com): needs a username and a password"},
		{`[{"registry": "r.example.com", "username": "u"}]`, "needs a username and a password"},
		{`[{"registry": "r.example.com", "username": "u", "password": "pw-secret"}, {"registry": "https://r.example.com", "username": "v", "password": "pw-secret"}]`,
			"PLUGIN_LOGINS[1] (registry r.example.com): the registry is named by PLUGIN_LOGINS[0] already"},
		{`[{"registry": "r.example.com", "aws_access_key_id": "AKIA", "password": "pw-secret"}]`, "give a username and password, or AWS keys, not both"},
		{`[{"registry": "r.example.com", "aws_access_key_id": "AKIA"}]`, "needs both aws_access_key_id and aws_secret_access_key"},
		{`[{"registry": "r.example.com", "aws_region": "eu-west-1"}]`, "aws_region is set, but the login has no AWS keys and the registry is no ECR host"},
		{`[{"registry": "r.example.com", "username": "u", "password": "pw-secret", "config": "{\"auths\":{}}"}]`, "a docker config per login is not supported; give it as PLUGIN_CONFIG"},
		{`[{"registry": "r.example.com", "username": "u", "password": "pw-secret", "mirrors": ["m.example.com"]}]`, "mirrors per registry are not supported"},
		{`[{"registry": "bad host!", "username": "u", "password": "pw-secret"}]`, `PLUGIN_LOGINS[0]: registry "bad host!"`},
		{`[] []`, "more than one JSON value"},
	} {
		_, err := ParseLogins(c.raw)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.raw, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("%s: the password is shown: %v", c.raw, err)
		}
	}
}

// An ECR login of PLUGIN_LOGINS is a keychain of its own that serves its
// registry only, with its keys (checked by the AWS stand-in's SigV4); the
// step's ECR keychain leaves that registry to it.
func TestECRLoginsServeTheirRegistryOnly(t *testing.T) {
	t.Parallel()
	a := harness.StartAWS(t, "eu-west-3")
	a.Registry, a.Password = "127.0.0.1:5999", "ecr-pw-"+t.Name()
	const other = "123456789012.dkr.ecr.eu-west-3.amazonaws.com"
	c := &Config{ECR: ECRConfig{Endpoint: a.URL, AccessKey: "AKIAWRONG", SecretKey: "wrong"},
		ECRLogins: []ECRLogin{{Host: "127.0.0.1:5999", Region: a.Region, AccessKey: a.AccessKey, SecretKey: a.SecretKey, Setting: "PLUGIN_LOGINS[0] (registry 127.0.0.1:5999)"}}}
	kcs, err := Keychains(c, Docker{}, []string{"127.0.0.1:5999", other})
	if err != nil {
		t.Fatal(err)
	}
	if len(kcs) != 2 {
		t.Fatalf("%d keychains, want the login's and the step's ECR", len(kcs))
	}
	login, step := kcs[0], kcs[1]
	if !login.Serves("127.0.0.1:5999") || login.Serves(other) || step.Serves("127.0.0.1:5999") || !step.Serves(other) {
		t.Errorf("login serves %v/%v, step serves %v/%v", login.Serves("127.0.0.1:5999"), login.Serves(other), step.Serves("127.0.0.1:5999"), step.Serves(other))
	}
	reg, _ := name.NewRegistry("127.0.0.1:5999")
	auth, err := authn.Resolve(context.Background(), authn.NewMultiKeychain(login, step), reg)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := auth.Authorization()
	if err != nil || ac.Username != "AWS" || ac.Password != a.Password {
		t.Errorf("login: %+v %v", ac, err)
	}
	// The step's own keys are wrong: asked for its registry, it fails,
	// saying which keys.
	_, err = step.(*ECR).Login(context.Background())
	if !errors.Is(err, ErrLogin) || strings.Contains(err.Error(), "PLUGIN_LOGINS") {
		t.Errorf("step's login: %v", err)
	}
	bad := &Config{ECR: ECRConfig{Endpoint: a.URL}, ECRLogins: []ECRLogin{{Host: "127.0.0.1:5999", Region: a.Region, AccessKey: a.AccessKey, SecretKey: "not-the-secret", Setting: "PLUGIN_LOGINS[0] (registry 127.0.0.1:5999)"}}}
	kcs, _ = Keychains(bad, Docker{}, nil)
	_, err = kcs[0].(*ECR).Login(context.Background())
	if !errors.Is(err, ErrLogin) || !strings.Contains(err.Error(), "of PLUGIN_LOGINS[0] (registry 127.0.0.1:5999)") || strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("bad login: %v", err)
	}
}
