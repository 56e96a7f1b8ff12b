package cli

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// aquaTrivyPipeline scans the archive image.tar of the checkout with an
// AquaTrivy step, with the advanced section given.
func aquaTrivyPipeline(id, advanced string) string {
	return `pipeline:
  identifier: ` + id + `
  stages:
    - stage:
        identifier: s
        type: CI
        spec:
          cloneCodebase: true
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: scan
                  type: AquaTrivy
                  spec:
                    mode: orchestration
                    config: default
                    target: {type: container, name: app, variant: "1", workspace: /harness/image.tar}
                    image: {type: local_archive}
` + advanced
}

// An AquaTrivy step's defaults are the vendor's, proven with a real Trivy
// scan of an image with an unfixed MEDIUM vulnerability: without
// fail_on_severity the step reports the finding (unfixed ones included,
// every severity) and passes, its record saying what it found; with
// fail_on_severity medium (or Harness's info, Trivy's unknown and up) the
// unfixed finding fails it with the gate's exit code 7; with high it
// passes (Trivy reports HIGH and CRITICAL only).
func TestPipelineAquaTrivyDefaults(t *testing.T) {
	f := harness.Inputs(t)
	tar, digest := buildTar(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r3", "busybox", "1.36.1-r15"))
	image, err := os.ReadFile(tar)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"image.tar": string(image)}
	cases := []struct {
		id, advanced string
		code, medium int
	}{
		{"default", "", 0, 1},
		{"medium", "                    advanced: {fail_on_severity: medium}\n", 7, 1},
		{"info", "                    advanced: {fail_on_severity: info}\n", 7, 1},
		// Trivy's --severity: HIGH and CRITICAL only are reported.
		{"high", "                    advanced: {fail_on_severity: high}\n", 0, 0},
	}
	for _, c := range cases {
		files[c.id+".yaml"] = aquaTrivyPipeline(c.id, c.advanced)
	}
	dir := checkout(t, files)
	for _, c := range cases {
		r, rep := pipelineRun(t, dir, pipelineEnv(t), c.id+".yaml", "--local", "--keep")
		if r.code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", c.id, r.code, c.code, r)
			continue
		}
		// The scan ran on the image and reported the unfixed finding.
		if c.medium > 0 {
			assertContains(t, r, harness.AdvBusybox.ID)
		}
		s := stepOf(t, rep, "scan")
		if s.Digest != digest || len(s.ScanRecords) != 1 {
			t.Errorf("%s: step %+v, want digest %s and one record", c.id, s, digest)
			continue
		}
		b, _ := os.ReadFile(s.ScanRecords[0])
		var rec struct{ Counts map[string]int }
		if err := json.Unmarshal(b, &rec); err != nil || rec.Counts["MEDIUM"] != c.medium {
			t.Errorf("%s: the record does not count the MEDIUM finding: %v\n%s", c.id, err, b)
		}
	}
}
