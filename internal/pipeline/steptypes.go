package pipeline

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"go.yaml.in/yaml/v3"
)

// StepTypes are the step types hoist runs.
var StepTypes = []string{
	"BuildAndPushDockerRegistry", "BuildAndPushECR", "BuildAndPushGAR", "BuildAndPushGCR", "BuildAndPushACR",
	"AquaTrivy", "Run",
}

// kindOfStep is "build" (a Build and Push step), "scan", "run" or "".
func kindOfStep(t string) string {
	switch {
	case strings.HasPrefix(t, "BuildAndPush") && slices.Contains(StepTypes, t):
		return "build"
	case t == "AquaTrivy":
		return "scan"
	case t == "Run":
		return "run"
	}
	return ""
}

// buildFields are the spec fields of every Build and Push step type; the
// identity fields are per type.
var buildFields = []string{"connectorRef", "tags", "caching", "dockerfile", "context", "target", "labels", "buildArgs", "optimize",
	"baseImageConnectorRefs", "cacheFrom", "cacheTo", "envDockerSecrets", "fileDockerSecrets", "envVariables"}

var buildIgnored = []string{"runAsUser", "resources", "reports", "registryRef", "imagePullPolicy", "privileged"}

var identity = map[string][]string{
	"BuildAndPushDockerRegistry": {"repo"},
	"BuildAndPushECR":            {"region", "account", "imageName"},
	"BuildAndPushGAR":            {"host", "projectID", "imageName"},
	"BuildAndPushGCR":            {"host", "projectID", "imageName"},
	"BuildAndPushACR":            {"repository"},
}

var optionalIdentity = map[string][]string{
	"BuildAndPushDockerRegistry": {"remoteCacheRepo"},
	"BuildAndPushECR":            {"remoteCacheImage"},
	"BuildAndPushGAR":            {"remoteCacheImage"},
	"BuildAndPushGCR":            {"remoteCacheImage"},
	"BuildAndPushACR":            {"remoteCacheImage", "subscriptionId"},
}

// kv is one environment variable and where its value came from.
type kv struct {
	Name, Value string
	Pos         Pos
}

// specReader reads a step's spec, resolving expressions and noting
// problems where they are.
type specReader struct {
	ps   *parser
	sc   *Scope
	path string
	// exprFailed is set when an expression could not be resolved: the
	// settings are not checked then (they would hold <+...>).
	exprFailed bool
}

func (r *specReader) fields(n *yaml.Node, path string, known []string, ignore ...string) map[string]*yaml.Node {
	return r.ps.fields(n, path, known, ignore...)
}

// value is a scalar, its expressions resolved (or checked).
func (r *specReader) value(n *yaml.Node, path string) string {
	if n == nil {
		return ""
	}
	v := r.ps.str(n, path)
	return r.expand(v, n, path)
}

func (r *specReader) expand(v string, n *yaml.Node, path string) string {
	if e := r.sc.check(v); e != nil {
		pos := posOf(n)
		if n.Style == 0 && !strings.Contains(v, "\n") {
			pos.Col += e.Col
		}
		r.ps.probs.addAt(pos, "", "%s: %s", path, e.Msg)
		r.exprFailed = true
		return v
	}
	out, err := r.sc.Expand(v)
	if err != nil {
		// A cancelled plan (MakePlan says so) and a budget spent before
		// (reported where it ran out) are no problem of this value.
		if !errors.Is(err, errSpent) && r.sc.context().Err() == nil {
			r.ps.probs.add(n, "", "%s: %v", path, err)
		}
		r.exprFailed = true
	}
	return out
}

// list is a list of scalars (or one scalar).
func (r *specReader) list(n *yaml.Node, path string) []string {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{r.value(n, path)}
	}
	if n.Kind != yaml.SequenceNode {
		r.ps.probs.add(n, "", "%s: want a list, found %s", path, kindName(n))
		return nil
	}
	var out []string
	for i, it := range n.Content {
		out = append(out, r.value(it, fmt.Sprintf("%s[%d]", path, i)))
	}
	return out
}

// pairs is a mapping of scalars, in file order.
func (r *specReader) pairs(n *yaml.Node, path string) []kv {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		r.ps.probs.add(n, "", "%s: want a mapping of names to values, found %s", path, kindName(n))
		return nil
	}
	var out []kv
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			r.ps.probs.add(v, "quote the value", "%s.%s: want a value, found %s", path, k.Value, kindName(v))
			continue
		}
		out = append(out, kv{k.Value, r.expand(v.Value, v, path+"."+k.Value), posOf(v)})
	}
	return out
}

