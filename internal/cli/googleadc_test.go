package cli

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/harness"
)

// A Google registry with no credentials among the settings logs in with
// Application Default Credentials from the step's environment, as
// kaniko-gar falls back to: GOOGLE_APPLICATION_CREDENTIALS naming a
// service-account key, else the GCE/GKE metadata server (a stand-in at
// GCE_METADATA_HOST that checks the Metadata-Flavor header). Each push is
// read back; the token is never printed.
func TestGoogleDefaultCredentials(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	g, reg := googleSetup(t)
	md := g.StartMetadata(t)
	base := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_REGISTRY_TYPE": "gar",
		"PLUGIN_REGISTRY": reg.Host + "/hoist-test", "PLUGIN_REPO": "images/app"}
	for _, c := range []struct {
		name, tag string
		env       map[string]string
	}{
		{"GOOGLE_APPLICATION_CREDENTIALS", "adc-key", map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": g.KeyFile}},
		{"metadata server", "adc-metadata", map[string]string{"GCE_METADATA_HOST": md.Host}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := mustPush(t, merged(base, map[string]string{"PLUGIN_TAGS": c.tag}, c.env))
			assertPushed(t, r, reg, reg.Host+"/hoist-test/images/app:"+c.tag)
			assertNotContains(t, r, g.AccessToken)
		})
	}
	if g.CallCount("token") != 1 || md.CallCount("token") != 1 || md.CallCount("refused") != 0 {
		t.Errorf("google calls %v, metadata calls %v", g.Calls, md.Calls)
	}

	// No metadata server: a clear failure within seconds, before any push.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	gone := l.Addr().String()
	l.Close()
	dest := harness.StartRegistry(t, harness.RegistryOptions{})
	start := time.Now()
	r := hoist(t, merged(base, map[string]string{"PLUGIN_TAGS": "none", "GCE_METADATA_HOST": gone, "PLUGIN_DESTINATIONS": dest.Host + "/not-pushed/app:1"}))
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %s", took)
	}
	if r.code != ExitPush {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitPush, r)
	}
	assertContains(t, r, "credentials for "+reg.Host, "no GCE/GKE metadata server answered at "+gone, "GOOGLE_APPLICATION_CREDENTIALS")
	if tags := tagsOf(t, dest, "not-pushed/app"); len(tags) != 0 {
		t.Errorf("pushed: %v", tags)
	}
	if strings.Contains(r.String(), g.AccessToken) {
		t.Error("token printed")
	}
}
