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
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

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

// MaxSteps is the most steps a pipeline may have, and MaxVariables the
// most variables of the pipeline or of one stage (docs/pipelines.md,
// Limits): far above any pipeline written by hand, they bound what
// planning does (every step gets every variable of its scope).
const (
	MaxSteps     = 1000
	MaxVariables = 1000
)

// tooMany reports a pipeline past MaxSteps or MaxVariables.
func tooMany(probs *Problems, p *Pipeline) bool {
	n := len(probs.Items)
	if len(p.Variables) > MaxVariables {
		probs.addAt(p.Variables[MaxVariables].Pos, "", "the pipeline has %d variables, more than %d, hoist's limit (docs/pipelines.md, Limits)", len(p.Variables), MaxVariables)
	}
	steps := 0
	for _, group := range p.Stages {
		for _, st := range group {
			if len(st.Variables) > MaxVariables {
				probs.addAt(st.Variables[MaxVariables].Pos, "", "stage %s has %d variables, more than %d, hoist's limit (docs/pipelines.md, Limits)", clip(st.Identifier), len(st.Variables), MaxVariables)
			}
			for _, g := range st.Steps {
				steps += len(g)
			}
		}
	}
	if steps > MaxSteps {
		probs.addAt(Pos{1, 1}, "split the pipeline", "the pipeline has %d steps, more than %d, hoist's limit (docs/pipelines.md, Limits)", steps, MaxSteps)
	}
	return len(probs.Items) > n
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
		return nil, fmt.Errorf("%s is larger than %d MiB, hoist's limit for a pipeline file or a connectors file (docs/pipelines.md, Limits)", file, MaxFileSize>>20)
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
	dec := yaml.NewDecoder(bytes.NewReader(b))
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	if err == nil {
		var next yaml.Node
		if derr := dec.Decode(&next); !errors.Is(derr, io.EOF) {
			line := 1
			if derr == nil {
				line = next.Line
			}
			probs.addAt(Pos{line, 1}, "one pipeline per file: remove the --- and what follows, or put it in a file of its own", "a second YAML document: hoist reads one pipeline per file")
			return nil, probs
		}
	}
	if err != nil {
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
	if p != nil && tooMany(probs, p) {
		// Planning is per step, with every variable of its scope.
		return nil, probs
	}
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
	first := map[string]Pos{}
	for i, item := range n.Content {
		vp := fmt.Sprintf("%s[%d]", path, i)
		f := ps.fields(item, vp, []string{"name", "type", "value"}, "description", "required", "default")
		ps.require(f, item, vp, "name")
		v := Var{Name: ps.str(f["name"], vp+".name"), Pos: posOf(item), node: f["value"]}
		if f["value"] != nil {
			v.Value = ps.str(f["value"], vp+".value")
			v.Pos = posOf(f["value"])
		}
		if at, dup := first[v.Name]; dup && v.Name != "" {
			ps.probs.add(item, "give each variable its own name", "%s: variable %q is defined twice (first at %s)", vp, clip(v.Name), at)
		} else {
			first[v.Name] = posOf(item)
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
