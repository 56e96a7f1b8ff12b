package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Fulcio stands in, on loopback, for Sigstore's certificate authority and
// for the OIDC issuer whose tokens it accepts: these machines reach
// neither the public Fulcio nor a CI's issuer. It checks what Fulcio
// checks of a request for a certificate (POST /api/v2/signingCert): the
// identity token's signature by the issuer's key, its issuer, audience
// (sigstore) and expiry, and the proof that the requester holds the key
// to certify (its signature over the token's email). It answers as
// Fulcio does: a certificate for that key, valid ten minutes, for code
// signing, with the email as its subject alternative name and the issuer
// in Fulcio's extensions, issued by a root of its own (RootFile).
type Fulcio struct {
	URL      string
	Issuer   string
	RootFile string
	// Issued counts the certificates issued; Requests every request
	// received, answered or refused.
	Issued, Requests atomic.Int32

	issuerKey *ecdsa.PrivateKey
	root      *x509.Certificate
	rootKey   *ecdsa.PrivateKey
}

// The OIDs of Fulcio's certificate extensions for the token's issuer:
// the first (deprecated) holds it raw, the second as a DER UTF8String.
var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

// StartFulcio starts the stand-in; the test's end stops it.
func StartFulcio(t testing.TB) *Fulcio {
	t.Helper()
	f := &Fulcio{}
	var err error
	if f.issuerKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if f.rootKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"hoist test"}, CommonName: "stand-in fulcio root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &f.rootKey.PublicKey, f.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if f.root, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	f.RootFile = filepath.Join(t.TempDir(), "fulcio-root.pem")
	if err := os.WriteFile(f.RootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	f.Issuer = srv.URL + "/oidc"
	return f
}

// Token is an identity token of the issuer for email, valid for ttl (a
// negative ttl: expired).
func (f *Fulcio) Token(t testing.TB, email string, ttl time.Duration) string {
	t.Helper()
	return f.token(t, f.issuerKey, f.Issuer, email, ttl)
}

// ForeignToken is a token that names the issuer but is signed by another
// key.
func (f *Fulcio) ForeignToken(t testing.TB, email string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return f.token(t, k, f.Issuer, email, time.Hour)
}

func (f *Fulcio) token(t testing.TB, key *ecdsa.PrivateKey, issuer, email string, ttl time.Duration) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := map[string]any{
		"iss": issuer, "sub": email, "email": email, "email_verified": true, "aud": "sigstore",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(ttl).Unix(),
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *Fulcio) serve(w http.ResponseWriter, r *http.Request) {
	f.Requests.Add(1)
	fail := func(code int, format string, args ...any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"code": code, "message": fmt.Sprintf(format, args...)})
	}
	if r.Method != http.MethodPost || r.URL.Path != "/api/v2/signingCert" {
		fail(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
		return
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		fail(http.StatusUnauthorized, "no bearer token")
		return
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		fail(http.StatusUnauthorized, "the identity token is not a JWT: %v", err)
		return
	}
	var claims jwt.Claims
	var extra struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}
	if err := tok.Claims(&f.issuerKey.PublicKey, &claims, &extra); err != nil {
		fail(http.StatusUnauthorized, "the identity token is not signed by the issuer: %v", err)
		return
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: f.Issuer, AnyAudience: jwt.Audience{"sigstore"}, Time: time.Now()}, 0); err != nil {
		fail(http.StatusUnauthorized, "the identity token is not valid: %v", err)
		return
	}
	if extra.Email == "" || !extra.EmailVerified {
		fail(http.StatusBadRequest, "the identity token has no verified email")
		return
	}
	var req struct {
		PublicKeyRequest struct {
			PublicKey struct {
				Algorithm string `json:"algorithm"`
				Content   string `json:"content"`
			} `json:"publicKey"`
			ProofOfPossession string `json:"proofOfPossession"`
		} `json:"publicKeyRequest"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		fail(http.StatusBadRequest, "the request is not JSON: %v", err)
		return
	}
	block, _ := pem.Decode([]byte(req.PublicKeyRequest.PublicKey.Content))
	if block == nil {
		fail(http.StatusBadRequest, "the public key is not PEM")
		return
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	ec, isEC := pub.(*ecdsa.PublicKey)
	if err != nil || !isEC {
		fail(http.StatusBadRequest, "the public key is not an ECDSA key (%v)", err)
		return
	}
	pop, err := base64.StdEncoding.DecodeString(req.PublicKeyRequest.ProofOfPossession)
	digest := sha256.Sum256([]byte(extra.Email))
	if err != nil || !ecdsa.VerifyASN1(ec, digest[:], pop) {
		fail(http.StatusBadRequest, "the proof of possession is not a signature of the token's email by the key")
		return
	}
	issuerV2, _ := asn1.MarshalWithParams(f.Issuer, "utf8")
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	leaf := &x509.Certificate{
		SerialNumber: serial, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(10 * time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		EmailAddresses:  []string{extra.Email},
		ExtraExtensions: []pkix.Extension{{Id: oidIssuerV1, Value: []byte(f.Issuer)}, {Id: oidIssuerV2, Value: issuerV2}},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, f.root, ec, f.rootKey)
	if err != nil {
		fail(http.StatusInternalServerError, "issue: %v", err)
		return
	}
	f.Issued.Add(1)
	chain := []string{
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.root.Raw})),
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(map[string]any{"signedCertificateEmbeddedSct": map[string]any{"chain": map[string]any{"certificates": chain}}})
}
