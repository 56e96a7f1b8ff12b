package harness

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	"github.com/go-openapi/runtime"
	"github.com/go-openapi/strfmt"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/rekor/pkg/types"
	dsse "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1"
	hashedrekord "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1"
	_ "github.com/sigstore/rekor/pkg/types/intoto/v0.0.2" // cosign's attestations
	"github.com/sigstore/rekor/pkg/util"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// Rekor stands in, on loopback, for Sigstore's transparency log (API v1):
// these machines reach no Rekor. It takes what Rekor takes (POST
// /api/v1/log/entries with a hashedrekord, dsse or intoto entry) and
// checks it with Rekor's own entry types, as Rekor does: the entry is
// well formed and its signature verifies, over the artifact's hash
// (hashedrekord) or over the DSSE envelope (dsse, intoto), with the
// certificate or public key the entry gives. A refused entry gets Rekor's
// 400. An accepted one is appended to a Merkle tree (RFC 6962) and
// answered as Rekor answers: the canonicalized body, its log index and
// integration time, the log's ID (the SHA-256 of its public key), a
// signed entry timestamp (the log key's signature over the canonical JSON
// of those four, which cosign verifies offline) and an inclusion proof
// with a signed checkpoint. cosign verifies the timestamps with
// SIGSTORE_REKOR_PUBLIC_KEY=PublicKeyFile. Nothing else of Rekor's API is
// served: a client that looks an entry up online gets 404.
type Rekor struct {
	URL string
	// PublicKeyFile is the log's public key (PEM).
	PublicKeyFile string
	// LogID is the log's ID: the hex SHA-256 of its DER public key.
	LogID string

	signer signature.SignerVerifier

	mu      sync.Mutex
	tree    *testonly.Tree
	entries []RekorEntry
	refused []string
	others  []string
}

// RekorEntry is an entry the stand-in checked and logged.
type RekorEntry struct {
	// Kind and APIVersion: hashedrekord 0.0.1, dsse 0.0.1, ...
	Kind, APIVersion string
	Index            int64
	// Body is the canonicalized entry, as it is logged.
	Body []byte
	// Hash is what the signature covers, as the log records it: the
	// artifact's hash (hashedrekord) or the DSSE payload's (dsse).
	Hash string
}

// rekorTreeID names the stand-in's tree in its checkpoints.
const rekorTreeID = 1

// StartRekor starts the stand-in; the test's end stops it.
func StartRekor(t testing.TB) *Rekor {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &Rekor{tree: testonly.New(rfc6962.DefaultHasher)}
	if r.signer, err = signature.LoadECDSASignerVerifier(key, crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	r.LogID = hex.EncodeToString(sum[:])
	r.PublicKeyFile = filepath.Join(t.TempDir(), "rekor.pub")
	if err := os.WriteFile(r.PublicKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Entries are the entries the stand-in checked and logged, in order.
func (r *Rekor) Entries() []RekorEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RekorEntry(nil), r.entries...)
}

// Refused are the reasons of the entries the stand-in refused; Others
// the requests it does not serve ("GET /api/v1/log/entries/...").
func (r *Rekor) Refused() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.refused...)
}

func (r *Rekor) Others() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.others...)
}

