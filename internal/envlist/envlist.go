// Package envlist keeps what an allowlist lets through of an environment
// (NAME=value entries), and names the proxy variables. Every environment
// hoist hands to another program (the Kaniko executor, Trivy, a pipeline's
// steps) is made by Filter, from a list of names: a step's environment
// holds registry passwords, cloud keys and signing material, and nothing
// of it passes by default.
package envlist

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Proxy are the proxy variables hoist hands on from a step's environment:
// to a build as build arguments (as the peers do), to the Kaniko
// executor, to a pipeline's steps. They are HTTP_PROXY, HTTPS_PROXY and
// NO_PROXY, in the two cases they are written in, which Go's net/http
// (hoist's own transport, Kaniko), curl and the peers read. They often
// hold a proxy's login: they reach a build's RUN steps, and are recorded
// nowhere (IsProxy).
var Proxy = []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}

// IsProxy reports whether name is a proxy variable as BuildKit knows one:
// a name of Proxy, FTP_PROXY or ALL_PROXY, in any case. BuildKit gives
// a build argument of such a name to RUN steps without recording it in
// the image's history, and hoist records none in anything it publishes
// (the provenance). The list is wider than Proxy because a build
// argument may be given by hand (ALL_PROXY=..., Http_Proxy=...), while
// hoist hands on only what the peers hand on.
func IsProxy(name string) bool {
	for _, p := range Proxy {
		if strings.EqualFold(name, p) {
			return true
		}
	}
	return strings.EqualFold(name, "ftp_proxy") || strings.EqualFold(name, "all_proxy")
}

// Filter is the entries of environ (NAME=value) whose name is in allow,
// in environ's order; an entry without "=" is dropped.
func Filter(environ, allow []string) []string {
	var out []string
	for _, e := range environ {
		if k, _, ok := strings.Cut(e, "="); ok && slices.Contains(allow, k) {
			out = append(out, e)
		}
	}
	return out
}

// Value is the value of name in environ as a program started with
// environ sees it: the last entry of that name wins, as os/exec keeps it.
func Value(environ []string, name string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(environ[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// LookPath finds the executable name as a step would run it: name itself
// when it is a path (it holds a slash), else the first executable file of
// that name in the directories of pathList (the step's PATH, not the
// process's, which exec.LookPath reads), then of dirs. ok is false when
// there is none.
func LookPath(name, pathList string, dirs ...string) (path string, ok bool) {
	if strings.ContainsRune(name, filepath.Separator) {
		return name, isExec(name)
	}
	for _, dir := range append(filepath.SplitList(pathList), dirs...) {
		// A relative entry (bin, node_modules/.bin, an empty one: the
		// working directory) names the workspace's own files, which the
		// repository writes: never a program of hoist's (exec.LookPath's
		// ErrDot rule).
		if !filepath.IsAbs(dir) {
			continue
		}
		if p := filepath.Join(dir, name); isExec(p) {
			return p, true
		}
	}
	return "", false
}

// SelfDir is the directory of hoist's own executable ("" when unknown),
// where hoist's images and bin/ put the programs hoist runs: LookPath
// looks there after the PATH for those.
func SelfDir() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	return filepath.Dir(self)
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}
