package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/net/http/httpproxy"
)

// TransportOptions configure the HTTP transport shared by every registry.
type TransportOptions struct {
	// CACert is PEM content or a PEM file path, added to the system roots.
	CACert     string
	SkipVerify bool
	// Timeout bounds connecting and waiting for each response's headers.
	Timeout time.Duration
	// Insecure allows plain HTTP to any registry (PLUGIN_INSECURE);
	// without it only loopback registries may be reached over HTTP.
	Insecure bool
	// HTTPRefused, when set, replaces what the refusal of plain HTTP
	// beyond loopback tells the user to do (a transport for which no
	// setting allows it: the vulnerability database's).
	HTTPRefused string
	// Logf, when set, says once per host that plain HTTP is used.
	Logf func(format string, args ...any)
	// Routes send every request for a registry host to a loopback
	// address instead, without rewriting a reference: host →
	// 127.0.0.1:PORT over plain HTTP (a local stand-in that takes no
	// login: the pipeline runner's --local registries), or host →
	// https://127.0.0.1:PORT over HTTPS, the certificate checked for the
	// host and the login as usual (curl's --resolve).
	Routes map[string]string
	// Proxy are the proxies requests go through: the step's proxy
	// variables (ProxyFrom its environment); the zero value is none. The
	// process's environment is never read: a step of hoist pipeline has
	// its own.
	Proxy httpproxy.Config
}

// ProxyFrom is the proxy configuration of an environment, read as Go's
// net/http reads the process's (http_proxy, else HTTP_PROXY; likewise
// https_proxy and no_proxy; REQUEST_METHOD set marks a CGI program,
// which HTTP_PROXY does not steer), but through lookup: a step's.
func ProxyFrom(lookup func(string) (string, bool)) httpproxy.Config {
	first := func(names ...string) string {
		for _, n := range names {
			if v, ok := lookup(n); ok && v != "" {
				return v
			}
		}
		return ""
	}
	return httpproxy.Config{
		HTTPProxy:  first("http_proxy", "HTTP_PROXY"),
		HTTPSProxy: first("https_proxy", "HTTPS_PROXY"),
		NoProxy:    first("no_proxy", "NO_PROXY"),
		CGI:        first("REQUEST_METHOD") != "",
	}
}

// ErrPlainHTTP marks a plain HTTP request that was refused.
var ErrPlainHTTP = errors.New("plain HTTP refused")

// NewTransport returns the base HTTP transport of one run. Plain HTTP is
// refused for any registry that is not on loopback unless Insecure is set:
// go-containerregistry falls back to HTTP for private (RFC 1918) addresses
// by itself, which would send credentials in clear.
func NewTransport(o TransportOptions) (http.RoundTripper, error) {
	tr, err := newHTTPTransport(o)
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper = &httpGuard{inner: retryAfter{tr}, insecure: o.Insecure, advice: o.HTTPRefused, logf: o.Logf, told: map[string]bool{}}
	plain, dials := map[string]string{}, map[string]string{}
	for h, to := range o.Routes {
		addr, tls := strings.CutPrefix(to, "https://")
		if host, _, err := net.SplitHostPort(addr); err != nil || !IsLoopback(host) {
			return nil, fmt.Errorf("route for %s: %q is not a loopback HOST:PORT (or https://HOST:PORT)", h, to)
		}
		if tls {
			if !strings.Contains(h, ":") {
				h += ":443"
			}
			dials[h] = addr
		} else {
			plain[h] = addr
		}
	}
	if len(dials) > 0 {
		dial := tr.DialContext
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if to, ok := dials[addr]; ok {
				addr = to
			}
			return dial(ctx, network, addr)
		}
	}
	if len(plain) > 0 {
		rt = router{routes: plain, inner: rt}
	}
	return rt, nil
}

// router sends the requests for a routed host to its loopback address.
type router struct {
	routes map[string]string
	inner  http.RoundTripper
}

func (r router) RoundTrip(req *http.Request) (*http.Response, error) {
	addr, ok := r.routes[req.URL.Host]
	if !ok {
		return r.inner.RoundTrip(req)
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = "http", addr, ""
	return r.inner.RoundTrip(out)
}

// Routed reports whether host (HOST[:PORT]) is routed to a plain HTTP
// stand-in, which takes no login.
func (o TransportOptions) Routed(host string) bool {
	to, ok := o.Routes[host]
	return ok && !strings.HasPrefix(to, "https://")
}

// StandInKeychain is kc, except that a registry routed to a plain HTTP
// stand-in (Routed) gets no credentials at all: the user's real ones
// (a docker config, PLUGIN_PASSWORD, a cloud's token) are never sent to a
// local registry that merely stands in for their registry.
func (o TransportOptions) StandInKeychain(kc authn.Keychain) authn.Keychain {
	if len(o.Routes) == 0 {
		return kc
	}
	return standIns{o: o, kc: kc}
}

type standIns struct {
	o  TransportOptions
	kc authn.Keychain
}

func (s standIns) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return s.ResolveContext(context.Background(), r)
}

func (s standIns) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	if s.o.Routed(r.RegistryStr()) {
		return authn.Anonymous, nil
	}
	return authn.Resolve(ctx, s.kc, r)
}

// MaxRetryAfter bounds how long a registry's Retry-After is honoured.
const MaxRetryAfter = 60 * time.Second

// retryAfter honours a registry's Retry-After on 429 and 503: the
// response is returned (and the request retried by the retry layer above)
// only after the time the registry asked for, at most MaxRetryAfter; the
// wait ends early when the request's context does.
type retryAfter struct{ inner http.RoundTripper }

