package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// cosignBin is the pinned cosign CLI scripts/setup.sh builds.
var cosignBin = "bin/cosign"

// signKey is the cosign key pair the sign suite signs with, made once.
type signKey struct {
	dir, key, pub, password string
	// sbom and provenance are the predicates cosign attests in the
	// baseline (made untimed, as a CI would have them from earlier steps).
	sbom, provenance string
}

func (b *bench) makeSignKey() (*signKey, error) {
	k := &signKey{dir: filepath.Join(b.dir, "sign-key"), password: "bench-pw"}
	k.key, k.pub = filepath.Join(k.dir, "cosign.key"), filepath.Join(k.dir, "cosign.pub")
	k.sbom, k.provenance = filepath.Join(k.dir, "sbom.json"), filepath.Join(k.dir, "provenance.json")
	if _, err := os.Stat(k.key); err == nil {
		return k, nil
	}
	if err := os.MkdirAll(k.dir, 0o755); err != nil {
		return nil, err
	}
	cosign, err := filepath.Abs(cosignBin)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(cosign, "generate-key-pair")
	cmd.Dir, cmd.Env = k.dir, append(os.Environ(), "COSIGN_PASSWORD="+k.password)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cosign generate-key-pair: %v\n%s", err, out)
	}
	return k, nil
}

// signScenarios measure what signing with an SBOM and a provenance adds
// to a push, to one registry and to four: hoist push, the same push with
// PLUGIN_SIGN + PLUGIN_SBOM + PLUGIN_PROVENANCE, and the peers' way:
// crane push, then cosign sign and two cosign attest calls (per
// registry, the registries in parallel), with the predicates ready.
// Trivy's layer cache is warm after the warm-up run, as it is after a
// scan gate.
func (b *bench) signScenarios(in *pushInputs, k *signKey, size int) []scenario {
	const app = "/bench/app:1"
	cache := filepath.Join(b.dir, "sign-trivy-cache")
	push := func(m *meas, extra ...string) error {
		args := []string{hoistBin, "push", "--source-tar-path", in.gz, "--progress", "quiet", "--daemon-off", "--compress-cache="}
		for _, r := range m.regs {
			args = append(args, "--destination", r+app)
		}
		return m.exec(append(args, extra...)...)
	}
	signed := func(m *meas) error {
		return push(m, "--sign", "--sign-key", k.key, "--sign-password", k.password, "--sbom", "--provenance", "--trivy", trivyBin, "--cache-dir", cache)
	}
	cosignChain := func(reg string) []string {
		flags := "--key " + k.key + " --tlog-upload=false --use-signing-config=false --allow-insecure-registry --allow-http-registry -y"
		return []string{"sh", "-c", "export COSIGN_PASSWORD=" + k.password + " COSIGN_YES=true; ref=$(" + craneBin + " push " + in.gz + " " + reg + app + ") && " +
			cosignBin + " sign " + flags + " $ref >/dev/null 2>&1 && " +
			cosignBin + " attest " + flags + " --type cyclonedx --predicate " + k.sbom + " $ref >/dev/null 2>&1 && " +
			cosignBin + " attest " + flags + " --type slsaprovenance1 --predicate " + k.provenance + " $ref >/dev/null 2>&1"}
	}
	pushedOnly := func(m *meas) error {
		var refs []string
		for _, r := range m.regs {
			refs = append(refs, r+app)
		}
		return inRegistry(refs...)
	}
	// Signed: the image, its signature and its attestations are in every
	// registry: under cosign's .sig and .att tags (hoist), or as sigstore
	// bundles in the referrers tag schema's index (cosign v3's default).
	signedWith := func(suffixes ...string) func(m *meas) error {
		return func(m *meas) error {
			digest, err := craneDigest(m.regs[0] + app)
			if err != nil {
				return err
			}
			tag := "sha256-" + strings.TrimPrefix(digest, "sha256:")
			var refs []string
			for _, r := range m.regs {
				refs = append(refs, r+app)
				for _, s := range suffixes {
					refs = append(refs, r+"/bench/app:"+tag+s)
				}
			}
			return inRegistry(refs...)
		}
	}
	var out []scenario
	for _, n := range []int{1, 4} {
		out = append(out, scenario{suite: "sign", id: fmt.Sprintf("%dreg", n), size: size, registries: n, warmup: true,
			title: fmt.Sprintf("gzip docker-archive → %d registr%s, signed with an SBOM and a provenance", n, map[bool]string{true: "y", false: "ies"}[n == 1]),
			tools: []tool{
				{id: "hoist-push", title: "hoist push (unsigned)", verify: pushedOnly, run: func(m *meas) error { return push(m) }},
				{id: "hoist-signed", title: "hoist push --sign --sbom --provenance", verify: signedWith(".sig", ".att"), run: signed},
				{id: "crane-cosign", title: "crane push, cosign sign, cosign attest × 2 (per registry, in parallel)", verify: signedWith(""), run: func(m *meas) error {
					var cmds [][]string
					for _, r := range m.regs {
						cmds = append(cmds, cosignChain(r))
					}
					return m.parallel(cmds)
				}},
			}})
	}
	return out
}

// craneDigest is a reference's digest, read with crane.
func craneDigest(ref string) (string, error) {
	out, err := exec.Command(craneBin, "digest", ref).Output()
	if err != nil {
		return "", fmt.Errorf("crane digest %s: %w", ref, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// signInputs are a suite's image of size MiB to push and the key to sign
// it with.
func (b *bench) signInputs(size int) (*pushInputs, *signKey, error) {
	in, err := b.makePushInputs(size)
	if err != nil {
		return nil, nil, fmt.Errorf("making the %d MiB push inputs: %w", size, err)
	}
	k, err := b.makeSignKey()
	if err != nil {
		return nil, nil, err
	}
	return in, k, nil
}

// signSuite measures signing at one image size.
func (b *bench) signSuite(size int) error {
	if !b.wanted(b.signScenarios(&pushInputs{}, &signKey{}, size)) {
		return nil
	}
	in, k, err := b.signInputs(size)
	if err != nil {
		return err
	}
	// The baseline's predicates: Trivy's SBOM of the image and a
	// provenance of the size hoist writes.
	if _, err := os.Stat(k.sbom); err != nil {
		cmd := exec.Command(trivyBin, append([]string{"image", "--input", in.gz, "--cache-dir", filepath.Join(b.dir, "sign-trivy-cache"), "--format", "cyclonedx", "--output", k.sbom}, trivyOffline...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("the baseline's SBOM: %v\n%s", err, out)
		}
		prov := `{"buildDefinition":{"buildType":"https://github.com/hoist-build/hoist/blob/main/docs/provenance.md#v1","externalParameters":{"source":"bench"}},"runDetails":{"builder":{"id":"https://github.com/hoist-build/hoist"}}}`
		if err := os.WriteFile(k.provenance, []byte(prov), 0o644); err != nil {
			return err
		}
	}
	return b.measureEach(b.signScenarios(in, k, size))
}
