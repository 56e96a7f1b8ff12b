package envlist

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFilter(t *testing.T) {
	t.Parallel()
	environ := []string{"PATH=/bin", "PLUGIN_PASSWORD=pw", "HOME=/root", "PATHOLOGY=x", "path=/lower", "MALFORMED", "HOME=/second", "EMPTY="}
	want := []string{"PATH=/bin", "HOME=/root", "HOME=/second", "EMPTY="}
	if d := cmp.Diff(want, Filter(environ, []string{"HOME", "PATH", "EMPTY", "MALFORMED"})); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got := Filter(environ, nil); len(got) != 0 {
		t.Errorf("an empty allowlist let %q through", got)
	}
}

// IsProxy knows every name BuildKit keeps out of an image's history, in
// any case; Proxy, the names hoist hands on, are among them.
func TestIsProxy(t *testing.T) {
	t.Parallel()
	for _, n := range append([]string{"Http_Proxy", "FTP_PROXY", "ftp_proxy", "ALL_PROXY", "All_Proxy"}, Proxy...) {
		if !IsProxy(n) {
			t.Errorf("IsProxy(%q) is false", n)
		}
	}
	for _, n := range []string{"PROXY", "HTTP_PROXY_USER", "SOCKS_PROXY", "HARNESS_HTTP_PROXY", "PIP_INDEX_URL"} {
		if IsProxy(n) {
			t.Errorf("IsProxy(%q) is true", n)
		}
	}
}

// A relative PATH entry names the working directory's files (the
// checkout's bin, node_modules/.bin): a program is never taken from one.
func TestLookPathSkipsRelativeEntries(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "prog"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, pathList := range []string{"bin", "./bin", ":" + "bin", ""} {
		if p, ok := LookPath("prog", pathList); ok {
			t.Errorf("PATH=%q: found %s", pathList, p)
		}
	}
	if p, ok := LookPath("prog", filepath.Join(dir, "bin")); !ok || p != filepath.Join(dir, "bin", "prog") {
		t.Errorf("an absolute entry: got %q, %v", p, ok)
	}
}
