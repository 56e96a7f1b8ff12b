package step

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// Push.SkipExisting on a hand-built push-only step: a repository holding
// one of its tags is left out (none of its tags pushed, none in the
// result), the others are pushed; when every one holds one, Run ends with
// ErrSkip and pushes nothing.
func TestSkipExisting(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := t.TempDir()
	first := handStep(t, ModePushOnly, ws, reg.Host+"/hand/there:1")
	first.Source.TarPath = f.SkopeoLayout
	run(t, first, Runtime{})
	there := reg.Digest(t, reg.Host+"/hand/there:1")

	st := handStep(t, ModePushOnly, ws, reg.Host+"/hand/there:2", reg.Host+"/hand/there:1", reg.Host+"/hand/fresh:1")
	st.Source.TarPath, st.Push.SkipExisting = f.DockerSave, true
	res, log := run(t, st, Runtime{})
	if len(res.Destinations) != 1 || res.Destinations[0].Ref != reg.Host+"/hand/fresh:1" || res.Destinations[0].Err != nil {
		t.Errorf("results %+v, want hand/fresh:1 pushed alone", res.Destinations)
	}
	if got := reg.Digest(t, reg.Host+"/hand/fresh:1"); got != res.Digest {
		t.Errorf("hand/fresh:1 holds %s, the step pushed %s", got, res.Digest)
	}
	if got := reg.Digest(t, reg.Host+"/hand/there:1"); got != there {
		t.Errorf("hand/there:1 holds %s, was %s", got, there)
	}
	if tags := strings.Fields(reg.Crane(t, "ls", reg.Host+"/hand/there")); len(tags) != 1 {
		t.Errorf("hand/there's tags: %v, want 1 alone", tags)
	}
	if !strings.Contains(log, "image tag exists, skipping push: "+reg.Host+"/hand/there:1 is there already") {
		t.Errorf("the log does not say what was skipped:\n%s", log)
	}

	st = handStep(t, ModePushOnly, ws, reg.Host+"/hand/there:1", reg.Host+"/hand/fresh:1")
	st.Source.TarPath, st.Push.SkipExisting = f.DockerSave, true
	res, err := Run(context.Background(), st, Runtime{})
	if !errors.Is(err, ErrSkip) || res.Pushed || !strings.Contains(err.Error(), "nothing was built or pushed") {
		t.Errorf("every repository holds a tag: %v, %+v", err, res)
	}
}
