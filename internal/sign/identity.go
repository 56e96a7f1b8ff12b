package sign

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/sigstore/cosign/v3/pkg/cosign"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Policy is whom the signatures of an image must come from: the holder of
// a key, or a keyless signer Fulcio certified for an identity.
type Policy struct {
	Key      signature.Verifier
	Identity *Identity
}

// Identity is a keyless signer's identity, as cosign verify's
// --certificate-identity and --certificate-oidc-issuer name it (both
// matched exactly), and the trust its certificate is checked against: the
// Fulcio roots, and the transparency log's key when one is given.
type Identity struct {
	Subject string
	Issuer  string
	trust   *root.TrustedRoot
	tlog    bool // the trust names a transparency log: its timestamps are required
	sct     bool // the trust names a CT log: the certificate's SCT is required
}

// Setting is a value and the name of the setting it came from, for
// errors.
type Setting struct{ Value, Name string }

// IdentityTrust is what a keyless policy is given: the identity (Subject,
// Issuer) and the trust its certificate is checked against, either
// TrustedRoot (a Sigstore trusted_root.json, cosign's --trusted-root: the
// certificate authorities, the transparency logs, the CT logs) or CARoots
// (the authority's root, then intermediates, as PEM: cosign's --ca-roots)
// with RekorKey (the transparency log's public key, PEM: cosign's
// SIGSTORE_REKOR_PUBLIC_KEY). Files are given as paths, or PEM content.
type IdentityTrust struct {
	Subject, Issuer, CARoots, RekorKey, TrustedRoot Setting
}

// LoadIdentity reads the trust for a keyless identity. With a log's key,
// each signature must carry the log's signed entry timestamp, and its
// certificate is checked at the time the log recorded it; without one,
// the log is not consulted and the certificate must be valid now
// (Fulcio's certificates last 10 minutes). Certificate transparency is
// checked only when a trusted root lists CT logs.
func LoadIdentity(in IdentityTrust) (*Identity, error) {
	switch {
	case in.Subject.Value == "" || in.Issuer.Value == "":
		return nil, fmt.Errorf("%w: a keyless identity needs both %s and %s (the signer's certificate identity and its OIDC issuer, as cosign verify's --certificate-identity and --certificate-oidc-issuer)", ErrKey, in.Subject.Name, in.Issuer.Name)
	case in.TrustedRoot.Value != "" && (in.CARoots.Value != "" || in.RekorKey.Value != ""):
		return nil, fmt.Errorf("%w: %s and %s/%s are both set: a trusted root holds the CA roots and the logs' keys; give one or the other", ErrKey, in.TrustedRoot.Name, in.CARoots.Name, in.RekorKey.Name)
	case in.TrustedRoot.Value != "":
		tr, err := root.NewTrustedRootFromPath(in.TrustedRoot.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %s is not a Sigstore trusted root (trusted_root.json): %w", ErrKey, in.TrustedRoot.Name, in.TrustedRoot.Value, err)
		}
		if len(tr.FulcioCertificateAuthorities()) == 0 {
			return nil, fmt.Errorf("%w: %s %s lists no certificate authority", ErrKey, in.TrustedRoot.Name, in.TrustedRoot.Value)
		}
		return &Identity{Subject: in.Subject.Value, Issuer: in.Issuer.Value, trust: tr, tlog: len(tr.RekorLogs()) > 0, sct: len(tr.CTLogs()) > 0}, nil
	case in.CARoots.Value == "":
		return nil, fmt.Errorf("%w: neither %s nor %s is set: give the certificate authority's root certificate (PEM; Fulcio's root) that the signer's certificate must chain to, or a Sigstore trusted root", ErrKey, in.CARoots.Name, in.TrustedRoot.Name)
	}
	data, from, err := readKey(in.CARoots.Value, in.CARoots.Name)
	if err != nil {
		return nil, err
	}
	var roots, inter []*x509.Certificate
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(data)
	if err == nil && len(certs) == 0 {
		err = fmt.Errorf("no CERTIFICATE block")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate: %w", ErrKey, from, err)
	}
	for _, c := range certs {
		if c.Subject.String() == c.Issuer.String() && c.CheckSignatureFrom(c) == nil {
			roots = append(roots, c)
		} else {
			inter = append(inter, c)
		}
	}
	if len(roots) != 1 {
		return nil, fmt.Errorf("%w: %s holds %d self-signed root certificates, want exactly one (intermediates may follow it)", ErrKey, from, len(roots))
	}
	cas := []root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: roots[0], Intermediates: inter}}
	logs := map[string]*root.TransparencyLog{}
	if in.RekorKey.Value != "" {
		data, from, err := readKey(in.RekorKey.Value, in.RekorKey.Name)
		if err != nil {
			return nil, err
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(data)
		var der []byte
		if err == nil {
			der, err = x509.MarshalPKIXPublicKey(pub)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s is not a PEM public key (the transparency log's, as Rekor's /api/v1/log/publicKey gives it): %w", ErrKey, from, err)
		}
		id := sha256.Sum256(der)
		// The log is trusted for every entry time (sigstore-go wants a
		// start).
		logs[fmt.Sprintf("%x", id)] = &root.TransparencyLog{ID: id[:], HashFunc: crypto.SHA256, PublicKey: pub, SignatureHashFunc: crypto.SHA256, ValidityPeriodStart: time.Unix(0, 0)}
	}
	trust, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, nil, nil, logs)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKey, in.CARoots.Name, err)
	}
	return &Identity{Subject: in.Subject.Value, Issuer: in.Issuer.Value, trust: trust, tlog: len(logs) > 0}, nil
}

// checkOpts are cosign's options for p, offline: a key's signatures
// without the log; an identity's against its roots, with the log's
// signed entry timestamps when its key is known, and the certificate's
// SCT when a CT log's is.
func (p Policy) checkOpts() *cosign.CheckOpts {
	if p.Identity == nil {
		return &cosign.CheckOpts{SigVerifier: p.Key, IgnoreTlog: true, IgnoreSCT: true, Offline: true}
	}
	id := p.Identity
	return &cosign.CheckOpts{TrustedMaterial: id.trust, Identities: []cosign.Identity{{Subject: id.Subject, Issuer: id.Issuer}},
		IgnoreTlog: !id.tlog, IgnoreSCT: !id.sct, Offline: true}
}

// Valid says whether p holds a key, or an identity LoadIdentity read, and
// not both.
func (p Policy) Valid() bool {
	if p.Identity != nil {
		return p.Key == nil && p.Identity.Loaded()
	}
	return p.Key != nil
}

// Loaded says whether i was read by LoadIdentity (it holds its trust).
func (i *Identity) Loaded() bool { return i != nil && i.trust != nil }

// Checks says what a keyless policy checks beyond the identity, and what
// it does not, on one line.
func (i *Identity) Checks() string {
	s := "certificate chain to the given CA"
	if i.tlog {
		s += "; transparency log timestamps required, checked offline (certificates checked at the logged time)"
	} else {
		s += "; no transparency log given: not consulted, certificates must be valid now"
	}
	if i.sct {
		return s + "; SCTs checked"
	}
	return s + "; SCTs not checked (no CT log given)"
}

// String says whom p trusts, for errors: "the key", or the identity.
func (p Policy) String() string {
	if p.Identity == nil {
		return "the key"
	}
	s := fmt.Sprintf("identity %s (issuer %s) under the given CA", p.Identity.Subject, p.Identity.Issuer)
	if p.Identity.tlog {
		s += " and transparency log"
	}
	return s
}
