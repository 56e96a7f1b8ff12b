package registry

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// Event is one registry operation a Meter saw.
type Event struct {
	Kind EventKind
	Repo string // repository path on the registry
	// Ref is the blob's digest, or the manifest's tag or digest as the
	// request named it.
	Ref  string
	Size int64
	// From is the repository a mounted blob came from.
	From string
}

// EventKind says what happened to a blob or manifest.
type EventKind int

const (
	BlobExists EventKind = iota
	BlobMounted
	BlobUploaded
	ManifestPut
)

func (k EventKind) String() string {
	return [...]string{"exists", "mounted", "uploaded", "manifest"}[k]
}

// Meter is an http.RoundTripper that counts the request bytes it sends and
// reports blob and manifest operations from the registry API's URLs. It
// sits under go-containerregistry's auth and retry layers, so it sees every
// real request, retries included.
//
// Unless Live is set, request bodies pass through untouched and are counted
// by their Content-Length once sent: a body that is a file then goes to the
// socket with sendfile(2), without a copy through user space. Live wraps
// each body to count bytes as they go, for progress bars.
type Meter struct {
	Inner   http.RoundTripper
	OnEvent func(Event)
	Live    bool
	// Debugf, when set, logs every request: method, host, path (never the
	// query, which carries upload state) and status.
	Debugf func(format string, args ...any)
	// Before, when set, is called before every request; an error stops
	// it (the publisher's gate for checks that run alongside the uploads).
	Before func(req *http.Request) error
	sent   atomic.Int64
}

// IsManifestPut reports a request that writes a manifest (and so, by tag,
// a tag).
func IsManifestPut(req *http.Request) bool {
	return req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/")
}

// IsBlobRequest reports a request about a blob: an existence check, a
// mount or an upload.
func IsBlobRequest(req *http.Request) bool {
	return strings.Contains(req.URL.Path, "/blobs/")
}

// Sent returns the request body bytes sent so far.
func (m *Meter) Sent() int64 { return m.sent.Load() }

// RoundTrip implements http.RoundTripper.
func (m *Meter) RoundTrip(req *http.Request) (*http.Response, error) {
	if m.Before != nil {
		if err := m.Before(req); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody && m.Live {
		req.Body = &countingBody{ReadCloser: req.Body, n: &m.sent}
	}
	resp, err := m.Inner.RoundTrip(req)
	if err == nil && hasBody && !m.Live && req.ContentLength > 0 {
		m.sent.Add(req.ContentLength)
	}
	if m.Debugf != nil {
		if err != nil {
			m.Debugf("debug: %s %s%s: %v", req.Method, req.URL.Host, req.URL.Path, err)
		} else {
			m.Debugf("debug: %s %s%s: %s", req.Method, req.URL.Host, req.URL.Path, resp.Status)
		}
	}
	if err != nil || m.OnEvent == nil {
		return resp, err
	}
	if ev, ok := classify(req, resp); ok {
		m.OnEvent(ev)
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// classify turns a registry API request and its response into an Event.
func classify(req *http.Request, resp *http.Response) (Event, bool) {
	p := req.URL.Path
	if !strings.HasPrefix(p, "/v2/") {
		return Event{}, false
	}
	p = strings.TrimPrefix(p, "/v2/")
	q := req.URL.Query()
	switch {
	case req.Method == http.MethodHead && strings.Contains(p, "/blobs/") && resp.StatusCode == http.StatusOK:
		repo, dig, _ := cutLast(p, "/blobs/")
		return Event{Kind: BlobExists, Repo: repo, Ref: dig, Size: resp.ContentLength}, true
	case req.Method == http.MethodPost && strings.HasSuffix(p, "/blobs/uploads/") && q.Get("mount") != "" && resp.StatusCode == http.StatusCreated:
		repo, _, _ := cutLast(p, "/blobs/uploads/")
		return Event{Kind: BlobMounted, Repo: repo, Ref: q.Get("mount"), From: q.Get("from")}, true
	case req.Method == http.MethodPut && strings.Contains(p, "/blobs/uploads/") && q.Get("digest") != "" && resp.StatusCode == http.StatusCreated:
		repo, _, _ := cutLast(p, "/blobs/uploads/")
		return Event{Kind: BlobUploaded, Repo: repo, Ref: q.Get("digest")}, true
	case req.Method == http.MethodPut && strings.Contains(p, "/manifests/") && resp.StatusCode == http.StatusCreated:
		repo, ref, _ := cutLast(p, "/manifests/")
		return Event{Kind: ManifestPut, Repo: repo, Ref: ref, Size: req.ContentLength}, true
	}
	return Event{}, false
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
