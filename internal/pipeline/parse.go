// Package pipeline runs the mission's CI pipeline YAML on one machine:
// stages of Build and Push, AquaTrivy and Run steps, in order, parallel
// members concurrently, each Build and Push step on the step engine with
// exactly the settings a CI runner would send it. It is for trying,
// debugging and testing pipelines, not a CI server.
//
// Parse reads a file into a Pipeline, keeping every node's line and
// column; Validate lists every problem at once; Run runs it.
package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hoist-build/hoist/internal/settings"
)

// Pos is a line and column in the pipeline file (1-based).
type Pos struct{ Line, Col int }

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

func posOf(n *yaml.Node) Pos {
	if n == nil {
		return Pos{}
	}
	return Pos{n.Line, n.Column}
}

// Problem is one thing wrong with a pipeline, where it is, and how to fix
// it.
type Problem struct {
	Pos  Pos
	Msg  string
	Hint string
}

// Problems are every problem of a pipeline file; as an error, one per line.
type Problems struct {
	File  string
	Items []Problem
}

// ErrInvalid marks a pipeline that cannot run as written.
var ErrInvalid = errors.New("invalid pipeline")

func (p *Problems) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s)", p.File, len(p.Items))
	for _, it := range p.Items {
		fmt.Fprintf(&b, "\n%s:%s: %s", p.File, it.Pos, it.Msg)
		if it.Hint != "" {
			fmt.Fprintf(&b, "\n    fix: %s", it.Hint)
		}
	}
	return b.String()
}

func (p *Problems) Unwrap() error { return ErrInvalid }

func (p *Problems) add(n *yaml.Node, hint, format string, a ...any) {
	p.Items = append(p.Items, Problem{Pos: posOf(n), Msg: fmt.Sprintf(format, a...), Hint: hint})
}

func (p *Problems) addAt(pos Pos, hint, format string, a ...any) {
	p.Items = append(p.Items, Problem{Pos: pos, Msg: fmt.Sprintf(format, a...), Hint: hint})
}

func (p *Problems) sort() {
	sort.SliceStable(p.Items, func(i, j int) bool {
		a, b := p.Items[i].Pos, p.Items[j].Pos
		return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
	})
}

// Pipeline is a parsed pipeline file.
type Pipeline struct {
	File             string
	Identifier, Name string
	Variables        []Var
	// Stages in order; the members of a group run in parallel.
	Stages [][]*Stage
	// Ignored are the fields accepted and not acted on, once each.
	Ignored []string
	// probs are the parse's problems, which MakePlan reports with its own.
	probs []Problem
}

// Var is a pipeline or stage variable.
type Var struct {
	Name, Value string
	Pos         Pos
	node        *yaml.Node
}

// Infra is what a stage builds on.
type Infra string

const (
	Cloud      Infra = "Cloud"            // runtime: Cloud
	VM         Infra = "VM"               // infrastructure: VM
	Kubernetes Infra = "KubernetesDirect" // infrastructure: KubernetesDirect
)

// Stage is one CI stage.
type Stage struct {
	Identifier, Name string
	Pos              Pos
	Variables        []Var
	CloneCodebase    bool
	Infra            Infra
	When             When
	Timeout          time.Duration
	// Steps in order; the members of a group run in parallel.
	Steps [][]*Step
}

// Step is one step of a stage.
type Step struct {
	Identifier, Name, Type string
	Pos                    Pos
	Spec                   *yaml.Node
	When                   When
	Timeout                time.Duration
	Stage                  *Stage
	node                   *yaml.Node
}

// When is a step's or stage's run condition.
type When struct {
	// StageStatus is Success (the default), Failure or All.
	StageStatus string
	Condition   string
	CondPos     Pos
}

// parser walks the document, collecting problems and ignored fields.
type parser struct {
	probs   *Problems
	ignored map[string]bool
}

