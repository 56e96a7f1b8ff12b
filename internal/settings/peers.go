package settings

import (
	"cmp"
	"embed"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hoist-build/hoist/internal/files"
)

// The peers' settings are data (docs/usage.md, "Peers' settings"):
// peers/names.tsv lists every environment name each peer reads, with the
// peer, its version and the source file, as peers/gen.sh extracts them
// from the peers' sources; peers/verdicts.tsv gives each name its
// verdict. A new peer version is a new names.tsv, and a verdict for each
// new name (TestPeerVerdicts names the missing ones).
//
//go:embed peers/names.tsv peers/verdicts.tsv
var peerFiles embed.FS

// peerRead is a row of peers/names.tsv: a name one peer reads, and every
// name it reads with it for one value (a flag's names), in its order.
type peerRead struct {
	Name, Peer, Version, File string
	With                      []string
}

// The verdicts a peer's name gets.
const (
	// honoured: a hoist setting reads it (Setting is its flag), or
	// another package reads it from the step's environment (Setting is
	// "environ:internal/PKG"). Reason says how it differs, if it does.
	honoured = "honoured"
	// refused: a value other than empty or false is an error (exit 2)
	// with Reason: ignoring it would build or push something else.
	refused = "refused"
	// harmless: ignored with a notice saying Reason (daemon tuning, ...);
	// none for the runner's own variables (DRONE_*, CI_*), which every
	// step carries.
	harmless = "harmless"
)

// verdict is a row of peers/verdicts.tsv. A name ending in * stands for
// every name with that prefix that has no row of its own.
type verdict struct {
	Name, Verdict, Setting, Reason string
}

// peerVerdicts are read at start (every step's environment is judged);
// the peers' reads, and the orders drawn from them, when first needed
// (two names of one setting both set), since most steps never ask.
var (
	peerVerdicts = mustVerdicts()
	peerData     = sync.OnceValue(mustPeerReads)
	// peerOrder holds a pair [a, b] when some peer reads a before b for
	// one value, and every name a peer reads.
	peerOrder = sync.OnceValues(func() (map[[2]string]bool, map[string]bool) { return peerOrders(peerData()) })
)

func mustPeerReads() []peerRead {
	var reads []peerRead
	for _, r := range mustTSV("peers/names.tsv", 5) {
		reads = append(reads, peerRead{Name: r[0], Peer: r[1], Version: r[2], File: r[3], With: strings.Split(r[4], ",")})
	}
	return reads
}

func mustVerdicts() map[string]verdict {
	verdicts := map[string]verdict{}
	for _, r := range mustTSV("peers/verdicts.tsv", 4) {
		v := verdict{Name: r[0], Verdict: r[1], Setting: r[2], Reason: r[3]}
		if _, dup := verdicts[v.Name]; dup {
			panic("settings: peers/verdicts.tsv: two rows for " + v.Name)
		}
		switch {
		case v.Verdict != honoured && v.Verdict != refused && v.Verdict != harmless:
			panic("settings: peers/verdicts.tsv: " + v.Name + ": verdict " + v.Verdict + ", want honoured, refused or harmless")
		case v.Verdict != honoured && (v.Reason == "" || v.Setting != ""):
			panic("settings: peers/verdicts.tsv: " + v.Name + ": a " + v.Verdict + " name has a reason and no setting")
		}
		verdicts[v.Name] = v
	}
	return verdicts
}

// mustTSV reads an embedded table: a header line, then rows of cols
// tab-separated cells; lines starting with # are comments.
func mustTSV(name string, cols int) [][]string {
	b, err := peerFiles.ReadFile(name)
	if err != nil {
		panic(err)
	}
	var rows [][]string
	for i, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if i == 0 || line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := strings.Split(line, "\t")
		if len(r) != cols {
			panic(fmt.Sprintf("settings: %s line %d: %d cells, want %d", name, i+1, len(r), cols))
		}
		rows = append(rows, r)
	}
	return rows
}

func peerOrders(reads []peerRead) (map[[2]string]bool, map[string]bool) {
	before, names := map[[2]string]bool{}, map[string]bool{}
	for _, r := range reads {
		names[r.Name] = true
		for i, a := range r.With {
			for _, b := range r.With[i+1:] {
				before[[2]string{a, b}] = true
			}
		}
	}
	return before, names
}

// peersOrder reports whether a setting may take name a over name b, both
// present: always, unless both are peers' names and no peer reads a
// before b, or some peer reads b before a (the peers disagree).
func peersOrder(a, b string) bool {
	peerBefore, peerNames := peerOrder()
	if !peerNames[a] || !peerNames[b] {
		return true
	}
	return peerBefore[[2]string{a, b}] && !peerBefore[[2]string{b, a}]
}

