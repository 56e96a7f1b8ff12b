package engine

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// plainHTTP tells a registry that answers TLS (whatever its certificate)
// from one that answers plain HTTP: PLUGIN_INSECURE allows the second,
// and BuildKit reaches the first over TLS, verified.
func TestPlainHTTPProbe(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	tlsSrv := httptest.NewTLSServer(ok) // a certificate no one trusts
	defer tlsSrv.Close()
	plain := httptest.NewServer(ok)
	defer plain.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	ctx := context.Background()
	for _, c := range []struct {
		host string
		want bool
	}{
		{strings.TrimPrefix(tlsSrv.URL, "https://"), false},
		{strings.TrimPrefix(plain.URL, "http://"), true},
		{closed, true}, // unreachable: taken at its word
	} {
		if got := plainHTTP(ctx, c.host, 5*time.Second); got != c.want {
			t.Errorf("plainHTTP(%s) = %v, want %v", c.host, got, c.want)
		}
	}
}