func (r *Rekor) serve(w http.ResponseWriter, req *http.Request) {
	answer := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	fail := func(code int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if code == http.StatusBadRequest {
			r.mu.Lock()
			r.refused = append(r.refused, msg)
			r.mu.Unlock()
		}
		answer(code, map[string]any{"code": code, "message": msg})
	}
	if req.Method != http.MethodPost || req.URL.Path != "/api/v1/log/entries" {
		r.mu.Lock()
		r.others = append(r.others, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		fail(http.StatusNotFound, "the stand-in serves POST /api/v1/log/entries only")
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<20))
	if err != nil {
		fail(http.StatusBadRequest, "read the entry: %v", err)
		return
	}
	pe, err := models.UnmarshalProposedEntry(bytes.NewReader(body), runtime.JSONConsumer())
	if err != nil {
		fail(http.StatusBadRequest, "the entry is not a proposed entry: %v", err)
		return
	}
	// Rekor's own checks: the schema, then the signature with the key
	// or certificate the entry gives.
	entry, err := types.CreateVersionedEntry(pe)
	if err != nil {
		fail(http.StatusBadRequest, "validation failed: %v", err)
		return
	}
	leaf, err := types.CanonicalizeEntry(req.Context(), entry)
	if err != nil {
		fail(http.StatusBadRequest, "canonicalize: %v", err)
		return
	}
	got := RekorEntry{Kind: pe.Kind(), APIVersion: entry.APIVersion(), Body: leaf}
	switch e := entry.(type) {
	case *hashedrekord.V001Entry:
		got.Hash = *e.HashedRekordObj.Data.Hash.Algorithm + ":" + *e.HashedRekordObj.Data.Hash.Value
	case *dsse.V001Entry:
		got.Hash = *e.DSSEObj.PayloadHash.Algorithm + ":" + *e.DSSEObj.PayloadHash.Value
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	index := int64(r.tree.Size())
	r.tree.AppendData(leaf)
	size := r.tree.Size()
	root := r.tree.Hash()
	proof, err := r.tree.InclusionProof(uint64(index), size)
	if err != nil {
		fail(http.StatusInternalServerError, "inclusion proof: %v", err)
		return
	}
	anon := models.LogEntryAnon{
		LogID: &r.LogID, LogIndex: &index, Body: leaf,
		IntegratedTime: func() *int64 { n := time.Now().Unix(); return &n }(),
	}
	// The signed entry timestamp: the log key's signature over the
	// canonical JSON of the body, time, index and log ID.
	payload, err := anon.MarshalBinary()
	if err == nil {
		payload, err = jsoncanonicalizer.Transform(payload)
	}
	var set []byte
	if err == nil {
		set, err = r.signer.SignMessage(bytes.NewReader(payload))
	}
	if err != nil {
		fail(http.StatusInternalServerError, "sign the entry: %v", err)
		return
	}
	checkpoint, err := util.CreateAndSignCheckpoint(req.Context(), "rekor.hoist.test", rekorTreeID, size, root, r.signer)
	if err != nil {
		fail(http.StatusInternalServerError, "checkpoint: %v", err)
		return
	}
	hashes := make([]string, len(proof))
	for i, h := range proof {
		hashes[i] = hex.EncodeToString(h)
	}
	treeSize, rootHex, cp := int64(size), hex.EncodeToString(root), string(checkpoint)
	anon.Verification = &models.LogEntryAnonVerification{
		SignedEntryTimestamp: strfmt.Base64(set),
		InclusionProof:       &models.InclusionProof{LogIndex: &index, TreeSize: &treeSize, RootHash: &rootHex, Hashes: hashes, Checkpoint: &cp},
	}
	got.Index = index
	r.entries = append(r.entries, got)
	uuid := hex.EncodeToString(rfc6962.DefaultHasher.HashLeaf(leaf))
	w.Header().Set("ETag", uuid)
	w.Header().Set("Location", "/api/v1/log/entries/"+uuid)
	answer(http.StatusCreated, models.LogEntry{uuid: anon})
}

// TrustedRoot writes a Sigstore trusted root (what cosign --trusted-root
// and sigstore-go take) naming the Fulcio stand-in's root as the
// certificate authority and each log by its URL, ID and public key, and
// returns its path. No CT log and no timestamp authority are in it.
func TrustedRoot(t testing.TB, f *Fulcio, logs ...*Rekor) string {
	t.Helper()
	raw := func(file string) []byte {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			t.Fatalf("%s holds no PEM", file)
		}
		return block.Bytes
	}
	since := map[string]string{"start": "2020-01-01T00:00:00Z"}
	var tlogs []any
	for _, l := range logs {
		id, err := hex.DecodeString(l.LogID)
		if err != nil {
			t.Fatal(err)
		}
		tlogs = append(tlogs, map[string]any{"baseUrl": l.URL, "hashAlgorithm": "SHA2_256", "logId": map[string]any{"keyId": id},
			"publicKey": map[string]any{"rawBytes": raw(l.PublicKeyFile), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": since}})
	}
	root := map[string]any{
		"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
		"tlogs":     tlogs,
		"certificateAuthorities": []any{map[string]any{"subject": map[string]string{"organization": "hoist test", "commonName": "stand-in fulcio root"},
			"uri": f.URL, "certChain": map[string]any{"certificates": []any{map[string]any{"rawBytes": raw(f.RootFile)}}}, "validFor": since}},
		"ctlogs": []any{}, "timestampAuthorities": []any{},
	}
	b, err := json.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
