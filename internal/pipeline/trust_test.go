package pipeline

import (
	"strings"
	"testing"
)

var pathPipeline = `pipeline:
  identifier: ../p
  stages:
    - stage:
        identifier: ../../..
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: sub/step
                  type: Run
                  spec:
                    command: echo hi
              - step:
                  identifier: tool
                  type: Run
                  spec:
                    image: "--privileged"
                    command: echo hi
              - step:
                  identifier: ok_1
                  type: Run
                  spec:
                    image: 127.0.0.1:5000/team/tool:1
                    command: echo hi
    - stage:
        identifier: build-app
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: _` + "x23456789" + strings.Repeat("0123456789", 12) + `
                  type: Run
                  spec:
                    command: echo hi
`

// Identifiers become directories, container names and paths: a stage
// identifier ../../.. would make the workspace /. Each is checked as
// Harness checks it (a letter or _, then letters, digits or _, at most
// 128 characters), at its line and column, every one at once; a Run
// step's image that is not an image reference (a docker run flag) is
// refused there too.
func TestIdentifiersAndImagesAreChecked(t *testing.T) {
	_, probs := validate(t, "paths.yaml", []byte(pathPipeline))
	expect(t, probs,
		want{"2:15", `pipeline.identifier "../p" is not an identifier: Harness takes a letter or _, then letters, digits or _, at most 128 characters`, "write ___p"},
		want{"5:21", `pipeline.stages[0].stage.identifier "../../.." is not an identifier`, "use only letters, digits and _, starting with a letter or _"},
		want{"12:31", `steps[0].step.identifier "sub/step" is not an identifier`, "write sub_step"},
		want{"20:28", `step tool.spec.image "--privileged" is not an image reference: invalid reference format`, "name an image"},
		want{"29:21", `pipeline.stages[1].stage.identifier "build-app" is not an identifier`, "write build_app"},
		want{"36:31", `is not an identifier`, "write _x2345678901"},
	)
	// The longest identifier Harness takes is one.
	long := "_x23456789" + strings.Repeat("0123456789", 11) + "01234567"
	ok := "pipeline:\n  identifier: p\n  stages:\n    - stage:\n        identifier: " + long + "\n        type: CI\n        spec:\n" +
		"          runtime: {type: Cloud, spec: {}}\n          execution:\n            steps:\n              - step: {identifier: " + long + ", type: Run, spec: {command: echo}}\n"
	if _, probs := validate(t, "long.yaml", []byte(ok)); len(long) != 128 || probs != nil {
		t.Errorf("an identifier of %d characters: %v", len(long), probs)
	}
}