func (r retryAfter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.inner.RoundTrip(req)
	if err != nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return resp, err
	}
	d := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if d <= 0 {
		return resp, nil
	}
	t := time.NewTimer(min(d, MaxRetryAfter))
	defer t.Stop()
	select {
	case <-t.C:
		return resp, nil
	case <-req.Context().Done():
		resp.Body.Close()
		return nil, req.Context().Err()
	}
}

// ParseRetryAfter reads a Retry-After value: seconds, or an HTTP date.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(n, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

// httpGuard refuses plain HTTP beyond loopback unless allowed.
type httpGuard struct {
	inner    http.RoundTripper
	insecure bool
	advice   string
	logf     func(string, ...any)
	mu       sync.Mutex
	told     map[string]bool
}

func (g *httpGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !IsLoopback(req.URL.Hostname()) {
		if !g.insecure {
			if req.Body != nil {
				req.Body.Close()
			}
			advice := g.advice
			if advice == "" {
				advice = "Serve it over HTTPS (PLUGIN_REGISTRY_CERTIFICATE for a private CA), or set PLUGIN_INSECURE=true to allow HTTP"
			}
			return nil, fmt.Errorf("%w: %s is not on loopback and answers only plain HTTP; credentials and images would cross the network in clear. %s", ErrPlainHTTP, req.URL.Host, advice)
		}
		g.mu.Lock()
		first := !g.told[req.URL.Host]
		g.told[req.URL.Host] = true
		g.mu.Unlock()
		if first && g.logf != nil {
			g.logf("using plain HTTP to %s (PLUGIN_INSECURE)", req.URL.Host)
		}
	}
	resp, err := g.inner.RoundTrip(req)
	if err == nil && req.Method == http.MethodGet && resp.Body != nil {
		if m := blobPath.FindStringSubmatch(req.URL.Path); m != nil {
			resp.Body = &namedBody{ReadCloser: resp.Body, what: "reading blob " + m[1] + " from " + req.URL.Host}
		}
	}
	return resp, err
}

// blobPath is a registry's blob path; its digest is the submatch.
var blobPath = regexp.MustCompile(`^/v2/.+/blobs/([a-z0-9]+:[a-zA-Z0-9=_-]+)$`)

// namedBody says, in its read errors, which blob was being read from
// where: a blob cut short by its registry would otherwise surface as an
// error of the connection it was being copied into (another registry's).
type namedBody struct {
	io.ReadCloser
	what string
}

func (b *namedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: %w", b.what, err)
	}
	return n, err
}

// IsLoopback reports whether host (a URL's host name, without its port)
// is localhost, in any case, or a loopback address (127.0.0.0/8, ::1):
// the one place plain HTTP may go without PLUGIN_INSECURE, for every
// client hoist makes (the registries' transport, keyless signing's
// Fulcio and Rekor).
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newHTTPTransport(o TransportOptions) (*http.Transport, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CACert != "" {
		pem := []byte(o.CACert)
		if !strings.Contains(o.CACert, "-----BEGIN") {
			b, err := os.ReadFile(o.CACert)
			if err != nil {
				return nil, fmt.Errorf("PLUGIN_REGISTRY_CERTIFICATE is neither PEM content nor a readable file: %w", err)
			}
			pem = b
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("PLUGIN_REGISTRY_CERTIFICATE holds no PEM certificate")
		}
		tlsCfg.RootCAs = pool
	}
	if o.SkipVerify {
		tlsCfg.InsecureSkipVerify = true
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	proxy := o.Proxy.ProxyFunc()
	return &http.Transport{
		Proxy:               func(req *http.Request) (*url.URL, error) { return proxy(req.URL) },
		DialContext:         idleDialer(&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}, timeout),
		TLSClientConfig:     tlsCfg,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 32,
		// Bounded per registry: a thousand tags do not open a thousand
		// connections.
		MaxConnsPerHost:       64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}, nil
}

// ErrStalled marks a transfer in which no byte moved for the timeout.
var ErrStalled = errors.New("transfer stalled")

// idleDialer dials connections on which every read and every write must
// move a byte within idle: the transport's own timeouts bound only the
// connection and the wait for headers, so a registry that stops reading
// an upload, or stops sending a blob, would otherwise hang a push forever.
func idleDialer(d *net.Dialer, idle time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: c, idle: idle}, nil
	}
}

// idleConn gives each read and write idle to move a byte.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) stalled(err error, what string) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: no byte %s %s for %s (PLUGIN_REGISTRY_TIMEOUT): %w", ErrStalled, what, c.RemoteAddr(), c.idle, err)
	}
	return err
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	n, err := c.Conn.Read(p)
	return n, c.stalled(err, "came from")
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	n, err := c.Conn.Write(p)
	return n, c.stalled(err, "was taken by")
}

// idleChunk is how much one deadline covers when a file is handed to the
// kernel: sendfile(2) goes on, a deadline at a time.
const idleChunk = 8 << 20

// ReadFrom keeps sendfile(2) for a file or a limited reader over one (a
// layer inside a tarball), one chunk per deadline.
func (c *idleConn) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	// The transport limits the body it was given, which may itself be a
	// limited reader over a file: the kernel sees through one level only,
	// so the chain is flattened, and what was sent is taken off each.
	var chain []*io.LimitedReader
	base := r
	for {
		lr, ok := base.(*io.LimitedReader)
		if !ok {
			break
		}
		chain = append(chain, lr)
		base = lr.R
	}
	var total int64
	for {
		n := int64(idleChunk)
		for _, lr := range chain {
			n = min(n, lr.N)
		}
		if n <= 0 {
			return total, nil
		}
		c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
		k, err := rf.ReadFrom(&io.LimitedReader{R: base, N: n})
		total += k
		for _, lr := range chain {
			lr.N -= k
		}
		if err != nil {
			return total, c.stalled(err, "was taken by")
		}
		if k < n {
			return total, nil // the source ended
		}
	}
}