// Parse reads and parses a pipeline file. A file that is not YAML, or not
// a pipeline, is a *Problems error and no Pipeline; a pipeline with
// problems is returned with them, and MakePlan reports them again with
// the rest (every problem at once).
func Parse(file string) (*Pipeline, error) {
	b, err := readPipeline(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return ParseBytes(file, b)
}

// MaxFileSize is the largest pipeline file hoist reads (docs/pipelines.md,
// Limits).
const MaxFileSize = 4 << 20

// readPipeline reads a regular file of at most MaxFileSize bytes.
func readPipeline(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", file, fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d MiB, hoist's limit for a pipeline file (docs/pipelines.md, Limits)", file, MaxFileSize>>20)
	}
	return b, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// ParseBytes parses a pipeline from its content; file names it in
// problems.
func ParseBytes(file string, b []byte) (*Pipeline, error) {
	probs := &Problems{File: file}
	if len(b) > MaxFileSize {
		probs.addAt(Pos{1, 1}, "", "the file is larger than %d MiB, hoist's limit for a pipeline file (docs/pipelines.md, Limits)", MaxFileSize>>20)
		return nil, probs
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(line, "yaml: unmarshal errors:"))
			if line == "" {
				continue
			}
			pos := Pos{1, 1}
			if m := yamlLine.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				pos, line = Pos{n, 1}, m[2]
			}
			probs.addAt(pos, "", "YAML: %s", line)
		}
		return nil, probs
	}
	if len(doc.Content) == 0 {
		probs.addAt(Pos{1, 1}, "start the file with pipeline:", "the file is empty")
		return nil, probs
	}
	if anchors(probs, &doc); len(probs.Items) > 0 {
		// What the rest would say of an alias misleads ("found nothing").
		probs.sort()
		return nil, probs
	}
	ps := &parser{probs: probs, ignored: map[string]bool{}}
	p := ps.pipeline(doc.Content[0])
	if p != nil {
		p.File = file
		for k := range ps.ignored {
			p.Ignored = append(p.Ignored, k)
		}
		sort.Strings(p.Ignored)
	}
	if len(probs.Items) > 0 {
		probs.sort()
		if p != nil {
			p.probs = probs.Items
		}
		return p, probs
	}
	return p, nil
}

// anchors reports every YAML anchor (&a), alias (*a) and merge key (<<:)
// under n: hoist reads a pipeline as written, and an alias can make a
// small file a large one.
func anchors(probs *Problems, n *yaml.Node) {
	const fix = "write the value out where it is used: hoist does not expand YAML anchors"
	switch {
	case n.Kind == yaml.AliasNode:
		probs.add(n, fix, "YAML alias *%s: anchors and aliases are not supported", clip(n.Value))
		return
	case n.Anchor != "":
		probs.add(n, fix, "YAML anchor &%s: anchors and aliases are not supported", clip(n.Anchor))
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 && c.Kind == yaml.ScalarNode && c.Tag == "!!merge" {
			probs.add(c, fix, "YAML merge key <<: anchors, aliases and merge keys are not supported")
		}
		anchors(probs, c)
	}
}

