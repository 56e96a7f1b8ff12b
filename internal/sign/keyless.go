package sign

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	retryablehttp "github.com/hashicorp/go-retryablehttp"
	cbundle "github.com/sigstore/cosign/v3/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v3/pkg/oci/static"
	rekorapi "github.com/sigstore/rekor/pkg/generated/client"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/hoist-build/hoist/internal/registry"
)

// Keyless is how a step signs without a key of its own, as cosign sign
// does without --key: a key made for the step, certified by Fulcio for
// the identity in the CI's OIDC token, each signature recorded in Rekor.
type Keyless struct {
	// IDToken is the CI's OIDC identity token (a JWT for the audience
	// sigstore).
	IDToken string
	// FulcioURL is the certificate authority.
	FulcioURL string
	// RekorURL, when set, is the transparency log (API v1) every
	// signature and attestation is recorded in.
	RekorURL string
	// Transport carries the requests to Fulcio and Rekor (nil: a clone
	// of http.DefaultTransport). Whatever it is, every request, a
	// redirected one included, is held to the scheme and host of the URL
	// it is for (see sameOrigin).
	Transport http.RoundTripper
}

// fulcioTimeout bounds the certificate request (one retry on a 5xx);
// rekorTimeout each log entry.
const (
	fulcioTimeout = 30 * time.Second
	rekorTimeout  = 60 * time.Second
)

// keyless is a keyless signer's state: the step's key and, after Unlock,
// Fulcio's certificate for it (DER).
type keyless struct {
	Keyless
	kp   *sgsign.EphemeralKeypair
	cert []byte
}

// NewKeyless checks k and returns its signer. The key is made and
// certified by Unlock, alongside the push.
func NewKeyless(k Keyless) (*Signer, error) {
	const from = "PLUGIN_SIGN_IDENTITY_TOKEN"
	parts := strings.Split(k.IDToken, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: %s is not a JWT (three base64url parts joined by dots): give the CI's OIDC identity token for the audience sigstore", ErrKey, from)
	}
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Iss string `json:"iss"`
		Exp int64  `json:"exp"`
	}
	if err != nil || json.Unmarshal(claims, &c) != nil || c.Iss == "" {
		return nil, fmt.Errorf("%w: %s: its claims are not a JSON object with an issuer (iss)", ErrKey, from)
	}
	if c.Exp != 0 && time.Unix(c.Exp, 0).Before(time.Now()) {
		return nil, fmt.Errorf("%w: %s (issuer %s) expired at %s: the CI must mint it for this step", ErrKey, from, c.Iss, time.Unix(c.Exp, 0).UTC().Format(time.RFC3339))
	}
	for _, u := range []struct{ setting, url string }{{"PLUGIN_SIGN_FULCIO_URL", k.FulcioURL}, {"PLUGIN_SIGN_REKOR_URL", k.RekorURL}} {
		if u.url == "" && u.setting == "PLUGIN_SIGN_REKOR_URL" {
			continue
		}
		p, err := url.Parse(u.url)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return nil, fmt.Errorf("%w: %s %q is not an http(s) URL", ErrKey, u.setting, shown(u.url))
		}
		// A login in the URL is sent nowhere (Fulcio is given the
		// identity token, Rekor takes none) and would only be printed.
		if p.User != nil {
			return nil, fmt.Errorf("%w: %s %s holds a login (user:password@ before the host): Fulcio is given the identity token and Rekor takes no login, so hoist would send it nowhere; remove it from the URL", ErrKey, u.setting, shown(u.url))
		}
		// Fulcio gets the identity token, Rekor the signatures: in clear
		// over plain HTTP, to anyone on the way. Only a service on this
		// machine may be reached so.
		if p.Scheme == "http" && !registry.IsLoopback(p.Hostname()) {
			return nil, fmt.Errorf("%w: %s %q is plain HTTP to %s, which would send the identity token and the signatures in clear: use https:// (plain http:// only to a loopback address: localhost, 127.0.0.0/8, ::1)", ErrKey, u.setting, u.url, p.Hostname())
		}
	}
	return &Signer{from: from, keyless: &keyless{Keyless: k}}, nil
}

