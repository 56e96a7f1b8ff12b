package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// promoteScenarios measure the promotion of a signed digest (a cosign
// signature, an SBOM and a provenance attestation) from a staging
// registry to 1 and to 4 fresh registries, and within the staging
// registry: hoist promote, with its policy checked on the source, against
// the peers' way: cosign verify and verify-attestation on the source,
// then crane copy of the image and cosign copy of its signature and
// attestations, per registry, the registries in parallel.
func (b *bench) promoteScenarios(stage, digest string, k *signKey, size int) []scenario {
	const app = "/bench/app:1"
	src := stage + "/bench/stage@" + digest
	cosignFlags := "--allow-insecure-registry --allow-http-registry"
	policy := []string{"--key", k.pub, "--require", "signature,sbom,provenance"}
	hoist := func(dsts ...string) []string {
		return append(append([]string{hoistBin, "promote", "--progress", "quiet", "--daemon-off"}, policy...), append([]string{src}, dsts...)...)
	}
	verifyLine := cosignBin + " verify --key " + k.pub + " --insecure-ignore-tlog=true " + cosignFlags + " " + src + " >/dev/null 2>&1 && " +
		cosignBin + " verify-attestation --key " + k.pub + " --insecure-ignore-tlog=true " + cosignFlags + " --type cyclonedx " + src + " >/dev/null 2>&1 && " +
		cosignBin + " verify-attestation --key " + k.pub + " --insecure-ignore-tlog=true " + cosignFlags + " --type slsaprovenance1 " + src + " >/dev/null 2>&1"
	// cosign copy --only copies what hangs off the digest into the
	// destination repository; crane copy copies the image and its tag.
	copyLine := func(reg string) []string {
		return []string{"sh", "-c", craneBin + " copy " + src + " " + reg + app + " >/dev/null 2>&1 && " +
			cosignBin + " copy --only=sig,att -f " + cosignFlags + " " + src + " " + reg + "/bench/app >/dev/null 2>&1"}
	}
	tagOf := "sha256-" + strings.TrimPrefix(digest, "sha256:")
	promoted := func(refs func(m *meas) []string) func(m *meas) error {
		return func(m *meas) error {
			var all []string
			for _, r := range refs(m) {
				d, err := craneDigest(r)
				if err != nil {
					return err
				}
				if d != digest {
					return fmt.Errorf("%s is %s, want %s", r, d, digest)
				}
				repo := r[:strings.LastIndex(r, ":")]
				all = append(all, repo+":"+tagOf+".sig", repo+":"+tagOf+".att")
			}
			return inRegistry(all...)
		}
	}
	dests := func(m *meas) []string {
		var out []string
		for _, r := range m.regs {
			out = append(out, r+app)
		}
		return out
	}
	var out []scenario
	for _, n := range []int{1, 4} {
		out = append(out, scenario{suite: "promote", id: fmt.Sprintf("%dreg", n), size: size, registries: n,
			title: fmt.Sprintf("a signed digest with its SBOM and provenance → %d registr%s, policy checked first", n, map[bool]string{true: "y", false: "ies"}[n == 1]),
			tools: []tool{
				{id: "hoist", title: "hoist promote --key --require signature,sbom,provenance", verify: promoted(dests), run: func(m *meas) error {
					return m.exec(hoist(dests(m)...)...)
				}},
				{id: "peers", title: "cosign verify, verify-attestation × 2; then crane copy + cosign copy --only=sig,att per registry, in parallel", verify: promoted(dests), run: func(m *meas) error {
					if err := m.shell(verifyLine); err != nil {
						return err
					}
					var cmds [][]string
					for _, r := range m.regs {
						cmds = append(cmds, copyLine(r))
					}
					return m.parallel(cmds)
				}},
			}})
	}
	// Within the staging registry: a new repository every run.
	var seq atomic.Int64
	release := func() string { return fmt.Sprintf("%s/bench/release-%d:1", stage, seq.Add(1)) }
	var last atomic.Value
	out = append(out, scenario{suite: "promote", id: "same", size: size,
		title: "a signed digest with its SBOM and provenance → another repository of the same registry",
		tools: []tool{
			{id: "hoist", title: "hoist promote --key --require signature,sbom,provenance", verify: promoted(func(*meas) []string { return []string{last.Load().(string)} }), run: func(m *meas) error {
				dst := release()
				last.Store(dst)
				return m.exec(hoist(dst)...)
			}},
		}})
	return out
}

// promoteSuite pushes a signed image with its SBOM and provenance to a
// staging registry, untimed, then measures its promotions.
func (b *bench) promoteSuite(size int) error {
	if !b.wanted(b.promoteScenarios("", "", &signKey{}, size)) {
		return nil
	}
	in, k, err := b.signInputs(size)
	if err != nil {
		return err
	}
	regs, err := startRegistries(b.dir, 1)
	if err != nil {
		return err
	}
	b.atEnd(regs.stop)
	stage := regs.hosts[0]
	ref := stage + "/bench/stage:rc"
	if err := must(hoistBin, "push", "--source-tar-path", in.gz, "--destination", ref, "--progress", "quiet", "--daemon-off", "--compress-cache=",
		"--sign", "--sign-key", k.key, "--sign-password", k.password, "--sbom", "--provenance", "--trivy", trivyBin,
		"--cache-dir", filepath.Join(b.dir, "promote-trivy-cache")); err != nil {
		return fmt.Errorf("pushing the signed image to promote: %w", err)
	}
	digest, err := craneDigest(ref)
	if err != nil {
		return err
	}
	return b.measureEach(b.promoteScenarios(stage, digest, k, size))
}
