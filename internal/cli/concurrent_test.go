package cli

import (
	"sync"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// Two different steps run at once in one process, as the pipeline runner
// runs a stage's parallel steps: each with its own registry, credentials,
// working directory and debug log; one succeeds, one fails. Neither sees
// the other's settings, requests or secrets.
func TestTwoStepsInOneProcess(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	regA := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	regB := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	wrongB := "wrong-" + regB.Password
	envA := map[string]string{
		"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": regA.Host + "/team-a/app", "PLUGIN_TAGS": "1",
		"PLUGIN_REGISTRY": regA.Host, "PLUGIN_USERNAME": regA.User, "PLUGIN_PASSWORD": regA.Password, "PLUGIN_DEBUG": "true",
	}
	envB := map[string]string{
		"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_REPO": regB.Host + "/team-b/app", "PLUGIN_TAGS": "2",
		"PLUGIN_REGISTRY": regB.Host, "PLUGIN_USERNAME": regB.User, "PLUGIN_PASSWORD": wrongB, "PLUGIN_DEBUG": "true",
	}
	var a, b result
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = hoist(t, envA) }()
	go func() { defer wg.Done(); b = hoist(t, envB) }()
	wg.Wait()

	if a.code != ExitOK {
		t.Fatalf("step A failed:\n%s", a)
	}
	if b.code != ExitPush {
		t.Fatalf("step B: exit %d, want %d:\n%s", b.code, ExitPush, b)
	}
	// Each step's output holds its own requests and result...
	assertSummary(t, a, regA.Host+"/team-a/app:1", digestOf(t, regA, regA.Host+"/team-a/app:1"))
	assertContains(t, a, "debug: PUT "+regA.Host+"/v2/team-a/app/manifests/1")
	assertContains(t, b, "debug: GET "+regB.Host+"/v2/", "registry "+regB.Host+" refused access (401 Unauthorized)")
	// ...and nothing of the other's: its registry, repository or secrets.
	assertNotContains(t, a, regB.Host, "team-b", wrongB, regB.Password)
	assertNotContains(t, b, regA.Host, "team-a", regA.Password, b64(regA.User+":"+regA.Password))
	assertNotContains(t, a, regA.Password, b64(regA.User+":"+regA.Password))
	assertNotContains(t, b, wrongB, b64(regB.User+":"+wrongB))
	if tags := tagsOf(t, regB, "team-b/app"); len(tags) != 0 {
		t.Errorf("the failing step pushed tags %v", tags)
	}
}