// unlock makes the step's key and has Fulcio certify it.
func (k *keyless) unlock() error {
	kp, err := sgsign.NewEphemeralKeypair(nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*fulcioTimeout+5*time.Second)
	defer cancel()
	tr, err := k.held("PLUGIN_SIGN_FULCIO_URL", k.FulcioURL, "the identity token")
	if err != nil {
		return err
	}
	f := sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: strings.TrimSuffix(k.FulcioURL, "/"), Timeout: fulcioTimeout, Retries: 1, Transport: tr})
	cert, err := f.GetCertificate(ctx, kp, &sgsign.CertificateProviderOptions{IDToken: k.IDToken})
	if err != nil {
		return fmt.Errorf("%w: Fulcio (%s) gave no certificate for PLUGIN_SIGN_IDENTITY_TOKEN: %w", ErrKey, shown(k.FulcioURL), err)
	}
	if _, err := x509.ParseCertificate(cert); err != nil {
		return fmt.Errorf("%w: Fulcio (%s) answered with no certificate: %w", ErrKey, shown(k.FulcioURL), err)
	}
	k.kp, k.cert = kp, cert
	return nil
}

// held is the transport for the service at raw (a Fulcio or Rekor URL,
// named by setting), held to its scheme and host.
func (k *keyless) held(setting, raw, carries string) (sameOrigin, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return sameOrigin{}, fmt.Errorf("%w: %s %q is not an http(s) URL", ErrKey, setting, shown(raw))
	}
	inner := k.Transport
	if inner == nil {
		inner = http.DefaultTransport.(*http.Transport).Clone()
	}
	return sameOrigin{setting: setting, carries: carries, scheme: u.Scheme, host: u.Host, inner: inner}, nil
}

// sameOrigin holds every request of a Fulcio or Rekor client to the
// scheme and host of the URL the settings give: Go's client follows a
// redirect to any URL, and keeps the Authorization header (the identity
// token) when the host stays the same (or becomes a subdomain), whatever
// the scheme, so a server, or whoever answers in its place, could have the
// token sent again over plain HTTP. A redirect elsewhere is refused, and
// never followed: neither to another scheme or host, nor to plain HTTP
// beyond loopback.
type sameOrigin struct {
	setting, carries string
	scheme, host     string
	inner            http.RoundTripper
}

func (o sameOrigin) check(u *url.URL) error {
	to := shown((&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String())
	if u.Scheme == "http" && !registry.IsLoopback(u.Hostname()) {
		return fmt.Errorf("refused to send %s over plain HTTP to %s, where %s (%s) redirected it: plain http:// goes only to a loopback address", o.carries, to, o.setting, o.scheme+"://"+o.host)
	}
	if !strings.EqualFold(u.Scheme, o.scheme) || !strings.EqualFold(u.Host, o.host) {
		return fmt.Errorf("refused a redirect to %s: %s goes only to %s, the host of %s, over %s", to, o.carries, o.host, o.setting, o.scheme)
	}
	return nil
}

func (o sameOrigin) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := o.check(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return o.inner.RoundTrip(req)
}

// client is an HTTP client that follows a redirect only within the
// origin (and at most 10).
func (o sameOrigin) client() *http.Client {
	return &http.Client{Transport: o, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return fmt.Errorf("%s: stopped after 10 redirects", o.setting)
		}
		return o.check(req.URL)
	}}
}

// rekorClient is Rekor's API client, made as rekor's client.GetRekorClient
// makes it (one retry on a 5xx or a dropped connection), but reaching
// Rekor only through o.
func rekorClient(raw string, o sameOrigin) (*rekorapi.Rekor, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	rc := retryablehttp.NewClient()
	rc.HTTPClient = o.client()
	rc.RetryMax = 1
	rc.Logger = nil
	path := u.Path
	if path == "" {
		path = rekorapi.DefaultBasePath
	}
	rt := httptransport.NewWithClient(u.Host, path, []string{u.Scheme}, rc.StandardClient())
	rt.Consumers["application/json"] = runtime.JSONConsumer()
	rt.Producers["application/json"] = runtime.JSONProducer()
	return rekorapi.New(rt, strfmt.Default), nil
}

