package promote

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Pages notes a referrers list only when its Link header names a next
// page, and only on the referrers API's path: not another header's rel,
// not a repository whose name holds "referrers".
func TestPages(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l := r.URL.Query().Get("link"); l != "" {
			w.Header().Set("Link", l)
		}
	}))
	defer srv.Close()
	for _, c := range []struct {
		path, link string
		paged      bool
	}{
		{"/v2/team/app/referrers/sha256:abc123", `</v2/team/app/referrers/sha256:abc123?last=x>; rel="next"`, true},
		{"/v2/team/app/referrers/sha256:abc123", `</v2/x?last=x>;rel=next`, true},
		{"/v2/team/app/referrers/sha256:abc123", `<https://docs.example/x>; rel="help"`, false},
		{"/v2/team/app/referrers/sha256:abc123", "", false},
		{"/v2/x/referrers/y/manifests/latest", `</next>; rel="next"`, false},
		{"/v2/team/app/tags/list", `</v2/team/app/tags/list?last=x>; rel="next"`, false},
	} {
		p := &Pages{RoundTripper: http.DefaultTransport}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+c.path, nil)
		req.URL.RawQuery = "link=" + urlQuery(c.link)
		resp, err := p.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Link") != c.link {
			t.Fatalf("the server sent Link %q, want %q", resp.Header.Get("Link"), c.link)
		}
		if got := len(p.Paged()) > 0; got != c.paged {
			t.Errorf("%s with Link %q: paged %v, want %v", c.path, c.link, got, c.paged)
		}
	}
}

func urlQuery(s string) string {
	r := strings.NewReplacer("%", "%25", " ", "%20", "&", "%26", "+", "%2B", "#", "%23", ";", "%3B", "=", "%3D", "?", "%3F")
	return r.Replace(s)
}
