package pipeline

import (
	"slices"
	"testing"
)

// An AquaTrivy step without fail_on_severity is the vendor's: it reports
// and passes (Harness fails a scan step on findings only with Fail on
// Severity), over every severity with unfixed vulnerabilities included;
// hoist's own PLUGIN_SCAN_EXIT_CODE, when set, still gates.
func TestAquaTrivyDefaults(t *testing.T) {
	ws := t.TempDir()
	for _, c := range []struct {
		name     string
		env      map[string]string
		severity string
		exit     int
		sev      []string
	}{
		{"no fail_on_severity", nil, "", 0, []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}},
		{"no fail_on_severity, hoist's exit code", map[string]string{"PLUGIN_SCAN_EXIT_CODE": "9"}, "", 9, []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}},
		{"fail_on_severity: high", nil, "HIGH,CRITICAL", 7, []string{"HIGH", "CRITICAL"}},
	} {
		s, err := loadSettings(func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }, ws)
		if err != nil {
			t.Fatal(err)
		}
		scanSettings(s, scanSpec{ImageType: "local_archive", Archive: "/harness/image.tar", Severity: c.severity}, ws)
		if s.ScanExitCode != c.exit || !slices.Equal(s.ScanSeverity, c.sev) || s.ScanIgnoreUnfixed || !slices.Equal(s.ScanScanners, []string{"vuln", "secret"}) {
			t.Errorf("%s: exit code %d, severity %q, ignore-unfixed %v, scanners %q", c.name, s.ScanExitCode, s.ScanSeverity, s.ScanIgnoreUnfixed, s.ScanScanners)
		}
	}
}

// Harness's severities: INFO (a finding without a score) is Trivy's
// UNKNOWN, and so is every severity up from it.
func TestAquaTrivySeverities(t *testing.T) {
	for in, want := range map[string]string{"info": "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL", "INFO": "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL", "unknown": "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL", "medium": "MEDIUM,HIGH,CRITICAL", "critical": "CRITICAL"} {
		if got, ok := severityAtLeast(in); !ok || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, ok, want)
		}
	}
	if _, ok := severityAtLeast("severe"); ok {
		t.Error("severe is a severity")
	}
}
