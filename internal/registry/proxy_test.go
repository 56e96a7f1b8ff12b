package registry

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/net/http/httpproxy"

	"github.com/hoist-build/hoist/internal/harness"
)

// The transport goes through the proxies of the step's environment
// (TransportOptions.Proxy, from the step's lookup), never the process's:
// a step of hoist pipeline has its own. Here the registry's name resolves
// nowhere; only a forward proxy, which this process's environment does
// not name, reaches it (a real registry behind it). The image pushed
// through the proxy is read back with crane. (Both proxy variables are
// set, so that no request leaves loopback, not even a DNS query.)
func TestTransportUsesTheStepsProxy(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	target, _ := url.Parse(reg.URL())
	var proxied atomic.Int64
	fwd := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		proxied.Add(1)
		r.SetURL(target)
		r.Out.Host = r.In.Host
	}}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			// No TLS through this proxy: the client falls back to HTTP.
			http.Error(w, "no CONNECT here", http.StatusMethodNotAllowed)
			return
		}
		fwd.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	const host = "registry.hoist-test.invalid:5000"
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"HTTP_PROXY": proxy.URL, "https_proxy": proxy.URL, "no_proxy": "other.example"}[k]
		return v, ok
	}
	cfg := ProxyFrom(lookup)
	if d := cmp.Diff(httpproxy.Config{HTTPProxy: proxy.URL, HTTPSProxy: proxy.URL, NoProxy: "other.example"}, cfg); d != "" {
		t.Errorf("ProxyFrom (-want +got):\n%s", d)
	}
	tr, err := NewTransport(TransportOptions{Insecure: true, Proxy: cfg})
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/proxied/app:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(tr)); err != nil {
		t.Fatalf("push through the step's proxy: %v", err)
	}
	want, _ := img.Digest()
	if got := reg.Digest(t, reg.Host+"/proxied/app:1"); got != want.String() {
		t.Errorf("the registry holds %s, want %s", got, want)
	}
	if proxied.Load() == 0 {
		t.Error("no request went through the proxy")
	}

}
