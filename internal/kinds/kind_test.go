package kinds

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/harness"
)

// Each kind builds the reference its vendor's build-and-push step builds.
func TestRepository(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		typ  string
		cfg  Config
		want string
	}{
		{"", Config{Repo: "nginx"}, "nginx"},
		{"ecr", Config{Registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", Repo: "app"}, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app"},
		{"ECR", Config{ECR: ECRConfig{Account: "123456789012", Region: "us-gov-west-1", FIPS: true}, Repo: "app"}, "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app"},
		{"ecr", Config{ECR: ECRConfig{Account: "123456789012", Region: "cn-north-1"}, Repo: "app"}, "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app"},
		{"ecr", Config{Registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", Repo: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app"}, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app"},
		{"gar", Config{Registry: "/us-docker.pkg.dev/my-proj/", Repo: "repo/app"}, "us-docker.pkg.dev/my-proj/repo/app"},
		{"gar", Config{Google: GoogleConfig{Location: "europe-west1", ProjectID: "p"}, Repo: "repo/app"}, "europe-west1-docker.pkg.dev/p/repo/app"},
		{"gcr", Config{Google: GoogleConfig{ProjectID: "p"}, Repo: "app"}, "gcr.io/p/app"},
		{"acr", Config{Repo: "myreg.azurecr.io/team/app"}, "myreg.azurecr.io/team/app"},
		{"acr", Config{Registry: "myreg.azurecr.io", Repo: "team/app"}, "myreg.azurecr.io/team/app"},
	} {
		k, typ, err := Parse(c.typ)
		if err != nil {
			t.Fatal(err)
		}
		c.cfg.Type = typ
		got, err := Repository(k, &c.cfg)
		if err != nil || got != c.want {
			t.Errorf("%s %+v: %q, %v; want %q", c.typ, c.cfg, got, err, c.want)
		}
	}
	for _, c := range []struct {
		typ  string
		cfg  Config
		want string
	}{
		{"acr", Config{Repo: "team/app"}, "ACR needs PLUGIN_REPO as REGISTRY.azurecr.io/REPOSITORY"},
		{"ecr", Config{Repo: "app"}, "ECR needs its registry"},
		{"gar", Config{Repo: "app", Google: GoogleConfig{ProjectID: "p"}}, "GAR needs PLUGIN_REGISTRY"},
		{"gcr", Config{Repo: "app"}, "GCR needs PLUGIN_REGISTRY (HOST/PROJECT) or PLUGIN_PROJECT_ID"},
	} {
		k, typ, _ := Parse(c.typ)
		c.cfg.Type = typ
		if _, err := Repository(k, &c.cfg); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %+v: %v; want %q", c.typ, c.cfg, err, c.want)
		}
	}
	if _, _, err := Parse("quay"); err == nil {
		t.Error("Parse(quay) succeeded")
	}
}

// A step gets its own kind's login, and the login of every kind one of its
// destinations or extra registries is on; none for a plain Docker step or
// ACR's admin user.
func TestKeychains(t *testing.T) {
	t.Parallel()
	names := func(kcs []Keychain) string {
		var out []string
		for _, kc := range kcs {
			out = append(out, typeName(kc))
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		typ   string
		cfg   Config
		dests []string
		want  string
	}{
		{"docker", Config{Repo: "app"}, []string{"index.docker.io"}, ""},
		{"docker", Config{Repo: "app"}, []string{"index.docker.io", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "us-docker.pkg.dev", "r.azurecr.io"}, "ECR,Google,ACR"},
		{"ecr", Config{Registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com"}, nil, "ECR"},
		{"gcr", Config{Google: GoogleConfig{ProjectID: "p"}}, nil, "Google"},
		{"docker", Config{Google: GoogleConfig{Registry: "127.0.0.1:5000"}}, nil, "Google"},
		{"acr", Config{Repo: "r.azurecr.io/app", Username: "admin"}, []string{"r.azurecr.io"}, ""},
		{"acr", Config{Repo: "r.azurecr.io/app", ACR: ACRConfig{ClientID: "c"}}, []string{"r.azurecr.io"}, "ACR"},
		// A service principal's id and secret as the step's login log in
		// directly (drone-acr's SERVICE_PRINCIPAL_*), Azure AD settings
		// beside them or not; another registry's login does not stop an
		// ACR destination's Azure AD login.
		{"acr", Config{Repo: "r.azurecr.io/app", Username: "sp", Password: "pw", ACR: ACRConfig{ClientID: "c", ClientSecret: "s"}}, []string{"r.azurecr.io"}, ""},
		{"docker", Config{Repo: "reg.example.com/app", Username: "u", Password: "p", ACR: ACRConfig{ClientID: "c", ClientSecret: "s"}}, []string{"reg.example.com", "r.azurecr.io"}, "ACR"},
	} {
		k, typ, _ := Parse(c.typ)
		c.cfg.Type = typ
		kcs, err := Keychains(&c.cfg, k, c.dests)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(kcs); got != c.want {
			t.Errorf("%s %+v %v: keychains %q, want %q", c.typ, c.cfg, c.dests, got, c.want)
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *ECR:
		return "ECR"
	case *Google:
		return "Google"
	case *ACR:
		return "ACR"
	}
	return "?"
}

// A keychain answers anonymously for a registry it does not serve, and a
// cloud login stops when the resolve's context ends: an ECR API that
// accepts the connection and never answers does not hold a step.
func TestResolveContext(t *testing.T) {
	t.Parallel()
	silent := harness.SilentServer(t)
	cfg := &Config{Type: "ecr", Registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", HTTP: &http.Client{},
		ECR: ECRConfig{Region: "eu-west-1", AccessKey: "AKIAEXAMPLEEXAMPLE", SecretKey: "secret", Endpoint: "http://" + silent}}
	kcs, err := Keychains(cfg, ecrKind{}, nil)
	if err != nil || len(kcs) != 1 {
		t.Fatalf("keychains: %v, %d", err, len(kcs))
	}
	kc := kcs[0]
	other, _ := name.NewRegistry("index.docker.io")
	if a, err := kc.ResolveContext(context.Background(), other); err != nil || a != authn.Anonymous {
		t.Errorf("another registry: %v, %v; want anonymous", a, err)
	}
	ecrReg, _ := name.NewRegistry("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = kc.ResolveContext(ctx, ecrReg)
	if err == nil {
		t.Fatal("the login succeeded against an API that never answers")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the login took %s after its context ended", d)
	}
}
