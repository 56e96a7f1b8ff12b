package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RegistryOptions choose what a test registry demands.
type RegistryOptions struct {
	// Auth turns on htpasswd basic auth with User and Password.
	Auth bool
	// User and Password default to "hoist" and a random password.
	User, Password string
	// TLS serves HTTPS with a certificate for 127.0.0.1 from a test CA.
	TLS bool
	// Names are more host names the certificate is for (a cloud
	// registry's, which a test maps to 127.0.0.1).
	Names []string
	// Netns runs the registry in that network namespace, on its address
	// (not loopback) instead of 127.0.0.1.
	Netns *Netns
}

// Registry is a running CNCF distribution registry (docker-registry).
type Registry struct {
	// Host is 127.0.0.1:PORT.
	Host string
	// Dir holds the config, the storage and, with TLS, the CA.
	Dir            string
	User, Password string
	// CAFile is the PEM file of the CA that signed the server certificate.
	CAFile string
	TLS    bool
}

// StartRegistry starts a registry on a free loopback port; it is stopped,
// by its PID, when the test ends.
func StartRegistry(t testing.TB, o RegistryOptions) *Registry {
	t.Helper()
	return startRegistry(t, o, t.TempDir(), t.Cleanup)
}

func startRegistry(t testing.TB, o RegistryOptions, dir string, cleanup func(func())) *Registry {
	t.Helper()
	return startRegistryWith(t, o, dir, cleanup, "")
}

// startRegistryWith starts a registry with extraCfg appended to its
// configuration.
func startRegistryWith(t testing.TB, o RegistryOptions, dir string, cleanup func(func()), extraCfg string) *Registry {
	t.Helper()
	bin := Need(t, "docker-registry")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &Registry{Dir: dir, TLS: o.TLS}
	var extra strings.Builder
	extra.WriteString(extraCfg)
	if o.Auth {
		r.User, r.Password = o.User, o.Password
		if r.User == "" {
			r.User = "hoist"
		}
		if r.Password == "" {
			r.Password = "pw-" + randomHex(12)
		}
		htpasswd := Need(t, "htpasswd")
		line := Run(t, nil, htpasswd, "-Bbn", r.User, r.Password)
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&extra, "auth: {htpasswd: {realm: hoist-test, path: %q}}\n", filepath.Join(dir, "htpasswd"))
	}
	tlsLine := ""
	if o.TLS {
		crt, key := r.writeCerts(t, o.Names...)
		tlsLine = fmt.Sprintf(", tls: {certificate: %q, key: %q}", crt, key)
	}
	var lastErr string
	for attempt := 0; attempt < 3; attempt++ {
		if o.Netns != nil {
			// The namespace is the test's own: its ports are free.
			r.Host = fmt.Sprintf("%s:%d", o.Netns.IP, 5000+attempt)
		} else {
			r.Host = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		}
		// Paths are quoted: test directories can hold commas, which end a
		// YAML flow mapping.
		cfg := fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %q}, delete: {enabled: true}}\nhttp: {addr: %s%s}\n%s",
			filepath.Join(dir, "data"), r.Host, tlsLine, extra.String())
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := []string{bin, "serve", cfgPath}
		if o.Netns != nil {
			cmd = append(append([]string{}, o.Netns.Enter...), cmd...)
		}
		p, err := startProcess(filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt)), cmd[0], cmd[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		// The port was free a moment ago; another registry may have taken
		// it since, in which case ours exits at once and the answer comes
		// from the other one. Only a live process of ours counts.
		if waitFor(10*time.Second, func() bool { return p.exited() || r.answers() }) && !p.exited() {
			time.Sleep(100 * time.Millisecond)
			if !p.exited() {
				cleanup(func() { p.stop(5 * time.Second) })
				return r
			}
		}
		p.stop(time.Second)
		lastErr = p.logTail(4000)
	}
	t.Fatalf("docker-registry did not start: %s", lastErr)
	return nil
}

