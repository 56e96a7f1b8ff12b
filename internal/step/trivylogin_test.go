package step

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hoist-build/hoist/internal/registry"
)

// hoist fetches the vulnerability database, so Trivy's own login for its
// database repositories (TRIVY_USERNAME, TRIVY_PASSWORD) becomes a login
// of the step for those registries, behind the settings' own, and masked.
func TestTrivyLoginForTheDatabase(t *testing.T) {
	t.Parallel()
	st, err := plan(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REPO": "reg.example.com/app", "PLUGIN_SCAN": "true",
		"PLUGIN_SCAN_TRIVY": "/bin/true", "PLUGIN_SCAN_DB_REPOSITORY": "mirror.example.com/trivy-db:2,other.example.com:5000/db:2",
		"TRIVY_USERNAME": "db-user", "TRIVY_PASSWORD": "db-pass-1,db-pass-2"})
	if err != nil {
		t.Fatal(err)
	}
	want := []registry.Login{
		{Registry: "mirror.example.com", Username: "db-user", Password: "db-pass-1", Setting: "TRIVY_USERNAME/TRIVY_PASSWORD"},
		{Registry: "other.example.com:5000", Username: "db-user", Password: "db-pass-1", Setting: "TRIVY_USERNAME/TRIVY_PASSWORD"},
	}
	if d := cmp.Diff(want, st.Login.Static.Extra[:2]); d != "" {
		t.Errorf("logins (-want +got):\n%s", d)
	}
	if got := st.Secrets.String("pw db-pass-1"); got != "pw ****" {
		t.Errorf("the mask leaves %q", got)
	}
	if _, err := plan(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REPO": "reg.example.com/app", "PLUGIN_SCAN": "true",
		"PLUGIN_SCAN_TRIVY": "/bin/true", "PLUGIN_SCAN_DB_DIGEST": "sha256:abc"}); err == nil {
		t.Errorf("a pin that is no digest was taken")
	}
}