func joinPairs(p []kv) string {
	var s []string
	for _, x := range p {
		s = append(s, x.Name+"="+x.Value)
	}
	return strings.Join(s, ",")
}

// buildSpec is what a Build and Push step's spec gives besides its
// environment: the connectors whose credentials it gets.
type buildSpec struct {
	// Connector is the step's connectorRef, at ConnPos.
	Connector string
	ConnPos   Pos
	// BaseConnector is the first of baseImageConnectorRefs: the connector
	// whose credentials pull the base images ("" for none).
	BaseConnector string
}

// buildEnv is what a runner sends a Build and Push step for its spec
// (docs/pipelines.md; ../spec §4.1), without the connector's credentials:
// its fields as PLUGIN_* settings, then its envVariables. The connectors
// are returned for the credentials.
func (r *specReader) buildEnv(s *Step, infra Infra) (env []kv, bs buildSpec) {
	known := append(append(append([]string{}, buildFields...), identity[s.Type]...), optionalIdentity[s.Type]...)
	f := r.fields(s.Spec, r.path, known, buildIgnored...)
	r.ps.require(f, s.Spec, r.path, append([]string{"connectorRef", "tags"}, identity[s.Type]...)...)
	add := func(name, value string, n *yaml.Node) {
		if value != "" {
			env = append(env, kv{name, value, posOf(n)})
		}
	}
	v := func(k string) string { return r.value(f[k], r.path+"."+k) }
	bs.Connector, bs.ConnPos = v("connectorRef"), posOf(f["connectorRef"])
	switch s.Type {
	case "BuildAndPushDockerRegistry":
		add("PLUGIN_REPO", v("repo"), f["repo"])
	case "BuildAndPushECR":
		region, account := v("region"), v("account")
		add("PLUGIN_REGISTRY", fmt.Sprintf("%s.dkr.ecr.%s.amazonaws.com", account, region), f["account"])
		add("PLUGIN_REGION", region, f["region"])
		add("PLUGIN_REPO", v("imageName"), f["imageName"])
	case "BuildAndPushGAR", "BuildAndPushGCR":
		add("PLUGIN_REGISTRY", strings.TrimSuffix(v("host"), "/")+"/"+v("projectID"), f["host"])
		add("PLUGIN_REPO", v("imageName"), f["imageName"])
	case "BuildAndPushACR":
		repo := v("repository")
		host, _, _ := strings.Cut(repo, "/")
		add("PLUGIN_REGISTRY", host, f["repository"])
		add("PLUGIN_REPO", repo, f["repository"])
		add("SUBSCRIPTION_ID", v("subscriptionId"), f["subscriptionId"])
	}
	if tags := r.list(f["tags"], r.path+".tags"); len(tags) > 0 {
		add("PLUGIN_TAGS", strings.Join(tags, ","), f["tags"])
	}
	add("PLUGIN_DOCKERFILE", v("dockerfile"), f["dockerfile"])
	add("PLUGIN_CONTEXT", v("context"), f["context"])
	add("PLUGIN_TARGET", v("target"), f["target"])
	add("PLUGIN_CUSTOM_LABELS", joinPairs(r.pairs(f["labels"], r.path+".labels")), f["labels"])
	add("PLUGIN_BUILD_ARGS", joinPairs(r.pairs(f["buildArgs"], r.path+".buildArgs")), f["buildArgs"])
	if infra == Kubernetes {
		// optimize defaults to true on Kubernetes.
		if o := f["optimize"]; o == nil || r.ps.boolean(o, r.path+".optimize") {
			env = append(env, kv{"PLUGIN_SNAPSHOT_MODE", "redo", posOf(o)})
		}
	} else if f["optimize"] != nil {
		r.ps.ignored[r.path+".optimize (Kubernetes only)"] = true
	}
	cache := v("remoteCacheRepo") + v("remoteCacheImage")
	cacheNode := f["remoteCacheRepo"]
	if cacheNode == nil {
		cacheNode = f["remoteCacheImage"]
	}
	cacheFrom := r.list(f["cacheFrom"], r.path+".cacheFrom")
	if cache != "" {
		if infra == Kubernetes {
			add("PLUGIN_ENABLE_CACHE", "true", cacheNode)
			add("PLUGIN_CACHE_REPO", cache, cacheNode)
		} else {
			cacheFrom = append(cacheFrom, "type=registry,ref="+cache)
			if f["cacheTo"] == nil {
				add("PLUGIN_CACHE_TO", "type=registry,ref="+cache+",mode=max", cacheNode)
			}
		}
	}
	add("PLUGIN_CACHE_FROM", strings.Join(cacheFrom, ";"), f["cacheFrom"])
	add("PLUGIN_CACHE_TO", v("cacheTo"), f["cacheTo"])
	add("PLUGIN_SECRETS_FROM_ENV", joinPairs(r.pairs(f["envDockerSecrets"], r.path+".envDockerSecrets")), f["envDockerSecrets"])
	add("PLUGIN_SECRETS_FROM_FILE", joinPairs(r.pairs(f["fileDockerSecrets"], r.path+".fileDockerSecrets")), f["fileDockerSecrets"])
	if c := f["caching"]; c != nil {
		r.ps.boolean(c, r.path+".caching")
		r.ps.ignored[r.path+".caching (hoist's engine keeps its layer cache either way)"] = true
	}
	if b := f["baseImageConnectorRefs"]; b != nil {
		refs := r.list(b, r.path+".baseImageConnectorRefs")
		if len(refs) > 0 {
			bs.BaseConnector = refs[0]
		}
	}
	env = append(env, r.pairs(f["envVariables"], r.path+".envVariables")...)
	return env, bs
}