// answers reports whether the registry serves /v2/.
func (r *Registry) answers() bool {
	c := r.Client()
	c.Timeout = time.Second
	resp, err := c.Get(r.URL() + "/v2/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized
}

// URL is the registry's base URL.
func (r *Registry) URL() string {
	if r.TLS {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// Client is an HTTP client that trusts the registry's CA.
func (r *Registry) Client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.TLS {
		pool := x509.NewCertPool()
		b, _ := os.ReadFile(r.CAFile)
		pool.AppendCertsFromPEM(b)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (r *Registry) writeCerts(t testing.TB, names ...string) (crtPath, keyPath string) {
	t.Helper()
	ca := NewCA(t, r.Dir)
	r.CAFile = ca.File
	return ca.Issue(t, r.Dir, "server", x509.ExtKeyUsageServerAuth, names...)
}

// CA is a test certificate authority whose certificate is in File.
type CA struct {
	File string
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

// NewCA makes a CA in dir (ca.pem).
func NewCA(t testing.TB, dir string) *CA {
	t.Helper()
	key, der := selfSignedCA(t, "hoist test CA")
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{File: filepath.Join(dir, "ca.pem"), key: key, cert: cert}
	writePEM(t, ca.File, "CERTIFICATE", der)
	return ca
}

// Issue writes a certificate for 127.0.0.1, localhost and names, for
// usage, and its key: dir/NAME.pem and dir/NAME-key.pem.
func (ca *CA) Issue(t testing.TB, dir, name string, usage x509.ExtKeyUsage, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     append([]string{"localhost"}, names...),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

// selfSignedCA makes a P-256 key and a self-signed CA certificate for it,
// valid for a day.
func selfSignedCA(t testing.TB, cn string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// Crane runs the pinned crane, a client independent of hoist, against the
// registry: with its credentials (in a Docker config of its own) and its CA
// (SSL_CERT_FILE), or --insecure for plain HTTP.
func (r *Registry) Crane(t testing.TB, args ...string) string {
	t.Helper()
	env, insecure := r.clientEnv(t)
	if insecure {
		args = append([]string{"--insecure"}, args...)
	}
	return Run(t, env, Tool(t, "crane"), args...)
}

// Cosign runs the pinned cosign CLI (an independent verifier) against the
// registry with its credentials and CA, offline: args are a cosign
// command and its arguments; the registry flags are added.
func (r *Registry) Cosign(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return r.CosignEnv(t, nil, args...)
}

// CosignEnv is Cosign with more environment (SIGSTORE_REKOR_PUBLIC_KEY,
// ...).
func (r *Registry) CosignEnv(t testing.TB, extra []string, args ...string) (string, error) {
	t.Helper()
	env, insecure := r.clientEnv(t)
	env = append(env, extra...)
	if insecure {
		args = append(args[:1:1], append([]string{"--allow-insecure-registry", "--allow-http-registry"}, args[1:]...)...)
	}
	return RunErr(append(env, "HOME="+t.TempDir(), "TUF_ROOT="+t.TempDir()), Tool(t, "cosign"), args...)
}

// clientEnv is a registry client's environment: a Docker config of its
// own with the registry's login, and its CA; insecure when it is plain
// HTTP.
func (r *Registry) clientEnv(t testing.TB) ([]string, bool) {
	cfg := t.TempDir()
	if r.User != "" {
		auth := base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))
		b, _ := json.Marshal(map[string]any{"auths": map[string]any{r.Host: map[string]string{"auth": auth}}})
		if err := os.WriteFile(filepath.Join(cfg, "config.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"DOCKER_CONFIG=" + cfg}
	if r.TLS {
		return append(env, "SSL_CERT_FILE="+r.CAFile), false
	}
	return env, true
}

// Digest reads ref's manifest digest back with crane.
func (r *Registry) Digest(t testing.TB, ref string) string {
	t.Helper()
	return strings.TrimSpace(r.Crane(t, "digest", ref))
}
