package pipeline

import (
	"maps"
	"slices"
	"strings"

	"github.com/hoist-build/hoist/internal/envlist"
)

// passthrough are the variables of hoist's own environment a step run in
// this process keeps: where its home, caches and daemon are.
var passthrough = append([]string{"HOME", "PATH", "USER", "TMPDIR", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "DOCKER_HOST", "DOCKER_CONFIG",
	"PLUGIN_ENGINE_DIR", "PLUGIN_BUILDKITD", "SSL_CERT_FILE", "SSL_CERT_DIR"}, envlist.Proxy...)

// processEnv is a step's environment as it runs in this process: the
// runner's, its paths under /harness mapped into the workspace, and
// hoist's own home, caches and daemon.
func (r *runner) processEnv(pd *Planned, ws string, of outputFiles) (map[string]string, []string) {
	m := r.hostEnv()
	for _, e := range pd.Env {
		m[e.Name] = InWorkspace(e.Value, ws)
	}
	m["DRONE_WORKSPACE"] = ws
	// The step's output files: its own DRONE_OUTPUT when its variables
	// name one, else the runner's.
	if of.Own == "" {
		m["DRONE_OUTPUT"] = of.Env
	}
	m["HARNESS_OUTPUT_SECRET_FILE"] = of.Secret
	return m, environ(m)
}

// hostEnv is what a step run on this machine keeps of hoist's own
// environment (passthrough), its temporary directory the run's.
func (r *runner) hostEnv() map[string]string {
	m := map[string]string{}
	for _, e := range envlist.Filter(r.o.Environ, passthrough) {
		k, v, _ := strings.Cut(e, "=")
		if _, seen := m[k]; !seen {
			m[k] = v // the first wins, as in a process's lookup
		}
	}
	m["TMPDIR"] = r.temp
	return m
}

// environ is an environment as sorted NAME=VALUE entries.
func environ(m map[string]string) []string {
	var list []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		list = append(list, k+"="+m[k])
	}
	return list
}
