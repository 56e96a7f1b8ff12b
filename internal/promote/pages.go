package promote

import (
	"net/http"
	"regexp"
	"strings"
	"sync"
)

// Pages watches the referrers lists that cross it for a next page. The
// OCI distribution spec lets a registry split a digest's referrers into
// pages (a Link header naming the next one); go-containerregistry reads
// the first page only, so what the other pages list would be left behind
// without a word. A promotion that sees a next page is refused instead
// (Paged), never cut short.
type Pages struct {
	http.RoundTripper

	mu    sync.Mutex
	paged []string
}

// RoundTrip passes req on, and notes a referrers list with a next page.
func (p *Pages) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := p.RoundTripper.RoundTrip(req)
	if err == nil && req.Method == http.MethodGet && referrersPath.MatchString(req.URL.Path) && nextPage(resp.Header.Values("Link")) {
		p.mu.Lock()
		p.paged = append(p.paged, req.URL.Host+req.URL.Path)
		p.mu.Unlock()
	}
	return resp, err
}

// referrersPath is the referrers API's path (a colon is in no
// repository's name).
var referrersPath = regexp.MustCompile(`^/v2/.+/referrers/[a-z0-9]+:[a-zA-Z0-9=_-]+$`)

// nextPage says whether a Link header names a next page (rel="next").
func nextPage(links []string) bool {
	for _, l := range links {
		for _, part := range strings.Split(l, ";") {
			p := strings.ReplaceAll(strings.TrimSpace(part), " ", "")
			if p == `rel="next"` || p == "rel=next" {
				return true
			}
		}
	}
	return false
}

// Paged are the referrers lists seen with a next page.
func (p *Pages) Paged() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paged...)
}
