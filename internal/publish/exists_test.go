package publish

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/registry"
)

type loginFor struct{ reg *harness.Registry }

func (k loginFor) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() != k.reg.Host {
		return authn.Anonymous, nil
	}
	return &authn.Basic{Username: k.reg.User, Password: k.reg.Password}, nil
}

// Existing names, per repository, the first of its tags the registry
// holds (a registry with logins, where a repository that does not exist
// answers 404 with the push token); a registry that does not answer is an
// error, not "absent".
func TestExisting(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	o := options(t)
	o.Access.Keychain = loginFor{reg}
	img := open(t, f.SkopeoLayout)
	for _, r := range Push(context.Background(), img.Artifact, tags(t, reg.Host+"/team/app:1.0", reg.Host+"/team/app:stable"), o) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	dests := tags(t, reg.Host+"/team/app:2.0", reg.Host+"/team/app:stable", reg.Host+"/team/app:1.0", reg.Host+"/team/new:1.0", reg.Host+"/other/app:latest")
	got, err := Existing(context.Background(), dests, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[reg.Host+"/team/app"].String() != reg.Host+"/team/app:stable" {
		t.Errorf("Existing: %v, want team/app's stable only", got)
	}

	// Nothing listens there: an error naming the tag, not a skip or a push.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	down := tags(t, reg.Host+"/team/app:2.0", closed+"/team/app:1.0")
	_, err = Existing(context.Background(), down, o)
	var perr *Error
	if !errors.Is(err, ErrPush) || !errors.As(err, &perr) || perr.Ref != closed+"/team/app:1.0" || !registry.Unreachable(err) ||
		!strings.Contains(err.Error(), "cannot reach registry "+closed) {
		t.Errorf("an unreachable registry: %v", err)
	}
	// Wrong credentials: refused, an error.
	o.Access.Keychain = authn.NewMultiKeychain(loginFor{&harness.Registry{Host: reg.Host, User: reg.User, Password: "wrong"}})
	if _, err := Existing(context.Background(), tags(t, reg.Host+"/team/app:1.0"), o); !errors.Is(err, ErrPush) || !strings.Contains(err.Error(), "refused access") {
		t.Errorf("wrong credentials: %v", err)
	}
}
