// Package sign signs a pushed image's digest with a cosign key and stores
// the signature beside the image in its repository, in the form `cosign
// verify --key` accepts, through cosign's own Go packages (no cosign
// binary).
package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v3/pkg/cosign"
	"github.com/sigstore/cosign/v3/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v3/pkg/oci/remote"
	"github.com/sigstore/cosign/v3/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// ErrKey marks a signing key that cannot be used: unreadable, not a
// cosign key, of a type cosign does not sign with, or a wrong password.
var ErrKey = errors.New("signing key unusable")

// ErrSign marks a signature that could not be stored.
var ErrSign = errors.New("signing failed")

// Signer signs with one loaded key.
type Signer struct {
	sv signature.SignerVerifier
}

// Load reads a cosign private key, given as PEM content or as a file's
// path, and decrypts it with password. What is wrong is said without the
// key or the password.
func Load(key, password string) (*Signer, error) {
	pem := []byte(key)
	from := "PLUGIN_SIGN_KEY (PEM content)"
	if !strings.Contains(key, "-----BEGIN") {
		from = "PLUGIN_SIGN_KEY file " + key
		b, err := os.ReadFile(key)
		if err != nil {
			return nil, fmt.Errorf("%w: %s is neither a PEM key nor a readable file: %w", ErrKey, "PLUGIN_SIGN_KEY", errors.Unwrap(err))
		}
		pem = b
	}
	sv, err := cosign.LoadPrivateKey(pem, []byte(password), nil)
	if err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "decrypt"):
			msg = "it cannot be decrypted with PLUGIN_SIGN_PASSWORD: a wrong password, or a damaged key"
		case strings.Contains(msg, "invalid pem block"):
			msg = "it holds no PEM block: give the key cosign generate-key-pair wrote (cosign.key)"
		case strings.Contains(msg, "unsupported pem type"):
			msg = "it is not a cosign private key (" + strings.TrimPrefix(msg, "unsupported pem type: ") + "): give an ENCRYPTED SIGSTORE PRIVATE KEY (cosign generate-key-pair), or import yours with cosign import-key-pair"
		default:
			msg = "cosign does not sign with it: " + msg
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrKey, from, msg)
	}
	return &Signer{sv: sv}, nil
}

// Sign signs digest as the image of repo and writes the signature to
// repo, under cosign's tag (sha256-<hex>.sig), keeping the signatures
// already there. ropts reach the registry (transport, keychain, context).
func (s *Signer) Sign(ctx context.Context, repo name.Repository, digest string, ropts ...remote.Option) error {
	ref := repo.Digest(digest)
	body, err := (&payload.Cosign{Image: ref}).MarshalJSON()
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSign, ref, err)
	}
	sig, err := s.sv.SignMessage(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSign, ref, err)
	}
	ociSig, err := static.NewSignature(body, base64.StdEncoding.EncodeToString(sig))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSign, ref, err)
	}
	ropts = append(ropts, remote.WithContext(ctx))
	opt := ociremote.WithRemoteOptions(ropts...)
	se, err := ociremote.SignedEntity(ref, opt)
	if err != nil {
		return fmt.Errorf("%w: %s: read the image: %w", ErrSign, ref, err)
	}
	se, err = mutate.AttachSignatureToEntity(se, ociSig)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSign, ref, err)
	}
	if err := ociremote.WriteSignatures(repo, se, opt); err != nil {
		return fmt.Errorf("%w: %s: store the signature: %w", ErrSign, ref, err)
	}
	return nil
}