// peersOnPair says why two names of one setting are not in an order the
// peers agree on.
func peersOnPair(a, b string) string {
	peerBefore, _ := peerOrder()
	if peerBefore[[2]string{a, b}] || peerBefore[[2]string{b, a}] {
		return "the peers read them in opposite orders"
	}
	return "no peer reads both"
}

// verdictOf is the verdict of an environment name: its own row, else the
// longest prefix row (AWS_*) that matches.
func verdictOf(name string) (verdict, bool) {
	if v, ok := peerVerdicts[name]; ok {
		return v, true
	}
	var best verdict
	for n, v := range peerVerdicts {
		if p, ok := strings.CutSuffix(n, "*"); ok && strings.HasPrefix(name, p) && len(n) > len(best.Name) {
			best = v
		}
	}
	return best, best.Name != ""
}

// runnerSet reports whether a name is one the CI runner sets on every
// step (the pipeline's metadata), not a user's setting.
func runnerSet(name string) bool {
	return strings.HasPrefix(name, "DRONE_") || strings.HasPrefix(name, "CI_")
}

// singleTag is a tag as a registry takes one.
var singleTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// dockerLogin refuses DOCKER_USERNAME or DOCKER_PASSWORD given for a
// DOCKER_REGISTRY other than the push registry. plugins/docker and the
// buildx plugins log in to the push registry with them (PLUGIN_REGISTRY
// first), the Kaniko plugins take all three as the base image's login:
// when DOCKER_REGISTRY names another registry than PLUGIN_REGISTRY, the
// step was written for one or the other, and hoist cannot tell which.
func dockerLogin(s *Settings, lookup LookupFunc) error {
	reg, _ := lookup("DOCKER_REGISTRY")
	reg = hostOf(reg)
	if reg == "" || s.Origin("registry") == "DOCKER_REGISTRY" || reg == hostOf(s.Registry) {
		return nil
	}
	var names []string
	for _, f := range []string{"username", "password"} {
		if o := s.Origin(f); o == "DOCKER_USERNAME" || o == "DOCKER_PASSWORD" {
			names = append(names, o)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("%s given for DOCKER_REGISTRY=%s while %s names %s: plugins/docker and the buildx plugins log in to %s with them, the Kaniko plugins pull base images from %s with them; hoist cannot tell which is meant: for the base image's login set PLUGIN_BASE_IMAGE_REGISTRY, PLUGIN_BASE_IMAGE_USERNAME and PLUGIN_BASE_IMAGE_PASSWORD, for the push PLUGIN_USERNAME and PLUGIN_PASSWORD",
		strings.Join(names, " and "), reg, s.Origin("registry"), hostOf(s.Registry), hostOf(s.Registry), reg)
}

// hostOf is the registry host of a registry setting as the peers write
// it (https://index.docker.io/v1/ is docker.io).
func hostOf(r string) string {
	r = strings.TrimSpace(r)
	r = strings.TrimPrefix(strings.TrimPrefix(r, "https://"), "http://")
	r, _, _ = strings.Cut(r, "/")
	switch r {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return r
}

// peerForms applies what the peers' own forms of a setting say once every
// setting is read: the tags file (Woodpecker's, in place of the tags),
// PLUGIN_SECRETS (the Woodpecker and thegeeklab list, one with
// PLUGIN_SECRET), Woodpecker's cache images (both ways, as there), the
// default tag, and Woodpecker's list of repositories.
func peerForms(s *Settings, workDir string) []error {
	var errs []error
	if s.TagsFile != "" {
		if err := readTagsFile(s, workDir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(s.SecretsList) > 0 {
		if len(s.Secret) > 0 && !slices.Equal(s.Secret, s.SecretsList) {
			errs = append(errs, fmt.Errorf("%s and %s both give build secrets, different ones: they are two peers' names for one setting; keep one", s.Origin("secret"), s.Origin("secrets")))
		} else {
			s.Secret = s.SecretsList
			s.origin["secret"] = s.Origin("secrets")
		}
	}
	for _, ref := range s.CacheImages {
		if strings.ContainsAny(ref, ",=") {
			errs = append(errs, fmt.Errorf("%s: %q is not an image reference", s.Origin("cache-images"), ref))
			continue
		}
		s.CacheFrom = append(s.CacheFrom, "type=registry,ref="+ref)
		s.CacheTo = append(s.CacheTo, "type=registry,ref="+ref+",mode=max,image-manifest=true,oci-mediatypes=true")
		for _, f := range []string{"cache-from", "cache-to"} {
			if !s.IsSet(f) {
				s.origin[f] = s.Origin("cache-images")
			}
		}
	}
	if !singleTag.MatchString(s.DefaultTag) {
		errs = append(errs, fmt.Errorf("%s=%q: want one tag (letters, digits, _ . -, at most 128, not starting with . or -)", s.Origin("auto-tag-default"), s.DefaultTag))
	}
	if strings.Contains(s.Repo, ",") {
		errs = append(errs, fmt.Errorf("%s=%q names several repositories (Woodpecker's plugin takes a list): give one, and the others as full references (registry/repo:tag) in PLUGIN_DESTINATIONS", s.Origin("repo"), s.Repo))
	}
	return errs
}

// readTagsFile reads --tags-file, one tag a line, into the tags, as
// Woodpecker's plugin does (the file wins over PLUGIN_TAGS; a --tags flag
// wins over a file named in the environment). The repository writes the
// file: it is read only when regular, at most maxTagsFile bytes, reached
// by no link out of the workspace.
func readTagsFile(s *Settings, workDir string) error {
	fileOrigin, tagsOrigin := s.Origin("tags-file"), s.Origin("tags")
	switch {
	case strings.HasPrefix(tagsOrigin, "--") && strings.HasPrefix(fileOrigin, "--"):
		return fmt.Errorf("--tags and --tags-file are both given: give one")
	case strings.HasPrefix(tagsOrigin, "--"):
		return nil
	}
	p := s.TagsFile
	if !filepath.IsAbs(p) {
		p = filepath.Join(workDir, p)
	}
	b, err := files.Workspace(workDir).ReadRegular(p, maxTagsFile)
	if err != nil {
		return fmt.Errorf("%s=%q: tags file: %w", fileOrigin, s.TagsFile, err)
	}
	var tags []string
	for _, line := range strings.Split(string(b), "\n") {
		if t := strings.TrimSpace(line); t != "" {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		return fmt.Errorf("%s=%q: the tags file holds no tag (one a line)", fileOrigin, s.TagsFile)
	}
	s.Tags = tags
	s.origin["tags"] = fmt.Sprintf("%s (%s)", fileOrigin, s.TagsFile)
	return nil
}

// Unrecognized checks the variables of environ (KEY=value) that are not
// hoist settings against the peers' verdicts (peers/verdicts.tsv): a
// refused one with a value is an error naming every such variable and
// why; a harmless one gets a notice saying why it has no effect (none for
// the runner's own DRONE_* and CI_* variables); any other PLUGIN_*
// variable gets a notice, with the closest setting when one is near (a
// typo).
func Unrecognized(environ []string) (notes []string, err error) {
	known := map[string]bool{}
	for _, f := range fields {
		for _, e := range f.Env {
			known[e] = true
		}
	}
	var refusedNotes []string
	seen := map[string]bool{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if known[k] || seen[k] {
			continue
		}
		seen[k] = true
		p, ok := verdictOf(k)
		switch {
		case !ok && strings.HasPrefix(k, "PLUGIN_"):
			near := closest(k, known)
			if v != "" && (strings.HasPrefix(k, promotePrefix) || strings.HasPrefix(near, promotePrefix)) {
				// A misspelt policy setting would promote under a
				// weaker policy than the one written: refused.
				refusedNotes = append(refusedNotes, fmt.Sprintf("%s: not a setting of the promotion's policy (did you mean %s?)", k, cmp.Or(near, "one of the PLUGIN_PROMOTE_* settings")))
				continue
			}
			n := fmt.Sprintf("setting %s is not a hoist setting and is ignored", k)
			if near != "" {
				n += "; did you mean " + near + "?"
			}
			notes = append(notes, n)
		case !ok:
		case p.Verdict == refused && v != "" && v != "false":
			refusedNotes = append(refusedNotes, fmt.Sprintf("%s: %s", k, p.Reason))
		case p.Verdict == refused, p.Verdict == harmless && !runnerSet(k):
			notes = append(notes, fmt.Sprintf("setting %s has no effect: %s", k, p.Reason))
		case p.Verdict == honoured && !strings.HasPrefix(p.Setting, "environ:") && !runnerSet(k):
			// A verdict no setting stands behind (TestPeerVerdictsHonoured
			// keeps the data from saying so): said, not hidden.
			notes = append(notes, fmt.Sprintf("setting %s is not read by this hoist and is ignored", k))
		}
	}
	sort.Strings(notes)
	if len(refusedNotes) > 0 {
		sort.Strings(refusedNotes)
		return notes, fmt.Errorf("%w: not supported, and ignoring it would build or push something else:\n  %s", ErrInvalid, strings.Join(refusedNotes, "\n  "))
	}
	return notes, nil
}

// promotePrefix names the promotion's settings, whose misspellings are
// refused rather than noticed.
const promotePrefix = "PLUGIN_PROMOTE"

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
