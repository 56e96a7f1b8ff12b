package sign

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	sgsign "github.com/sigstore/sigstore-go/pkg/sign"

	"github.com/hoist-build/hoist/internal/harness"
)

// seen counts the requests a server got, and the Authorization headers
// among them.
type seen struct {
	mu    sync.Mutex
	n     int
	auths []string
}

func (s *seen) add(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if a := r.Header.Get("Authorization"); a != "" {
		s.auths = append(s.auths, a)
	}
}

func (s *seen) get() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, append([]string(nil), s.auths...)
}

// testTLS is a certificate for addrs (IP addresses) and a pool that trusts
// it.
func testTLS(t *testing.T, addrs ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hoist test sigstore"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, a := range addrs {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(a))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// serve serves h on addr (HOST:0), over TLS when cert is set, until the
// test ends, and returns its host:port.
func serve(t *testing.T, addr string, cert *tls.Certificate, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if cert != nil {
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{*cert}})
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// Fulcio gets the identity token (in the Authorization header), Rekor the
// signatures. Their URLs are checked when the step is planned
// (TestKeylessURLsNeedTLSBeyondLoopback), but a server at an https:// URL
// beyond loopback, or whoever answers in its place, can answer with a
// redirect, and Go's client keeps the Authorization header on a redirect
// to the same host whatever the scheme. Every redirect that leaves the
// URL's scheme and host is refused before a byte goes there: to plain
// HTTP on the same host (beyond loopback: an address of a network
// namespace the test makes), and to another host over TLS. A redirect
// within the origin is followed: through it the token reaches the
// stand-in Fulcio and a certificate comes back, and the signature
// reaches the stand-in Rekor (the controls, which show that the test's
// servers and TLS would carry the token if hoist let them).
func TestKeylessRedirectsStayOnTheURLsOrigin(t *testing.T) {
	ns := harness.NewNetns(t)
	fulcio := harness.StartFulcio(t)
	rekor := harness.StartRekor(t)
	cert, pool := testTLS(t, ns.HostIP, "127.0.0.1")
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}

	// Where a redirect must never lead: plain HTTP on the same host, and
	// another host over TLS.
	var plain, other seen
	plainAddr := serve(t, ns.HostIP+":0", nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plain.add(r)
		http.Error(w, "no", http.StatusBadRequest)
	}))
	otherAddr := serve(t, "127.0.0.1:0", &cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		other.add(r)
		http.Error(w, "no", http.StatusBadRequest)
	}))
	// front is the https:// service the settings name, beyond loopback:
	// it redirects every request with code to target+path, except under
	// /in/, which it passes to the stand-in at backend.
	front := func(code int, target, backend string) string {
		b, _ := url.Parse(backend)
		proxy := httputil.NewSingleHostReverseProxy(b)
		return "https://" + serve(t, ns.HostIP+":0", &cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, ok := strings.CutPrefix(r.URL.Path, "/in"); ok {
				r.URL.Path = p
				proxy.ServeHTTP(w, r)
				return
			}
			to := target
			if to == "" {
				to = "https://" + r.Host + "/in"
			}
			http.Redirect(w, r, to+r.URL.Path, code)
		}))
	}
	token := fulcio.Token(t, "ci@example.com", time.Hour)
	unlock := func(fulcioURL string) error {
		s, err := NewKeyless(Keyless{IDToken: token, FulcioURL: fulcioURL, Transport: transport})
		if err != nil {
			t.Fatalf("%s refused: %v", fulcioURL, err)
		}
		return s.keyless.unlock()
	}
	record := func(rekorURL string) error {
		s, err := NewKeyless(Keyless{IDToken: token, FulcioURL: fulcio.URL, RekorURL: rekorURL, Transport: transport})
		if err != nil {
			t.Fatalf("%s refused: %v", rekorURL, err)
		}
		if err := s.keyless.unlock(); err != nil {
			t.Fatalf("the stand-in Fulcio on loopback: %v", err)
		}
		_, _, err = s.keyless.sign(context.Background(), &sgsign.PlainData{Data: []byte("hoist")})
		return err
	}
	assertNone := func(t *testing.T, what string, s *seen) {
		t.Helper()
		if n, auths := s.get(); n > 0 {
			t.Errorf("%d request(s) reached %s, Authorization %q", n, what, auths)
		}
	}

	t.Run("Fulcio, within its origin (control)", func(t *testing.T) {
		before := fulcio.Issued.Load()
		if err := unlock(front(http.StatusTemporaryRedirect, "", fulcio.URL)); err != nil {
			t.Fatalf("a redirect within Fulcio's origin: %v", err)
		}
		if fulcio.Issued.Load() != before+1 {
			t.Errorf("the stand-in Fulcio issued no certificate through the redirect")
		}
	})
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		t.Run("Fulcio to plain HTTP "+http.StatusText(code), func(t *testing.T) {
			err := unlock(front(code, "http://"+plainAddr, fulcio.URL))
			if err == nil || !strings.Contains(err.Error(), "plain HTTP") {
				t.Errorf("%v, want a refusal of plain HTTP", err)
			}
			assertNone(t, "the plain HTTP server beyond loopback "+plainAddr, &plain)
		})
	}
	t.Run("Fulcio to another host", func(t *testing.T) {
		err := unlock(front(http.StatusTemporaryRedirect, "https://"+otherAddr, fulcio.URL))
		if err == nil || !strings.Contains(err.Error(), "refused a redirect to https://"+otherAddr) {
			t.Errorf("%v, want a refusal naming %s", err, otherAddr)
		}
		assertNone(t, "another host "+otherAddr, &other)
	})

	t.Run("Rekor, within its origin (control)", func(t *testing.T) {
		before := len(rekor.Entries())
		if err := record(front(http.StatusTemporaryRedirect, "", rekor.URL)); err != nil {
			t.Fatalf("a redirect within Rekor's origin: %v", err)
		}
		if len(rekor.Entries()) != before+1 {
			t.Errorf("the stand-in Rekor logged no entry through the redirect (refused: %v)", rekor.Refused())
		}
	})
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusFound} {
		t.Run("Rekor to plain HTTP "+http.StatusText(code), func(t *testing.T) {
			if err := record(front(code, "http://"+plainAddr, rekor.URL)); err == nil {
				t.Errorf("the signature was recorded through a redirect to plain HTTP")
			}
			assertNone(t, "the plain HTTP server beyond loopback "+plainAddr, &plain)
		})
	}
	t.Run("Rekor to another host", func(t *testing.T) {
		if err := record(front(http.StatusTemporaryRedirect, "https://"+otherAddr, rekor.URL)); err == nil {
			t.Errorf("the signature was recorded through a redirect to another host")
		}
		assertNone(t, "another host "+otherAddr, &other)
	})
}
