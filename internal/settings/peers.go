package settings

import (
	"fmt"
	"sort"
	"strings"
)

// peerSetting is a variable the peers read that hoist does not act on:
// harmless here (a notice says why), or one that would change what is
// built or pushed, which hoist refuses rather than ignores.
type peerSetting struct {
	refuse bool
	why    string
}

const (
	noDaemon  = "it configures the Docker daemon the peers start; hoist starts none"
	noBuilder = "it configures the buildx builder the peers create; hoist builds with its embedded engine or PLUGIN_BUILDER_REMOTE_CONN"
)

// peerSettings are the peers' variables (docs: ../shared/spec/settings.md
// §2) that are not hoist settings.
var peerSettings = map[string]peerSetting{
	"PLUGIN_BAKE_FILE":                {true, "bake builds are not supported; build each target in its own step with PLUGIN_DOCKERFILE and PLUGIN_TARGET"},
	"PLUGIN_BAKE_OPTIONS":             {true, "bake builds are not supported; build each target in its own step with PLUGIN_DOCKERFILE and PLUGIN_TARGET"},
	"PLUGIN_BUILDX_OPTIONS":           {true, "raw buildx arguments cannot be honoured; each has a setting (hoist settings lists them)"},
	"PLUGIN_BUILDX_OPTIONS_SEMICOLON": {true, "raw buildx arguments cannot be honoured; each has a setting (hoist settings lists them)"},
	"PLUGIN_SQUASH":                   {true, "squashing layers is not supported by BuildKit or Kaniko"},
	"PLUGIN_LABEL_SCHEMA":             {true, "the label-schema.org labels are not written; use PLUGIN_CUSTOM_LABELS"},
	"PLUGIN_OCI_LAYOUT_PATH":          {true, "no OCI layout directory is written; use PLUGIN_TAR_PATH with PLUGIN_BUILDX_OUTPUT_FORMAT=oci"},
	"PLUGIN_IGNORE_VAR_RUN":           {true, "Kaniko's /var/run handling cannot be changed here"},
	"PLUGIN_INSECURE_PULL":            {true, "use PLUGIN_INSECURE, which covers pulls and pushes"},
	"PLUGIN_INSECURE_REGISTRY":        {true, "use PLUGIN_INSECURE, which covers pulls and pushes"},
	"PLUGIN_SKIP_TLS_VERIFY_PULL":     {true, "use PLUGIN_SKIP_TLS_VERIFY, which covers pulls and pushes"},
	"PLUGIN_SKIP_TLS_VERIFY_REGISTRY": {true, "use PLUGIN_SKIP_TLS_VERIFY, which covers pulls and pushes"},
	"PLUGIN_REGISTRY_CLIENT_CERT":     {true, "client certificates for registries are not supported"},

	"PLUGIN_DAEMON_RETRY_COUNT":               {false, noDaemon},
	"PLUGIN_STORAGE_DRIVER":                   {false, noDaemon},
	"PLUGIN_STORAGE_PATH":                     {false, noDaemon},
	"PLUGIN_BIP":                              {false, noDaemon},
	"PLUGIN_MTU":                              {false, noDaemon},
	"PLUGIN_CUSTOM_DNS":                       {false, noDaemon},
	"PLUGIN_CUSTOM_DNS_SEARCH":                {false, noDaemon},
	"PLUGIN_IPV6":                             {false, noDaemon},
	"PLUGIN_BUILDER_NAME":                     {false, noBuilder},
	"PLUGIN_BUILDER_CONFIG":                   {false, noBuilder},
	"PLUGIN_BUILDER_DRIVER_OPTS":              {false, noBuilder},
	"PLUGIN_BUILDER_DRIVER_OPTS_NEW":          {false, noBuilder},
	"PLUGIN_BUILDKIT_VERSION":                 {false, noBuilder},
	"PLUGIN_USE_LOADED_BUILDKIT":              {false, noBuilder},
	"PLUGIN_BUILDKIT_ASSETS_DIR":              {false, noBuilder},
	"PLUGIN_BUILDKIT_TLS_HANDSHAKE_TIMEOUT":   {false, noBuilder},
	"PLUGIN_BUILDKIT_RESPONSE_HEADER_TIMEOUT": {false, noBuilder},
	"PLUGIN_BUILDKIT_INHERIT_AUTH":            {false, noBuilder},
	"PLUGIN_QUIET":                            {false, "hoist's output is chosen with PLUGIN_PROGRESS"},
	"PLUGIN_COMPRESS":                         {false, "it compresses the context sent to a Docker daemon; hoist streams it to BuildKit"},
	"PLUGIN_EMAIL":                            {false, "registries no longer take an e-mail at login"},
	"PLUGIN_CACHE_DIR":                        {false, "the Kaniko plugin reads it and never passes it on"},
	"PLUGIN_CACHE_METRICS_FILE":               {false, "no cache metrics file is written"},
	"PLUGIN_COMPRESSED_CACHING":               {false, "it tunes Kaniko's memory use; Kaniko's default applies"},
	"PLUGIN_FORCE":                            {false, "hoist runs Kaniko in its own image"},
	"PLUGIN_CLEANUP":                          {false, "hoist's Kaniko image is one step's"},
	"PLUGIN_LOG_FORMAT":                       {false, "hoist formats the log"},
	"PLUGIN_LOG_TIMESTAMP":                    {false, "hoist formats the log"},
	"PLUGIN_IMAGE_DOWNLOAD_RETRY_COUNT":       {false, "use PLUGIN_IMAGE_DOWNLOAD_RETRY"},
	"PLUGIN_IMAGE_NAME_WITH_DIGEST_FILE":      {false, "use PLUGIN_DIGEST_FILE or DRONE_OUTPUT's IMAGE_DIGEST_REF"},
	"PLUGIN_IMAGE_NAME_TAG_WITH_DIGEST_FILE":  {false, "use PLUGIN_DIGEST_FILE or DRONE_OUTPUT's IMAGE_DIGEST_REF"},
	"PLUGIN_SKIP_DEFAULT_REGISTRY_FALLBACK":   {false, "mirrors are tried first; Docker Hub is the fallback"},
	"PLUGIN_SKIP_PUSH_PERMISSION_CHECK":       {false, "hoist checks nothing before a push; a refused push fails the step"},
	"PLUGIN_SCAN_ON_PUSH":                     {false, "ECR's scan-on-push is a repository setting hoist does not change"},
	"PLUGIN_SUBSCRIPTION_ID":                  {false, "the artifact file names the registry, not the Azure portal"},
	"PLUGIN_WORKLOAD_IDENTITY":                {false, "a service-account key is always exchanged for an access token"},
	"PLUGIN_PATH_STYLE":                       {false, "only registry and local caches are supported"},
	"PLUGIN_CACHE_TLS_INSECURE":               {false, "only registry and local caches are supported"},
}

