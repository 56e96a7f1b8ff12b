package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hoist-build/hoist/internal/harness"
)

// garbage is a server on loopback that answers every connection with an
// SSH banner: TLS to it fails, but no CA would mend that.
func garbage(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
			c.Close()
		}
	}()
	return l.Addr().String()
}

// The advice to give a registry's CA (or, knowingly, skip the check) is
// given for the errors a CA mends, found by their type however a client
// wraps them (go-containerregistry's included), and for those alone: a
// server that does not speak TLS gets none, nor does a message that only
// quotes a certificate error (a registry's error body); the advice is
// given once however often it is asked for. Only BuildKit's gRPC text is
// judged by its words.
func TestTLSAdviceForCertificateErrorsOnly(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true})
	tr, err := NewTransport(TransportOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	get := func(host string) error {
		ref, err := name.ParseReference(host + "/app:1")
		if err != nil {
			t.Fatal(err)
		}
		_, err = remote.Get(ref, remote.WithTransport(tr))
		if err == nil {
			t.Fatalf("%s answered", host)
		}
		return err
	}
	ca, err := os.ReadFile(reg.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	_, hostErr := tls.Dial("tcp", reg.Host, &tls.Config{RootCAs: pool, ServerName: "registry.example"})
	if hostErr == nil {
		t.Fatal("a certificate for 127.0.0.1 verified for registry.example")
	}

	for _, c := range []struct {
		name   string
		err    error
		advice bool
	}{
		{"unknown authority, through go-containerregistry", get(reg.Host), true},
		{"a name the certificate is not for", hostErr, true},
		{"a server that does not speak TLS", get(garbage(t)), false},
		{"a message that quotes one", errors.New("registry said: tls: failed to verify certificate: x509: certificate signed by unknown authority"), false},
		{"no error", nil, false},
	} {
		if got := IsCertError(c.err); got != c.advice {
			t.Errorf("%s: IsCertError = %v (%v)", c.name, got, c.err)
		}
		got := TLSAdvice(c.err)
		var ce *CertError
		switch {
		case c.err == nil:
			if got != nil {
				t.Errorf("%s: %v", c.name, got)
			}
		case c.advice && (!errors.As(got, &ce) || got.Error() != c.err.Error()+"; "+TLSHint || !IsCertError(got)):
			t.Errorf("%s: %v, want the error, wrapped, with the advice once", c.name, got)
		case c.advice && TLSAdvice(got).Error() != got.Error():
			t.Errorf("%s: advised twice: %v", c.name, TLSAdvice(got))
		case !c.advice && (errors.As(got, &ce) || got.Error() != c.err.Error() || strings.Contains(got.Error(), "PLUGIN_REGISTRY_CERTIFICATE")):
			t.Errorf("%s: %v, want the error as it is", c.name, got)
		}
	}

	buildkit := "failed to resolve source metadata for 127.0.0.1:5000/base:1: failed to do request: Head \"https://127.0.0.1:5000/v2/base/manifests/1\": tls: failed to verify certificate: x509: certificate signed by unknown authority"
	if got := TLSAdviceText(buildkit); got != buildkit+"; "+TLSHint {
		t.Errorf("BuildKit's certificate error: %q", got)
	}
	if other := "failed to solve: process \"/bin/sh -c false\" did not complete successfully: exit code: 1"; TLSAdviceText(other) != other {
		t.Errorf("BuildKit's other error changed: %q", TLSAdviceText(other))
	}
}
