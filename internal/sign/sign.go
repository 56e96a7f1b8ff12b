// Package sign signs a pushed image's digest with a cosign key and stores
// the signature beside the image in its repository, in the form `cosign
// verify --key` accepts, through cosign's own Go packages (no cosign
// binary).
package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/in-toto/in-toto-golang/in_toto"
	slsa1 "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v1"
	"github.com/sigstore/cosign/v3/pkg/cosign"
	"github.com/sigstore/cosign/v3/pkg/cosign/attestation"
	cremote "github.com/sigstore/cosign/v3/pkg/cosign/remote"
	"github.com/sigstore/cosign/v3/pkg/oci"
	"github.com/sigstore/cosign/v3/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v3/pkg/oci/remote"
	"github.com/sigstore/cosign/v3/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v3/pkg/types"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	"golang.org/x/sync/errgroup"

	"github.com/hoist-build/hoist/internal/registry"
)

// ErrKey marks a signing key that cannot be used: unreadable, not a
// cosign key, of a type cosign does not sign with, or a wrong password.
var ErrKey = errors.New("signing key unusable")

// ErrSign marks a signature that could not be stored.
var ErrSign = errors.New("signing failed")

// Signer signs with one cosign key. The key's PEM block is checked when
// it is loaded; its decryption (scrypt, a quarter of a second) is done
// once, by Unlock, which a step runs alongside its push.
type Signer struct {
	pem      []byte
	password string
	from     string

	// keyless, when set, signs with a key made for the step and
	// certified by Fulcio, in place of a cosign key.
	keyless *keyless

	// Annotations are signed in every signature's payload, as cosign
	// sign -a key=value signs them (cosign verify -a checks them). Set
	// before the first signature.
	Annotations map[string]string

	once sync.Once
	sv   signature.SignerVerifier
	err  error
}

// The PEM types of cosign's private keys (cosign generate-key-pair,
// cosign import-key-pair).
var keyTypes = []string{"ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"}

// Load reads a cosign private key, given as PEM content or as a file's
// path, and checks that it is one. What is wrong is said without the key
// or the password. Unlock decrypts it.
func Load(key, password string) (*Signer, error) {
	data, from, err := readKey(key, "PLUGIN_SIGN_KEY")
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	switch {
	case block == nil:
		return nil, fmt.Errorf("%w: %s: it holds no PEM block: give the key cosign generate-key-pair wrote (cosign.key)", ErrKey, from)
	case !slices.Contains(keyTypes, block.Type):
		return nil, fmt.Errorf("%w: %s: it is not a cosign private key (%s): give an ENCRYPTED SIGSTORE PRIVATE KEY (cosign generate-key-pair), or import yours with cosign import-key-pair", ErrKey, from, block.Type)
	}
	return &Signer{pem: data, password: password, from: from}, nil
}

// readKey is a key given as PEM content, or the content of the file key
// names; from says which, for errors, in setting's name.
func readKey(key, setting string) (data []byte, from string, err error) {
	if strings.Contains(key, "-----BEGIN") {
		return []byte(key), setting + " (PEM content)", nil
	}
	data, err = os.ReadFile(key)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s is neither a PEM key nor a readable file: %w", ErrKey, setting, errors.Unwrap(err))
	}
	return data, setting + " file " + key, nil
}

// Unlock decrypts the key with its password, once; later calls return
// the first one's result.
func (s *Signer) Unlock() error {
	s.once.Do(func() {
		if s.keyless != nil {
			s.err = s.keyless.unlock()
			return
		}
		sv, err := cosign.LoadPrivateKey(s.pem, []byte(s.password), nil)
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "decrypt") {
				msg = "it cannot be decrypted with PLUGIN_SIGN_PASSWORD: a wrong password, or a damaged key"
			} else {
				msg = "cosign does not sign with it: " + msg
			}
			s.err = fmt.Errorf("%w: %s: %s", ErrKey, s.from, msg)
			return
		}
		s.sv = sv
	})
	return s.err
}

// Attestation is an in-toto predicate to sign and attach to an image.
type Attestation struct {
	// Kind is cosign's name of the predicate type: cyclonedx or
	// slsaprovenance1 (the names of cosign attest --type).
	Kind      string
	Predicate []byte
}

