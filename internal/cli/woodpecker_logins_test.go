package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// woodpeckerLogins is PLUGIN_LOGINS as Woodpecker's runner sends a
// `logins:` list.
func woodpeckerLogins(t *testing.T, logins ...map[string]string) string {
	t.Helper()
	b, err := json.Marshal(logins)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Woodpecker's PLUGIN_LOGINS: two registries with different users and
// passwords and an ECR registry with AWS keys of its own (its token from
// the ECR stand-in, its SigV4 checked), one push to all three, each read
// back; no password or key is printed, even with debug on.
func TestWoodpeckerLogins(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	one := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "alice", Password: "alice-pw-" + t.Name()[4:12]})
	two := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "bob", Password: "bob-pw-" + t.Name()[4:12]})
	aws, ecrReg := ecrSetup(t)
	aws.AddRepository("multi/app")
	good := []map[string]string{
		{"registry": one.Host, "username": one.User, "password": one.Password},
		{"registry": "http://" + two.Host + "/", "username": two.User, "password": two.Password},
		{"registry": ecrReg.Host, "aws_access_key_id": aws.AccessKey, "aws_secret_access_key": aws.SecretKey, "aws_region": aws.Region},
	}
	base := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_REPO": one.Host + "/multi/app", "PLUGIN_TAGS": "1",
		"PLUGIN_DESTINATIONS": two.Host + "/multi/app:1," + ecrReg.Host + "/multi/app:1", "PLUGIN_ECR_ENDPOINT": aws.URL}
	r := mustPush(t, merged(base, map[string]string{"PLUGIN_LOGINS": woodpeckerLogins(t, good...), "PLUGIN_DEBUG": "true"}))
	assertPushed(t, r, one, one.Host+"/multi/app:1")
	assertPushed(t, r, two, two.Host+"/multi/app:1")
	assertPushed(t, r, ecrReg, ecrReg.Host+"/multi/app:1")
	assertContains(t, r, "debug: PUT "+two.Host+"/v2/multi/app/manifests/1")
	assertNotContains(t, r, one.Password, two.Password, aws.SecretKey, aws.AccessKey, aws.Password)
	if aws.CallCount("GetAuthorizationToken") != 1 {
		t.Errorf("ECR calls %v", aws.Calls)
	}

	// A wrong password fails the registry it is for, named, never the
	// password; a wrong AWS secret fails naming the login; malformed
	// logins are exit 2 before anything is pushed.
	dest := harness.StartRegistry(t, harness.RegistryOptions{})
	for _, c := range []struct {
		name   string
		logins []map[string]string
		code   int
		want   []string
		bad    string
	}{
		{"wrong password", []map[string]string{good[0], {"registry": two.Host, "username": two.User, "password": "not-bobs-password"}, good[2]}, ExitPush,
			[]string{two.Host + "/multi/app:1", "1 of 3 destination(s) failed"}, "not-bobs-password"},
		{"wrong AWS secret", []map[string]string{good[0], good[1], {"registry": ecrReg.Host, "aws_access_key_id": aws.AccessKey, "aws_secret_access_key": "not-the-aws-secret", "aws_region": aws.Region}}, ExitPush,
			[]string{"credentials for " + ecrReg.Host, "of PLUGIN_LOGINS[2] (registry " + ecrReg.Host + ")", "signature we calculated does not match"}, "not-the-aws-secret"},
		{"no password", []map[string]string{good[0], {"registry": two.Host, "username": two.User}}, ExitSettings,
			[]string{"PLUGIN_LOGINS[1] (registry " + two.Host + "): needs a username and a password"}, ""},
		{"a registry twice", []map[string]string{good[0], {"registry": one.Host, "username": "x", "password": "second-password"}}, ExitSettings,
			[]string{"PLUGIN_LOGINS[1] (registry " + one.Host + "): the registry is named by PLUGIN_LOGINS[0] already"}, "second-password"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := merged(base, map[string]string{"PLUGIN_LOGINS": woodpeckerLogins(t, c.logins...)})
			if c.code == ExitSettings {
				env["PLUGIN_DESTINATIONS"] = dest.Host + "/not-pushed/app:1"
			}
			r := hoist(t, env)
			if r.code != c.code {
				t.Errorf("exit %d, want %d:\n%s", r.code, c.code, r)
			}
			assertContains(t, r, c.want...)
			assertNotContains(t, r, one.Password, two.Password, aws.SecretKey)
			if c.bad != "" {
				assertNotContains(t, r, c.bad)
			}
			if tags := tagsOf(t, dest, "not-pushed/app"); len(tags) != 0 {
				t.Errorf("pushed: %v", tags)
			}
		})
	}
}

// Woodpecker's ECR settings: PLUGIN_AWS_ACCESS_KEY_ID,
// PLUGIN_AWS_SECRET_ACCESS_KEY and PLUGIN_AWS_REGION log in to ECR (the
// stand-in checks the signature and its region);
// PLUGIN_ECR_CREATE_REPOSITORY and PLUGIN_ECR_LIFECYCLE_POLICY create the
// repository with its policy.
func TestWoodpeckerECRSettings(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	aws, reg := ecrSetup(t)
	policy := filepath.Join(t.TempDir(), "lifecycle.json")
	os.WriteFile(policy, []byte(`{"rules":[{"rulePriority":1}]}`), 0o644)
	env := ecrEnv(aws, reg, "PLUGIN_SOURCE_TAR_PATH", f.SkopeoLayout, "PLUGIN_REPO", "wp/app", "PLUGIN_TAGS", "1",
		"PLUGIN_AWS_ACCESS_KEY_ID", aws.AccessKey, "PLUGIN_AWS_SECRET_ACCESS_KEY", aws.SecretKey, "PLUGIN_AWS_REGION", aws.Region,
		"PLUGIN_ECR_CREATE_REPOSITORY", "true", "PLUGIN_ECR_LIFECYCLE_POLICY", policy)
	delete(env, "PLUGIN_REGION")
	r := mustPush(t, env)
	assertPushed(t, r, reg, reg.Host+"/wp/app:1")
	assertNotContains(t, r, aws.SecretKey, aws.Password)
	if !aws.HasRepository("wp/app") || aws.Policy("PutLifecyclePolicy wp/app") != `{"rules":[{"rulePriority":1}]}` {
		t.Errorf("repository or policy missing: %v %v", aws.Calls, aws.Policies)
	}
}