// scanSpec is an AquaTrivy step's spec, read.
type scanSpec struct {
	ImageType string
	// Archive is target.workspace for a local archive; Image the
	// reference for local_image and docker_v2.
	Archive, Image string
	Name, Variant  string
	Severity       string
	Connector      string
	Pos            Pos
}

var imageTypes = []string{"local_archive", "local_image", "docker_v2"}

// severityAtLeast lists the severities from one up. Harness's INFO is
// Trivy's UNKNOWN: a finding without a score (STO's severity levels:
// INFO is a score of -1.0 or 0.0).
func severityAtLeast(s string) (string, bool) {
	if strings.EqualFold(s, "info") {
		s = "UNKNOWN"
	}
	order := []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}
	for i, o := range order {
		if strings.EqualFold(o, s) {
			return strings.Join(order[i:], ","), true
		}
	}
	return "", false
}

func (r *specReader) scanSpec(s *Step) scanSpec {
	f := r.fields(s.Spec, r.path, []string{"mode", "config", "target", "image", "advanced"},
		"privileged", "resources", "runAsUser", "imagePullPolicy", "settings", "sbom", "ingestion")
	r.ps.require(f, s.Spec, r.path, "mode", "config", "target", "image")
	out := scanSpec{Pos: s.Pos}
	if m := r.value(f["mode"], r.path+".mode"); m != "" && m != "orchestration" {
		r.ps.probs.add(f["mode"], "use mode: orchestration", "%s.mode %q: hoist runs the scan itself (orchestration); ingestion and extraction need Harness STO", r.path, m)
	}
	if c := r.value(f["config"], r.path+".config"); c != "" && c != "default" {
		r.ps.probs.add(f["config"], "use config: default", "%s.config %q: hoist knows the default configuration only", r.path, c)
	}
	tp := r.path + ".target"
	t := r.fields(f["target"], tp, []string{"type", "name", "variant", "workspace", "detection"})
	if ty := r.value(t["type"], tp+".type"); ty != "" && ty != "container" {
		r.ps.probs.add(t["type"], "use type: container", "%s.type %q: hoist scans containers", tp, ty)
	}
	out.Name, out.Variant = r.value(t["name"], tp+".name"), r.value(t["variant"], tp+".variant")
	if d := r.value(t["detection"], tp+".detection"); d == "manual" || d == "" {
		if f["target"] != nil {
			r.ps.require(t, f["target"], tp, "name", "variant")
		}
	} else if d != "auto" {
		r.ps.probs.add(t["detection"], "", "%s.detection %q: want manual or auto", tp, d)
	}
	ip := r.path + ".image"
	im := r.fields(f["image"], ip, []string{"type", "name", "tag", "domain"}, "access_id", "access_token", "region")
	out.ImageType = r.value(im["type"], ip+".type")
	switch out.ImageType {
	case "local_archive":
		out.Archive = r.value(t["workspace"], tp+".workspace")
		if out.Archive == "" && f["target"] != nil {
			r.ps.probs.add(f["target"], "set target.workspace to the archive's path, e.g. /harness/image.tar", "%s.workspace is required with image.type local_archive: it is the archive", tp)
		}
	case "local_image", "docker_v2":
		name, tag := r.value(im["name"], ip+".name"), r.value(im["tag"], ip+".tag")
		if d := r.value(im["domain"], ip+".domain"); d != "" && name != "" && !strings.HasPrefix(name, d+"/") {
			name = d + "/" + name
		}
		if name == "" && out.ImageType == "local_image" {
			name, tag = out.Name, out.Variant
		}
		if name == "" && f["image"] != nil {
			r.ps.probs.add(f["image"], "", "%s.name is required with image.type %s", ip, out.ImageType)
		}
		out.Image = name
		if tag != "" {
			out.Image += ":" + tag
		}
	case "":
	default:
		r.ps.probs.add(im["type"], "use "+strings.Join(imageTypes, ", "), "%s.type %q is not an image type hoist scans", ip, out.ImageType)
	}
	ap := r.path + ".advanced"
	adv := r.fields(f["advanced"], ap, []string{"fail_on_severity", "args"}, "log", "include_raw")
	if a := adv["args"]; a != nil {
		r.ps.probs.add(a, "remove it, and give Trivy's settings to hoist's environment as PLUGIN_SCAN_* (docs/usage.md, Scan gate)",
			"%s.args: extra Trivy arguments are not passed to hoist's scan gate", ap)
	}
	if v := r.value(adv["fail_on_severity"], ap+".fail_on_severity"); v != "" {
		if strings.EqualFold(v, "none") {
			out.Severity = "none"
		} else if sev, ok := severityAtLeast(v); ok {
			out.Severity = sev
		} else {
			r.ps.probs.add(adv["fail_on_severity"], "", "%s.fail_on_severity %q: want critical, high, medium, low, info, unknown or none", ap, v)
		}
	}
	return out
}