// fields reads a mapping: the known keys are returned by name; keys in
// ignore are accepted and noted; any other key is noted too, unless it is
// one letter or two from a known key (a typo), which is a problem.
func (ps *parser) fields(n *yaml.Node, path string, known []string, ignore ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n == nil {
		return out
	}
	if n.Kind != yaml.MappingNode {
		ps.probs.add(n, "", "%s: want a mapping, found %s", path, kindName(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case slices.Contains(known, k.Value):
			if _, dup := out[k.Value]; dup {
				ps.probs.add(k, "keep one of them", "%s.%s is given twice", path, k.Value)
			}
			out[k.Value] = v
		case slices.Contains(ignore, k.Value):
			ps.ignored[path+"."+k.Value] = true
		default:
			if c := closest(k.Value, known); c != "" {
				ps.probs.add(k, "write "+c, "%s.%s is not a field hoist knows; did you mean %s?", path, k.Value, c)
				continue
			}
			ps.ignored[path+"."+k.Value] = true
		}
	}
	return out
}

// nonEmptyList says whether n is a list with at least one item, and
// reports what it is otherwise: a list of items, each "- item: ...".
func (ps *parser) nonEmptyList(n *yaml.Node, path, item string) bool {
	fix := fmt.Sprintf("list them: [- %s: ...]", item)
	switch {
	case n.Kind != yaml.SequenceNode:
		ps.probs.add(n, fix, "%s: want a list of %ss, found %s", path, item, kindName(n))
	case len(n.Content) == 0:
		ps.probs.add(n, fix, "%s: the list is empty: want at least one %s", path, item)
	default:
		return true
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// closest is the known key within two edits of k (case folded), if any.
func closest(k string, known []string) string {
	for _, c := range known {
		if d := settings.EditDistance(strings.ToLower(k), strings.ToLower(c)); d > 0 && d <= 2 && len(c) > 3 {
			return c
		}
		if strings.EqualFold(k, c) && k != c {
			return c
		}
	}
	return ""
}

func (ps *parser) str(n *yaml.Node, path string) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		ps.probs.add(n, "", "%s: want a value, found %s", path, kindName(n))
		return ""
	}
	return n.Value
}

// identifierPattern is what Harness accepts as an identifier (its
// NGRegexValidatorConstants.IDENTIFIER_PATTERN): a letter or _, then
// letters, digits or _, 128 characters at most. hoist makes directories,
// container names and paths of the pipeline's, stages' and steps'
// identifiers, so nothing else may pass: "../.." would name a directory
// outside the run's workspace.
var identifierPattern = regexp.MustCompile(`^[a-zA-Z_][0-9a-zA-Z_]{0,127}$`)

// identifier is an identifier's value, checked against identifierPattern.
func (ps *parser) identifier(n *yaml.Node, path string) string {
	v := ps.str(n, path)
	if v != "" && !identifierPattern.MatchString(v) {
		hint := "use only letters, digits and _, starting with a letter or _"
		if s := suggestIdentifier(v); s != "" {
			hint = "write " + s
		}
		ps.probs.add(n, hint, "%s %q is not an identifier: Harness takes a letter or _, then letters, digits or _, at most 128 characters", path, v)
	}
	return v
}

// suggestIdentifier is v with every other character made _, when that
// leaves a letter or digit ("build-app" → "build_app").
func suggestIdentifier(v string) string {
	var b strings.Builder
	letters := false
	for _, c := range v {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			letters = true
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if !letters {
		return ""
	}
	if s[0] >= '0' && s[0] <= '9' {
		s = "_" + s
	}
	return s[:min(len(s), 128)]
}

func (ps *parser) require(m map[string]*yaml.Node, parent *yaml.Node, path string, keys ...string) {
	for _, k := range keys {
		if v, ok := m[k]; !ok || (v.Kind == yaml.ScalarNode && strings.TrimSpace(v.Value) == "") {
			at := parent
			if ok {
				at = v
			}
			ps.probs.add(at, "", "%s.%s is required", path, k)
		}
	}
}

func (ps *parser) pipeline(root *yaml.Node) *Pipeline {
	top := ps.fields(root, "", []string{"pipeline"}, "inputSet", "template")
	pn, ok := top["pipeline"]
	if !ok {
		ps.probs.add(root, "start the file with pipeline:", "no pipeline: at the top of the file")
		return nil
	}
	f := ps.fields(pn, "pipeline", []string{"identifier", "name", "stages", "variables"},
		"projectIdentifier", "orgIdentifier", "description", "tags", "properties", "allowStageExecutions", "notificationRules", "timeout", "delegateSelectors", "flowControl")
	p := &Pipeline{Identifier: ps.identifier(f["identifier"], "pipeline.identifier"), Name: ps.str(f["name"], "pipeline.name")}
	ps.require(f, pn, "pipeline", "identifier", "stages")
	if p.Name == "" {
		p.Name = p.Identifier
	}
	p.Variables = ps.variables(f["variables"], "pipeline.variables")
	sn := f["stages"]
	if sn == nil {
		return p
	}
	if !ps.nonEmptyList(sn, "pipeline.stages", "stage") {
		return p
	}
	for i, item := range sn.Content {
		path := fmt.Sprintf("pipeline.stages[%d]", i)
		m := ps.fields(item, path, []string{"stage", "parallel"})
		switch {
		case m["stage"] != nil:
			if st := ps.stage(m["stage"], path+".stage"); st != nil {
				p.Stages = append(p.Stages, []*Stage{st})
			}
		case m["parallel"] != nil:
			var group []*Stage
			par := m["parallel"]
			if !ps.nonEmptyList(par, path+".parallel", "stage") {
				continue
			}
			for j, member := range par.Content {
				mp := fmt.Sprintf("%s.parallel[%d]", path, j)
				mm := ps.fields(member, mp, []string{"stage"})
				if mm["stage"] == nil {
					ps.probs.add(member, "", "%s: want - stage:", mp)
					continue
				}
				if st := ps.stage(mm["stage"], mp+".stage"); st != nil {
					group = append(group, st)
				}
			}
			if len(group) > 0 {
				p.Stages = append(p.Stages, group)
			}
		default:
			ps.probs.add(item, "", "%s: want - stage: or - parallel:", path)
		}
	}
	return p
}

func (ps *parser) variables(n *yaml.Node, path string) []Var {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		ps.probs.add(n, "variables: [- name: x, type: String, value: y]", "%s: want a list", path)
		return nil
	}
	var out []Var
	for i, item := range n.Content {
		vp := fmt.Sprintf("%s[%d]", path, i)
		f := ps.fields(item, vp, []string{"name", "type", "value"}, "description", "required", "default")
		ps.require(f, item, vp, "name")
		v := Var{Name: ps.str(f["name"], vp+".name"), Pos: posOf(item), node: f["value"]}
		if f["value"] != nil {
			v.Value = ps.str(f["value"], vp+".value")
			v.Pos = posOf(f["value"])
		}
		if t := ps.str(f["type"], vp+".type"); t == "Secret" {
			ps.probs.add(f["type"], "use <+secrets.getValue(\"name\")> in the value of a String variable", "%s: Secret variables name a secret manager hoist does not have", vp)
		}
		out = append(out, v)
	}
	return out
}

func (ps *parser) stage(n *yaml.Node, path string) *Stage {
	f := ps.fields(n, path, []string{"identifier", "name", "type", "spec", "variables", "when", "timeout"},
		"description", "tags", "failureStrategies", "strategy", "delegateSelectors")
	ps.require(f, n, path, "identifier", "type", "spec")
	st := &Stage{Identifier: ps.identifier(f["identifier"], path+".identifier"), Name: ps.str(f["name"], path+".name"), Pos: posOf(n), Infra: Cloud}
	if st.Name == "" {
		st.Name = st.Identifier
	}
	if t := ps.str(f["type"], path+".type"); t != "" && t != "CI" {
		ps.probs.add(f["type"], "", "%s.type %s: hoist runs CI stages only", path, t)
	}
	st.Variables = ps.variables(f["variables"], path+".variables")
	st.When = ps.when(f["when"], path+".when", "pipelineStatus")
	st.Timeout = ps.timeout(f["timeout"], path+".timeout")
	spec := ps.fields(f["spec"], path+".spec", []string{"cloneCodebase", "execution", "infrastructure", "runtime", "platform"},
		"caching", "sharedPaths", "serviceDependencies", "slsa_provenance", "buildIntelligence")
	if v := spec["cloneCodebase"]; v != nil {
		st.CloneCodebase = ps.boolean(v, path+".spec.cloneCodebase")
	}
	st.Infra = ps.infra(spec, f["spec"], path+".spec")
	ex := spec["execution"]
	if ex == nil {
		if f["spec"] != nil {
			ps.probs.add(f["spec"], "", "%s.spec.execution is required", path)
		}
		return st
	}
	if ex.Kind == yaml.SequenceNode {
		// The document's Kubernetes build-only tab.
		ps.probs.add(ex, "indent the list one level and put steps: above it (execution: {steps: [- step: ...]})",
			"%s.spec.execution holds a list directly; the steps belong under execution.steps", path)
		return st
	}
	ef := ps.fields(ex, path+".spec.execution", []string{"steps"}, "rollbackSteps")
	steps := ef["steps"]
	if steps == nil {
		ps.probs.add(ex, "", "%s.spec.execution.steps is required", path)
		return st
	}
	if !ps.nonEmptyList(steps, path+".spec.execution.steps", "step") {
		return st
	}
	for i, item := range steps.Content {
		ip := fmt.Sprintf("%s.spec.execution.steps[%d]", path, i)
		m := ps.fields(item, ip, []string{"step", "parallel"}, "stepGroup")
		switch {
		case m["step"] != nil:
			if s := ps.step(m["step"], ip+".step", st); s != nil {
				st.Steps = append(st.Steps, []*Step{s})
			}
		case m["parallel"] != nil:
			par := m["parallel"]
			if !ps.nonEmptyList(par, ip+".parallel", "step") {
				continue
			}
			var group []*Step
			for j, member := range par.Content {
				mp := fmt.Sprintf("%s.parallel[%d]", ip, j)
				mm := ps.fields(member, mp, []string{"step"})
				if mm["step"] == nil {
					ps.probs.add(member, "", "%s: want - step:", mp)
					continue
				}
				if s := ps.step(mm["step"], mp+".step", st); s != nil {
					group = append(group, s)
				}
			}
			if len(group) > 0 {
				st.Steps = append(st.Steps, group)
			}
		default:
			if item.Kind == yaml.MappingNode && len(item.Content) > 0 && item.Content[0].Value == "stepGroup" {
				ps.probs.add(item, "", "%s: step groups are not supported", ip)
				continue
			}
			ps.probs.add(item, "", "%s: want - step: or - parallel:", ip)
		}
	}
	return st
}

func (ps *parser) infra(spec map[string]*yaml.Node, at *yaml.Node, path string) Infra {
	if rt := spec["runtime"]; rt != nil {
		f := ps.fields(rt, path+".runtime", []string{"type"}, "spec")
		if t := ps.str(f["type"], path+".runtime.type"); t != "Cloud" {
			ps.probs.add(rt, "runtime: {type: Cloud, spec: {}}", "%s.runtime.type %q: want Cloud", path, t)
		}
		return Cloud
	}
	in := spec["infrastructure"]
	if in == nil {
		if spec["platform"] != nil {
			return Cloud
		}
		if at != nil {
			ps.probs.add(at, "add runtime: {type: Cloud, spec: {}} (BuildKit) or infrastructure: {type: KubernetesDirect, spec: {...}} (Kaniko)",
				"%s has no infrastructure or runtime", path)
		}
		return Cloud
	}
	f := ps.fields(in, path+".infrastructure", []string{"type"}, "spec", "useFromStage")
	switch t := ps.str(f["type"], path+".infrastructure.type"); t {
	case "KubernetesDirect", "KubernetesHosted":
		return Kubernetes
	case "VM", "Docker":
		return VM
	case "":
		if f["type"] == nil {
			ps.probs.add(in, "", "%s.infrastructure.type is required (useFromStage is not supported)", path)
		}
	default:
		ps.probs.add(f["type"], "", "%s.infrastructure.type %q: want KubernetesDirect or VM (or runtime: Cloud)", path, t)
	}
	return Cloud
}

func (ps *parser) boolean(n *yaml.Node, path string) bool {
	switch v := ps.str(n, path); v {
	case "true":
		return true
	case "false", "":
		return false
	default:
		ps.probs.add(n, "", "%s: want true or false, found %q", path, v)
	}
	return false
}

var stageStatuses = []string{"Success", "Failure", "All"}

func (ps *parser) when(n *yaml.Node, path, statusKey string) When {
	w := When{StageStatus: "Success"}
	if n == nil {
		return w
	}
	f := ps.fields(n, path, []string{statusKey, "condition"})
	if v := f[statusKey]; v != nil {
		w.StageStatus = ps.str(v, path+"."+statusKey)
		if !slices.Contains(stageStatuses, w.StageStatus) {
			ps.probs.add(v, "", "%s.%s %q: want Success, Failure or All", path, statusKey, w.StageStatus)
		}
	}
	if v := f["condition"]; v != nil {
		w.Condition, w.CondPos = ps.str(v, path+".condition"), posOf(v)
		if _, err := parseCondition(w.Condition); err != nil {
			ps.probs.add(v, "write a condition of the documented subset (docs/pipelines.md)", "%s.condition: %v", path, err)
		}
	}
	return w
}

func (ps *parser) timeout(n *yaml.Node, path string) time.Duration {
	if n == nil {
		return 0
	}
	d, err := ParseTimeout(ps.str(n, path))
	if err != nil {
		ps.probs.add(n, "write it as 10m, 1h 30m or 1d", "%s: %v", path, err)
	}
	return d
}

// MaxTimeout is the longest timeout hoist takes (docs/pipelines.md,
// Limits): Harness's own maxima are lower.
const MaxTimeout = 35 * 24 * time.Hour

// ParseTimeout reads a Harness timeout: units w, d, h, m, s, ms, in any
// number, separated by spaces or not ("1h 30m", "1d", "90s"). A timeout
// longer than MaxTimeout is an error, found before any arithmetic could
// overflow.
func ParseTimeout(v string) (time.Duration, error) {
	in := strings.TrimSpace(v)
	v = strings.ReplaceAll(in, " ", "")
	if v == "" {
		return 0, fmt.Errorf("empty timeout")
	}
	var total time.Duration
	for v != "" {
		i := 0
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		j := i
		for j < len(v) && (v[j] < '0' || v[j] > '9') {
			j++
		}
		if i == 0 {
			return 0, fmt.Errorf("timeout %q: want a number and a unit", clip(in))
		}
		unit := map[string]time.Duration{"w": 7 * 24 * time.Hour, "d": 24 * time.Hour, "h": time.Hour, "m": time.Minute, "s": time.Second, "ms": time.Millisecond}[v[i:j]]
		if unit == 0 {
			return 0, fmt.Errorf("timeout unit %q: want w, d, h, m, s or ms", clip(v[i:j]))
		}
		n, err := strconv.ParseInt(v[:i], 10, 64)
		if err != nil || n > int64((MaxTimeout-total)/unit) {
			return 0, fmt.Errorf("timeout %q is longer than %dd, hoist's maximum (docs/pipelines.md, Limits)", clip(in), MaxTimeout/(24*time.Hour))
		}
		total += time.Duration(n) * unit
		v = v[j:]
	}
	return total, nil
}

func (ps *parser) step(n *yaml.Node, path string, stage *Stage) *Step {
	f := ps.fields(n, path, []string{"identifier", "name", "type", "spec", "when", "timeout"},
		"description", "failureStrategies", "strategy", "contextType", "delegateSelectors", "enforce")
	ps.require(f, n, path, "identifier", "type")
	s := &Step{Identifier: ps.identifier(f["identifier"], path+".identifier"), Name: ps.str(f["name"], path+".name"),
		Type: ps.str(f["type"], path+".type"), Pos: posOf(n), Spec: f["spec"], Stage: stage, node: n}
	if s.Name == "" {
		s.Name = s.Identifier
	}
	s.When = ps.when(f["when"], path+".when", "stageStatus")
	s.Timeout = ps.timeout(f["timeout"], path+".timeout")
	if tn := f["type"]; tn != nil && s.Type != "" && kindOfStep(s.Type) == "" {
		ps.probs.add(tn, "use one of "+strings.Join(StepTypes, ", "), "%s.type %s is not a step type hoist runs", path, s.Type)
	}
	if s.Spec == nil && s.Type != "" {
		ps.probs.add(n, "", "%s.spec is required", path)
	}
	return s
}
