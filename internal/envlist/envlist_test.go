package envlist

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFilter(t *testing.T) {
	t.Parallel()
	environ := []string{"PATH=/bin", "PLUGIN_PASSWORD=pw", "HOME=/root", "PATHOLOGY=x", "path=/lower", "MALFORMED", "HOME=/second", "EMPTY="}
	want := []string{"PATH=/bin", "HOME=/root", "HOME=/second", "EMPTY="}
	if d := cmp.Diff(want, Filter(environ, []string{"HOME", "PATH", "EMPTY", "MALFORMED"})); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got := Filter(environ, nil); len(got) != 0 {
		t.Errorf("an empty allowlist let %q through", got)
	}
}

// IsProxy knows every name BuildKit keeps out of an image's history, in
// any case; Proxy, the names hoist hands on, are among them.
func TestIsProxy(t *testing.T) {
	t.Parallel()
	for _, n := range append([]string{"Http_Proxy", "FTP_PROXY", "ftp_proxy", "ALL_PROXY", "All_Proxy"}, Proxy...) {
		if !IsProxy(n) {
			t.Errorf("IsProxy(%q) is false", n)
		}
	}
	for _, n := range []string{"PROXY", "HTTP_PROXY_USER", "SOCKS_PROXY", "HARNESS_HTTP_PROXY", "PIP_INDEX_URL"} {
		if IsProxy(n) {
			t.Errorf("IsProxy(%q) is true", n)
		}
	}
}