// runSpec is a Run step's spec, read.
type runSpec struct {
	Command, Shell, Image string
	Env                   []kv
	// OutputVars are its declared outputVariables: the shell variables
	// its outputs are read from when its command succeeded.
	OutputVars []outputVar
}

// outputVar is a Run step's declared output variable: the output Name,
// read from the shell variable Var (the name itself unless value names
// another), masked when Secret.
type outputVar struct {
	Name, Var string
	Secret    bool
}

// shellName is a shell variable's name: what a declared output variable
// may be, so it can stand in the command hoist appends.
var shellName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// outputVars reads a Run step's outputVariables: [- name: X] (with type
// String or Secret, and value naming the shell variable when it is not
// X), as Harness declares them.
func (r *specReader) outputVars(n *yaml.Node, path string) []outputVar {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		r.ps.probs.add(n, "outputVariables: [- name: MY_VAR]", "%s: want a list", path)
		return nil
	}
	var out []outputVar
	for i, it := range n.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		f := r.fields(it, ip, []string{"name", "type", "value"})
		r.ps.require(f, it, ip, "name")
		v := outputVar{Name: r.ps.str(f["name"], ip+".name")}
		v.Var = v.Name
		if f["value"] != nil {
			v.Var = r.ps.str(f["value"], ip+".value")
		}
		switch t := r.ps.str(f["type"], ip+".type"); t {
		case "", "String":
		case "Secret":
			v.Secret = true
		default:
			r.ps.probs.add(f["type"], "use String or Secret", "%s.type %q: want String or Secret", ip, t)
		}
		ok := v.Name != ""
		for i, x := range []string{v.Name, v.Var} {
			if x != "" && !shellName.MatchString(x) && (i == 0 || x != v.Name) {
				r.ps.probs.add(it, "name a shell variable: letters, digits and _", "%s: %q is not a shell variable's name", ip, clip(x))
				ok = false
			}
		}
		if ok {
			out = append(out, v)
		}
	}
	return out
}

func (r *specReader) runSpec(s *Step) runSpec {
	f := r.fields(s.Spec, r.path, []string{"command", "shell", "image", "envVariables", "connectorRef", "outputVariables"},
		"privileged", "imagePullPolicy", "resources", "reports", "runAsUser")
	r.ps.require(f, s.Spec, r.path, "command")
	out := runSpec{Command: r.value(f["command"], r.path+".command"), Shell: r.value(f["shell"], r.path+".shell"), Image: r.value(f["image"], r.path+".image")}
	switch out.Shell {
	case "", "Sh", "Bash":
	default:
		r.ps.probs.add(f["shell"], "use Sh or Bash", "%s.shell %q: hoist runs Sh and Bash", r.path, out.Shell)
	}
	if out.Image != "" && !r.exprFailed {
		// The image is docker run's argument: only an image reference
		// may stand there, never a flag such as --privileged.
		if _, err := reference.ParseNormalizedNamed(out.Image); err != nil {
			r.ps.probs.add(f["image"], "name an image, e.g. alpine:3.20 or registry.example.com/team/tool:1", "%s.image %q is not an image reference: %v", r.path, out.Image, err)
		}
	}
	out.Env = r.pairs(f["envVariables"], r.path+".envVariables")
	out.OutputVars = r.outputVars(f["outputVariables"], r.path+".outputVariables")
	return out
}
