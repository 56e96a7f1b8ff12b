package promote

import (
	"net/http"
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
	if err == nil && req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/referrers/") && resp.Header.Get("Link") != "" {
		p.mu.Lock()
		p.paged = append(p.paged, req.URL.Host+req.URL.Path)
		p.mu.Unlock()
	}
	return resp, err
}

// Paged are the referrers lists seen with a next page.
func (p *Pages) Paged() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paged...)
}