// PredicateType is the predicate type URI of a kind.
func PredicateType(kind string) string {
	switch kind {
	case KindSBOM:
		return in_toto.PredicateCycloneDX
	case KindProvenance:
		return slsa1.PredicateSLSAProvenance
	}
	return kind
}

// The attestation kinds hoist writes.
const (
	KindSBOM       = "cyclonedx"
	KindProvenance = "slsaprovenance1"
)

// Published is what Publish stored in one repository.
type Published struct {
	// Referrers is set when the registry has the OCI referrers API: the
	// signature and attestations were stored as referrers too.
	Referrers bool
}

// Publish signs digest as the image of repo and writes the signature to
// repo under cosign's tag (sha256-<hex>.sig), keeping the signatures
// already there; each attestation is wrapped in an in-toto statement
// about repo@digest, signed as a DSSE envelope and written under
// cosign's attestation tag (sha256-<hex>.att), replacing an attestation
// of the same predicate type. A registry with the OCI referrers API gets
// the signature and the attestations as referrers of the digest as
// well. tr and kc reach the registry. It is Prepare, then Commit.
func (s *Signer) Publish(ctx context.Context, repo name.Repository, digest string, atts []Attestation, access registry.Access) (Published, error) {
	p, err := s.Prepare(ctx, repo, digest, atts, access)
	if err != nil {
		return Published{}, err
	}
	return p.Commit(ctx)
}

// Prepared is what Publish writes to one repository, signed and with
// every blob stored, before the image's manifest is: Commit then writes
// the manifests under cosign's tags (one request each, at once), so that
// signing adds little to the end of a push, and a signature never names
// a digest the registry does not hold yet.
type Prepared struct {
	ref            name.Digest
	sigTag, attTag name.Tag
	sigs, atts     oci.Signatures
	ociSig         oci.Signature
	attSigs        []oci.Signature
	kinds          []string
	ropts          []remote.Option
	opt            ociremote.Option
	// access asks for the referrers API, once the image is there (a
	// registry may answer 404 for a digest it does not hold).
	access registry.Access
}

