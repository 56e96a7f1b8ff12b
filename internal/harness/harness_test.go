package harness

import "testing"

// A component missing inside the shared fixtures' setup is recorded for
// every caller (a skip outside CI, a failure in CI) instead of ending the
// first caller's goroutine and leaving the others with no fixtures and no
// reason.
func TestSharedSetupRecordsAMissingComponent(t *testing.T) {
	for _, ci := range []string{"true", "false"} {
		t.Setenv("CI", ci)
		ft := &onceT{TB: t}
		func() {
			defer func() {
				if r := recover(); r != errOnceFailed {
					t.Fatalf("CI=%s: recovered %v", ci, r)
				}
			}()
			Missing(ft, "umoci is not installed")
		}()
		got := ft.skipped
		if ci == "true" {
			got = ft.failed
		}
		if got == "" || ft.skipped != "" && ft.failed != "" {
			t.Errorf("CI=%s: skipped %q, failed %q", ci, ft.skipped, ft.failed)
		}
	}
	if t.Skipped() {
		t.Error("the caller itself was skipped")
	}
}