// Unrecognized checks the PLUGIN_* variables of environ (KEY=value) that
// are not hoist settings: a peer's variable that would change what is
// built or pushed is an error; any other gets a notice, with the closest
// setting when one is near (a typo).
func Unrecognized(environ []string) (notes []string, err error) {
	known := map[string]bool{}
	for _, f := range fields {
		for _, e := range f.Env {
			known[e] = true
		}
	}
	var refused []string
	seen := map[string]bool{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "PLUGIN_") || known[k] || seen[k] {
			continue
		}
		seen[k] = true
		if strings.HasPrefix(k, "PLUGIN_HARNESS_SELF_HOSTED_") {
			k = "PLUGIN_PATH_STYLE"
		}
		p, ok := peerSettings[k]
		switch {
		case ok && p.refuse && v != "" && v != "false":
			refused = append(refused, fmt.Sprintf("%s: %s", k, p.why))
		case ok:
			notes = append(notes, fmt.Sprintf("setting %s has no effect: %s", k, p.why))
		default:
			n := fmt.Sprintf("setting %s is not a hoist setting and is ignored", k)
			if near := closest(k, known); near != "" {
				n += "; did you mean " + near + "?"
			}
			notes = append(notes, n)
		}
	}
	sort.Strings(notes)
	if len(refused) > 0 {
		sort.Strings(refused)
		return notes, fmt.Errorf("%w: not supported, and ignoring it would build or push something else:\n  %s", ErrInvalid, strings.Join(refused, "\n  "))
	}
	return notes, nil
}

// closest is the known name nearest to k, when it is a likely typo.
func closest(k string, known map[string]bool) string {
	best, bestD := "", 4
	for n := range known {
		if !strings.HasPrefix(n, "PLUGIN_") {
			continue
		}
		if d := EditDistance(k, n); d < bestD || d == bestD && n < best {
			best, bestD = n, d
		}
	}
	if bestD > len(k)/4 {
		return ""
	}
	return best
}

// EditDistance is the Levenshtein distance between a and b: how close
// a misspelt name is to a known one.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