// Prepare signs digest as the image of repo and makes its attestations,
// reads the signatures and attestations repo already holds for it, and
// stores the blobs of what Commit will write. The image itself need not
// be in repo yet.
func (s *Signer) Prepare(ctx context.Context, repo name.Repository, digest string, atts []Attestation, access registry.Access) (*Prepared, error) {
	if err := s.Unlock(); err != nil {
		return nil, err
	}
	ref := repo.Digest(digest)
	fail := func(what string, err error) (*Prepared, error) {
		return nil, fmt.Errorf("%w: %s: %s: %w", ErrSign, ref, what, err)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return fail("digest", err)
	}
	pl := payload.Cosign{Image: ref}
	for k, v := range s.Annotations {
		if pl.Annotations == nil {
			pl.Annotations = map[string]any{}
		}
		pl.Annotations[k] = v
	}
	body, err := pl.MarshalJSON()
	if err != nil {
		return fail("payload", err)
	}
	sig, sigOpts, err := s.signMessage(ctx, body)
	if err != nil {
		return fail("sign", err)
	}
	p := &Prepared{ref: ref, access: access}
	if p.ociSig, err = static.NewSignature(body, base64.StdEncoding.EncodeToString(sig), sigOpts...); err != nil {
		return fail("sign", err)
	}
	// One puller and one pusher for the repository: the registry is
	// pinged, and its token fetched, once for every request below.
	p.ropts = access.Options(ctx)
	pusher, err := remote.NewPusher(p.ropts...)
	if err != nil {
		return fail("reach the registry", err)
	}
	puller, err := remote.NewPuller(p.ropts...)
	if err != nil {
		return fail("reach the registry", err)
	}
	p.ropts = append(p.ropts, remote.Reuse(pusher), remote.Reuse(puller))
	p.opt = ociremote.WithRemoteOptions(p.ropts...)
	if p.sigTag, err = ociremote.SignatureTag(ref, p.opt); err != nil {
		return fail("signature tag", err)
	}
	if p.attTag, err = ociremote.AttestationTag(ref, p.opt); err != nil {
		return fail("attestation tag", err)
	}
	var se oci.SignedEntity = &digestEntity{h: h, sigTag: p.sigTag, attTag: p.attTag, opt: p.opt}
	var dupes []mutate.SignOption
	if s.sv != nil {
		// A signature by the same key over the same payload is there.
		dupes = append(dupes, mutate.WithDupeDetector(cremote.NewDupeDetector(s.sv)))
	}
	if se, err = mutate.AttachSignatureToEntity(se, p.ociSig, dupes...); err != nil {
		return fail("sign", err)
	}
	rep := &replacer{fresh: map[v1.Hash]bool{}}
	for _, a := range atts {
		as, err := s.attestation(ctx, ref, a)
		if err != nil {
			return fail(a.Kind+" attestation", err)
		}
		p.attSigs = append(p.attSigs, as)
		p.kinds = append(p.kinds, a.Kind)
		rep.fresh[mustDigest(as)], rep.kind = true, PredicateType(a.Kind)
		if se, err = mutate.AttachAttestationToEntity(se, as, mutate.WithReplaceOp(rep)); err != nil {
			return fail(a.Kind+" attestation", err)
		}
	}
	// What the repository holds (read at once), merged with this run's;
	// then every blob of it stored.
	var g errgroup.Group
	g.Go(func() (err error) {
		if p.sigs, err = se.Signatures(); err != nil {
			return fmt.Errorf("read the signatures there: %w", err)
		}
		return writeBlobs(repo, p.sigs, p.ropts)
	})
	if len(p.attSigs) > 0 {
		g.Go(func() (err error) {
			if p.atts, err = se.Attestations(); err != nil {
				return fmt.Errorf("read the attestations there: %w", err)
			}
			return writeBlobs(repo, p.atts, p.ropts)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSign, ref, err)
	}
	return p, nil
}

// Commit writes the prepared signature and attestations under cosign's
// tags, and, where the registry has the referrers API, as referrers of
// the digest. The image must be in the repository by now.
func (p *Prepared) Commit(ctx context.Context) (Published, error) {
	var out Published
	var g errgroup.Group
	g.Go(func() (err error) {
		if out.Referrers, err = HasReferrers(ctx, p.ref, p.access); err != nil {
			return fmt.Errorf("ask for the referrers API: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := remote.Put(p.sigTag, p.sigs, p.ropts...); err != nil {
			return fmt.Errorf("store the signature: %w", err)
		}
		return nil
	})
	if len(p.attSigs) > 0 {
		g.Go(func() error {
			if err := remote.Put(p.attTag, p.atts, p.ropts...); err != nil {
				return fmt.Errorf("store the attestations: %w", err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return out, fmt.Errorf("%w: %s: %w", ErrSign, p.ref, err)
	}
	if !out.Referrers {
		return out, nil
	}
	if err := ociremote.WriteReferrer(p.ref, cosignArtifactType("sig"), []v1.Layer{p.ociSig}, nil, p.opt); err != nil {
		return out, fmt.Errorf("%w: %s: store the signature as a referrer: %w", ErrSign, p.ref, err)
	}
	for i, as := range p.attSigs {
		if err := ociremote.WriteReferrer(p.ref, ctypes.IntotoPayloadType, []v1.Layer{as}, map[string]string{"predicateType": PredicateType(p.kinds[i])}, p.opt); err != nil {
			return out, fmt.Errorf("%w: %s: store the %s attestation as a referrer: %w", ErrSign, p.ref, p.kinds[i], err)
		}
	}
	return out, nil
}

// writeBlobs stores the layers and the config of img in repo, at once.
func writeBlobs(repo name.Repository, img v1.Image, ropts []remote.Option) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	cfg, err := partial.ConfigLayer(img)
	if err != nil {
		return err
	}
	var g errgroup.Group
	for _, l := range append(layers, cfg) {
		g.Go(func() error { return remote.WriteLayer(repo, l, ropts...) })
	}
	return g.Wait()
}

// digestEntity is the image repo@digest as cosign's signing code sees it:
// its digest, and the signatures and attestations the repository holds
// under cosign's tags; the image need not be there yet.
type digestEntity struct {
	h              v1.Hash
	sigTag, attTag name.Tag
	opt            ociremote.Option
}

func (e *digestEntity) Digest() (v1.Hash, error) { return e.h, nil }

func (e *digestEntity) Signatures() (oci.Signatures, error) {
	return ociremote.Signatures(e.sigTag, e.opt)
}

func (e *digestEntity) Attestations() (oci.Signatures, error) {
	return ociremote.Signatures(e.attTag, e.opt)
}

func (e *digestEntity) Attachment(name string) (oci.File, error) {
	return nil, fmt.Errorf("no attachment %q: hoist attaches signatures and attestations only", name)
}

// replacer replaces the attestations of one predicate type that an
// earlier run attached with this run's: those of kind not in fresh go,
// every other stays. (cosign's own replace op prints to the process's
// standard error, and would drop this run's second SBOM of an index.)
type replacer struct {
	kind  string
	fresh map[v1.Hash]bool
}

func (r *replacer) Replace(base oci.Signatures, o oci.Signature) (oci.Signatures, error) {
	sigs, err := base.Get()
	if err != nil {
		return nil, err
	}
	keep := []oci.Signature{o}
	for _, s := range sigs {
		ann, err := s.Annotations()
		if err != nil {
			return nil, err
		}
		d, err := s.Digest()
		if err != nil {
			return nil, err
		}
		if ann["predicateType"] == r.kind && !r.fresh[d] {
			continue
		}
		keep = append(keep, s)
	}
	return replaced{Signatures: base, sigs: keep}, nil
}

type replaced struct {
	oci.Signatures
	sigs []oci.Signature
}

func (r replaced) Get() ([]oci.Signature, error) { return r.sigs, nil }

func mustDigest(s oci.Signature) v1.Hash {
	d, _ := s.Digest()
	return d
}

// cosignArtifactType is cosign's artifact type of its OCI 1.1 referrers.
func cosignArtifactType(what string) string {
	return "application/vnd.dev.cosign.artifact." + what + ".v1+json"
}

// attestation is a as cosign attest writes it: an in-toto statement
// about ref in a DSSE envelope signed with the key.
func (s *Signer) attestation(ctx context.Context, ref name.Digest, a Attestation) (oci.Signature, error) {
	st, err := attestation.GenerateStatement(attestation.GenerateOpts{
		Predicate: bytes.NewReader(a.Predicate),
		Type:      a.Kind,
		Digest:    strings.TrimPrefix(ref.DigestStr(), "sha256:"),
		Repo:      ref.Repository.String(),
	})
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	env, opts, err := s.signEnvelope(ctx, body)
	if err != nil {
		return nil, err
	}
	return static.NewAttestation(env, append(opts, static.WithLayerMediaType(ctypes.DssePayloadType),
		static.WithAnnotations(map[string]string{"predicateType": PredicateType(a.Kind)}))...)
}

// signMessage signs body (cosign's signature payload); a keyless
// signature comes with its certificate (and log entry) as options.
func (s *Signer) signMessage(ctx context.Context, body []byte) ([]byte, []static.Option, error) {
	if s.keyless != nil {
		return s.keyless.sign(ctx, &sgsign.PlainData{Data: body})
	}
	sig, err := s.sv.SignMessage(bytes.NewReader(body))
	return sig, nil, err
}

// signEnvelope signs an in-toto statement as a DSSE envelope.
func (s *Signer) signEnvelope(ctx context.Context, statement []byte) ([]byte, []static.Option, error) {
	if s.keyless != nil {
		return s.keyless.sign(ctx, &sgsign.DSSEData{Data: statement, PayloadType: ctypes.IntotoPayloadType})
	}
	env, err := dsse.WrapSigner(s.sv, ctypes.IntotoPayloadType).SignMessage(bytes.NewReader(statement))
	return env, nil, err
}

// HasReferrers asks the registry of ref for the OCI referrers API: a
// registry that has it answers GET /v2/<name>/referrers/<digest> with an
// image index; one without it answers 404 (distribution 2.8), or with
// something else.
func HasReferrers(ctx context.Context, ref name.Digest, access registry.Access) (bool, error) {
	repo := ref.Context()
	auth, err := access.Authenticator(ctx, repo)
	if err != nil {
		return false, err
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, access.RoundTripper(), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return false, err
	}
	u := url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/referrers/" + ref.DigestStr()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return resp.StatusCode == http.StatusOK && ct == string(types.OCIImageIndex), nil
}
