package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/cosign/v3/pkg/cosign"
	cbundle "github.com/sigstore/cosign/v3/pkg/cosign/bundle"
	"github.com/sigstore/rekor/pkg/client"
	"github.com/sigstore/rekor/pkg/generated/client/entries"
	"github.com/sigstore/rekor/pkg/generated/models"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// The Rekor stand-in logs what sigstore-go's client (hoist's) sends and
// answers with a timestamp that cosign's check accepts under the
// stand-in's key, and an inclusion proof that holds; it refuses an entry
// whose signature does not verify with its key, as Rekor does.
func TestRekorStandIn(t *testing.T) {
	t.Parallel()
	rekor := StartRekor(t)
	kp, err := sgsign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	content := &sgsign.PlainData{Data: []byte(`{"critical":{"image":{"docker-manifest-digest":"sha256:` + strings.Repeat("a", 64) + `"}}}`)}
	tl := sgsign.NewRekor(&sgsign.RekorOptions{BaseURL: rekor.URL, Timeout: 10 * time.Second, Version: 1})
	b, err := sgsign.Bundle(content, kp, sgsign.BundleOptions{Context: context.Background(), TransparencyLogs: []sgsign.Transparency{tl}})
	if err != nil {
		t.Fatalf("log the signature: %v (refused: %v)", err, rekor.Refused())
	}
	got := rekor.Entries()
	if len(got) != 1 || got[0].Kind != "hashedrekord" || got[0].APIVersion != "0.0.1" {
		t.Fatalf("entries %+v", got)
	}
	sum := sha256.Sum256(content.Data)
	if want := "sha256:" + hex.EncodeToString(sum[:]); got[0].Hash != want {
		t.Errorf("the log recorded hash %s, the signature is over %s", got[0].Hash, want)
	}
	e := b.GetVerificationMaterial().GetTlogEntries()[0]
	pemKey, _ := os.ReadFile(rekor.PublicKeyFile)
	block, _ := pem.Decode(pemKey)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	payload := cbundle.RekorPayload{Body: e.GetCanonicalizedBody(), IntegratedTime: e.GetIntegratedTime(),
		LogIndex: e.GetLogIndex(), LogID: hex.EncodeToString(e.GetLogId().GetKeyId())}
	if payload.LogID != rekor.LogID {
		t.Errorf("log ID %s, want %s", payload.LogID, rekor.LogID)
	}
	if err := cosign.VerifySET(payload, e.GetInclusionPromise().GetSignedEntryTimestamp(), pub.(*ecdsa.PublicKey)); err != nil {
		t.Errorf("the signed entry timestamp does not verify: %v", err)
	}
	payload.LogIndex++
	if err := cosign.VerifySET(payload, e.GetInclusionPromise().GetSignedEntryTimestamp(), pub.(*ecdsa.PublicKey)); err == nil {
		t.Error("the signed entry timestamp verifies for another index")
	}
	ip := e.GetInclusionProof()
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(ip.GetLogIndex()), uint64(ip.GetTreeSize()),
		rfc6962.DefaultHasher.HashLeaf(e.GetCanonicalizedBody()), ip.GetHashes(), ip.GetRootHash()); err != nil {
		t.Errorf("inclusion proof: %v", err)
	}

	// A signature that is not over the hash it names: refused.
	pubPEM, _ := kp.GetPublicKeyPem()
	sig, _, err := kp.SignData(context.Background(), []byte("other content"))
	if err != nil {
		t.Fatal(err)
	}
	alg, value := "sha256", hex.EncodeToString(sum[:])
	pe := &models.Hashedrekord{APIVersion: ptr("0.0.1"), Spec: models.HashedrekordV001Schema{
		Data:      &models.HashedrekordV001SchemaData{Hash: &models.HashedrekordV001SchemaDataHash{Algorithm: &alg, Value: &value}},
		Signature: &models.HashedrekordV001SchemaSignature{Content: sig, PublicKey: &models.HashedrekordV001SchemaSignaturePublicKey{Content: []byte(pubPEM)}},
	}}
	rc, err := client.GetRekorClient(rekor.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rc.Entries.CreateLogEntry(entries.NewCreateLogEntryParams().WithProposedEntry(pe))
	if err == nil || len(rekor.Refused()) != 1 || !strings.Contains(rekor.Refused()[0], "verifying signature") {
		t.Errorf("a bad signature: %v, refused %v", err, rekor.Refused())
	}
	if n := len(rekor.Entries()); n != 1 {
		t.Errorf("%d entries logged, want 1", n)
	}
}

func ptr[T any](v T) *T { return &v }