// shown is a URL as hoist prints it: without a user and password (one
// that does not parse loses everything up to its last @).
func shown(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		u.User = nil
		return u.String()
	}
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		return "****@" + raw[i+1:]
	}
	return raw
}

// Identity is whom Fulcio certified the key of a keyless signer for: the
// identity (the token's email, or a URI) and its issuer, as cosign verify
// --certificate-identity and --certificate-oidc-issuer take them; "" for
// a key, or before Unlock.
func (s *Signer) Identity() (identity, issuer string) {
	if s.keyless == nil || s.keyless.cert == nil {
		return "", ""
	}
	c, err := x509.ParseCertificate(s.keyless.cert)
	if err != nil {
		return "", ""
	}
	switch {
	case len(c.EmailAddresses) > 0:
		identity = c.EmailAddresses[0]
	case len(c.URIs) > 0:
		identity = c.URIs[0].String()
	}
	for _, e := range c.Extensions {
		switch {
		case e.Id.Equal(oidIssuerV2):
			var v string
			if _, err := asn1.UnmarshalWithParams(e.Value, &v, "utf8"); err == nil {
				issuer = v
			}
		case e.Id.Equal(oidIssuerV1) && issuer == "":
			issuer = string(e.Value)
		}
	}
	return identity, issuer
}

// The OIDs of Fulcio's certificate extensions that name the token's
// issuer: raw (deprecated), and as a DER UTF8String.
var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

// GetCertificate is the certificate Fulcio gave (sigstore-go's
// CertificateProvider): one for every signature of the step.
func (k *keyless) GetCertificate(context.Context, sgsign.Keypair, *sgsign.CertificateProviderOptions) ([]byte, error) {
	return k.cert, nil
}

// sign signs content with the step's key, records it in Rekor when a log
// is set, and returns the signature (for a DSSE envelope, the envelope)
// with the options that put the certificate and the log's promise beside
// it, where cosign verify looks for them.
func (k *keyless) sign(ctx context.Context, content sgsign.Content) ([]byte, []static.Option, error) {
	opts := sgsign.BundleOptions{Context: ctx, CertificateProvider: k}
	if k.RekorURL != "" {
		base := strings.TrimSuffix(k.RekorURL, "/")
		o, err := k.held("PLUGIN_SIGN_REKOR_URL", base, "the signatures")
		if err != nil {
			return nil, nil, err
		}
		rc, err := rekorClient(base, o)
		if err != nil {
			return nil, nil, err
		}
		opts.TransparencyLogs = []sgsign.Transparency{sgsign.NewRekor(&sgsign.RekorOptions{BaseURL: base, Timeout: rekorTimeout, Retries: 1, Version: 1, Client: rc.Entries})}
	}
	b, err := sgsign.Bundle(content, k.kp, opts)
	if err != nil {
		return nil, nil, err
	}
	var sig []byte
	if env := b.GetDsseEnvelope(); env != nil {
		// The envelope in DSSE's JSON form (the protobuf's field names).
		if sig, err = json.Marshal(env); err != nil {
			return nil, nil, err
		}
	} else {
		sig = b.GetMessageSignature().GetSignature()
	}
	cert, err := x509.ParseCertificate(b.GetVerificationMaterial().GetCertificate().GetRawBytes())
	if err != nil {
		return nil, nil, fmt.Errorf("the signed bundle holds no certificate: %w", err)
	}
	certPEM, err := cryptoutils.MarshalCertificateToPEM(cert)
	if err != nil {
		return nil, nil, err
	}
	so := []static.Option{static.WithCertChain(certPEM, nil)}
	if entries := b.GetVerificationMaterial().GetTlogEntries(); len(entries) > 0 {
		// Rekor's signed promise of inclusion, as cosign's bundle
		// annotation holds it.
		e := entries[0]
		so = append(so, static.WithBundle(&cbundle.RekorBundle{
			SignedEntryTimestamp: e.GetInclusionPromise().GetSignedEntryTimestamp(),
			Payload: cbundle.RekorPayload{Body: e.GetCanonicalizedBody(), IntegratedTime: e.GetIntegratedTime(),
				LogIndex: e.GetLogIndex(), LogID: hex.EncodeToString(e.GetLogId().GetKeyId())},
		}))
	}
	return sig, so, nil
}
