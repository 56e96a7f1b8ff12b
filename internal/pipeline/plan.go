package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/step"
)

// PlanOptions are what a plan resolves against.
type PlanOptions struct {
	Seq int
	// ExecutionID is this run's HARNESS_EXECUTION_ID, unique to the run
	// ("" when validating): hoist's steps stamp the workspace state they
	// make with it, and trust only state stamped so (internal/runid).
	ExecutionID string
	Codebase    Codebase
	// Secret looks a secret up; nil when validating (every secret is a
	// placeholder then).
	Secret func(string) (string, bool)
	// Connectors give Build and Push steps their credentials; nil runs
	// against local registries (no credentials).
	Connectors *Connectors
	// BuildxOnK8 is CI_USE_BUILDX_ON_K8 given to the run.
	BuildxOnK8 bool
}

// Planned is one step, ready to run: what kind it is and the exact
// environment a runner would send it.
type Planned struct {
	Step *Step
	// Kind is build, scan or run.
	Kind string
	// Env is the step's environment, in the order a runner merges it.
	Env   []kv
	Notes []string
	// Secrets are the secret values the step's environment holds.
	Secrets []string
	Scan    scanSpec
	Run     runSpec
	// Settings are a Build and Push step's settings, typed: what its
	// environment gives (Env, converted once through internal/settings,
	// paths as the runner names them). The runner decides by them (the
	// mode, the network), never by Env's strings. Nil for the other
	// kinds, and when the plan has a problem with them.
	Settings *settings.Settings
	// BaseConnector is the connector of a Build and Push step's base
	// images (its spec's first baseImageConnectorRefs), "" for none.
	BaseConnector string
	// Refs are the references a Build and Push step names; Pushes says
	// whether it pushes them.
	Refs   []name.Tag
	Pushes bool
	// Tool is kaniko or buildkit for a Build and Push step.
	Tool string
	// Outputs are the other steps' outputs the step's spec names: the
	// runner plans the step again with their values just before it runs
	// (until then they are OutputPlaceholder).
	Outputs []OutputRef
}

// PushOnly reports a push-only Build and Push step (PLUGIN_PUSH_ONLY):
// it builds nothing.
func (p *Planned) PushOnly() bool { return p.Settings != nil && p.Settings.PushOnly }

// Builds reports a Build and Push step that builds (with or without a
// push: PLUGIN_NO_PUSH and its alias PLUGIN_DRY_RUN keep the build).
func (p *Planned) Builds() bool { return p.Kind == "build" && !p.PushOnly() }

// BuildsInEngine reports a step that builds with BuildKit (the run's
// engine, when it runs in this process).
func (p *Planned) BuildsInEngine() bool { return p.Builds() && p.Tool == "buildkit" }

// Lookup is the step's environment as a lookup.
func (p *Planned) Lookup(k string) (string, bool) {
	for i := len(p.Env) - 1; i >= 0; i-- {
		if p.Env[i].Name == k {
			return p.Env[i].Value, true
		}
	}
	return "", false
}

// Environ is the step's environment as NAME=VALUE, one per name.
func (p *Planned) Environ() []string {
	seen := map[string]bool{}
	var out []string
	for i := len(p.Env) - 1; i >= 0; i-- {
		if seen[p.Env[i].Name] {
			continue
		}
		seen[p.Env[i].Name] = true
		out = append(out, p.Env[i].Name+"="+p.Env[i].Value)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Plan is a pipeline's steps, planned, stage by stage.
type Plan struct {
	Pipeline *Pipeline
	Steps    map[*Step]*Planned
	Seq      int
	// ExecutionID is the run's HARNESS_EXECUTION_ID (see PlanOptions).
	ExecutionID string
	// opts are the options the plan was made with: the runner plans a
	// step again with them once the outputs it names are known.
	opts PlanOptions
	// Warnings are what may fail at run time without being certain to:
	// validate prints them, run logs them; they stop nothing.
	Warnings []Problem
}

// WarningLines are the plan's warnings as FILE:LINE:COL: warning: ...
// lines, with their fix.
func (pl *Plan) WarningLines() []string {
	var out []string
	for _, w := range pl.Warnings {
		l := fmt.Sprintf("%s:%s: warning: %s", pl.Pipeline.File, w.Pos, w.Msg)
		if w.Hint != "" {
			l += "\n    fix: " + w.Hint
		}
		out = append(out, l)
	}
	return out
}

// MakePlan plans every step and checks what can be checked before a run:
// the step types' fields, the expressions, the settings each step would
// get, and the hand-overs between steps. Every problem is reported at
// once. Cancelling ctx stops it.
func MakePlan(ctx context.Context, p *Pipeline, o PlanOptions) (*Plan, error) {
	ps := &parser{probs: &Problems{File: p.File, Items: append([]Problem(nil), p.probs...)}, ignored: map[string]bool{}}
	pl := &Plan{Pipeline: p, Steps: map[*Step]*Planned{}, Seq: o.Seq, ExecutionID: o.ExecutionID, opts: o}
	validating := o.Secret == nil
	secret := o.Secret
	if validating {
		secret = func(string) (string, bool) { return "secret-placeholder", true }
	}
	// The scopes of one plan share one expansion budget.
	b := &budget{left: MaxExpansion}
	scope := func(st *Stage, s *Step, secrets *[]string) *Scope {
		return &Scope{Pipeline: p, Stage: st, Step: s, Seq: o.Seq, Codebase: o.Codebase, Secret: secret, Secrets: secrets, ctx: ctx, budget: b}
	}
	top := scope(nil, nil, nil)
	for _, v := range p.Variables {
		if v.node != nil {
			(&specReader{ps: ps, sc: top}).value(v.node, "pipeline.variables."+v.Name)
		}
	}
	stageIDs := map[string]Pos{}
	for _, group := range p.Stages {
		for _, st := range group {
			if prev, dup := stageIDs[st.Identifier]; dup && st.Identifier != "" {
				ps.probs.addAt(st.Pos, "give each stage its own identifier", "stage identifier %q is used twice (first at %s)", st.Identifier, prev)
			}
			stageIDs[st.Identifier] = st.Pos
			sc := scope(st, nil, nil)
			if st.When.Condition != "" {
				checkCondition(ps, sc, st.When)
			}
			for _, v := range st.Variables {
				if v.node != nil {
					(&specReader{ps: ps, sc: sc}).value(v.node, "stage "+st.Identifier+" variables."+v.Name)
				}
			}
			planStage(ps, pl, st, o, scope)
		}
	}
	if err := ctx.Err(); err != nil {
		return pl, fmt.Errorf("plan %s: %w", p.File, err)
	}
	for k := range ps.ignored {
		if !slices.Contains(p.Ignored, k) {
			p.Ignored = append(p.Ignored, k)
		}
	}
	sort.Strings(p.Ignored)
	sort.SliceStable(pl.Warnings, func(i, j int) bool {
		a, b := pl.Warnings[i].Pos, pl.Warnings[j].Pos
		return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
	})
	if len(ps.probs.Items) > 0 {
		ps.probs.sort()
		return pl, ps.probs
	}
	return pl, nil
}

// checkCondition reports a condition hoist cannot evaluate: one of
// unknown expressions, or one whose values cannot be had (a secret that
// is nowhere): everything a condition reads is known before the run, and
// a condition that cannot be evaluated is an error, never a skipped step.
func checkCondition(ps *parser, sc *Scope, w When) {
	if e := sc.check(w.Condition); e != nil {
		ps.probs.addAt(w.CondPos, "", "when.condition: %s", e.Msg)
		return
	}
	if _, err := parseCondition(w.Condition); err != nil {
		return // the parser reported it
	}
	if _, err := sc.EvalCondition(w.Condition); err != nil && sc.context().Err() == nil && !errors.Is(err, errSpent) {
		ps.probs.addAt(w.CondPos, "", "when.condition: %v", err)
	}
}

func planStage(ps *parser, pl *Plan, st *Stage, o PlanOptions, scope func(*Stage, *Step, *[]string) *Scope) {
	stepIDs := map[string]Pos{}
	// built are the references the stage's earlier steps record their
	// images under (PLUGIN_SOURCE_IMAGE hands over through them).
	var built []name.Tag
	// runBefore: a Run step of an earlier group, which may make what a
	// later build needs in the workspace.
	runBefore := false
	for _, group := range st.Steps {
		var groupBuilt []name.Tag
		groupRuns := false
		for _, s := range group {
			if prev, dup := stepIDs[s.Identifier]; dup && s.Identifier != "" {
				ps.probs.addAt(s.Pos, "give each step of a stage its own identifier", "step identifier %q is used twice in stage %s (first at %s)", s.Identifier, st.Identifier, prev)
			}
			stepIDs[s.Identifier] = s.Pos
			var secrets []string
			sc := scope(st, s, &secrets)
			if s.When.Condition != "" {
				checkCondition(ps, sc, s.When)
			}
			// A step's spec may name the outputs of the steps before it,
			// known when it is about to run: placeholders until then.
			var used []OutputRef
			sc.outputs, sc.used = placeholderOutputs, &used
			pd := planStep(ps, sc, s, o)
			if pd == nil {
				continue
			}
			pd.Secrets, pd.Outputs = secrets, used
			pl.Steps[s] = pd
			groupRuns = groupRuns || pd.Kind == "run"
			if pd.Kind == "build" && !st.CloneCodebase {
				checkNoCodebase(ps, pl, pd, st, runBefore)
			}
			if pd.Kind != "build" || pd.Settings == nil {
				continue
			}
			if src := pd.Settings.SourceImage; src != "" && pd.PushOnly() {
				checkSourceImage(ps, pd, st, src, built)
			}
			if pd.Builds() {
				groupBuilt = append(groupBuilt, pd.Refs...)
			}
		}
		built = append(built, groupBuilt...)
		runBefore = runBefore || groupRuns
	}
}

// checkNoCodebase reports a build whose context (and Dockerfile) is in
// the workspace of a stage that does not clone the codebase
// (cloneCodebase false, or left out: Harness's default): the workspace
// starts empty, so the build finds no Dockerfile. With a Run step in an
// earlier group of the stage, which may make the files, it is a
// warning (validate prints it, the step's log says it); without one, a
// problem. A context elsewhere (a URL, a path outside the workspace)
// is none of this.
func checkNoCodebase(ps *parser, pl *Plan, pd *Planned, st *Stage, runBefore bool) {
	// By the typed settings, or, when they have a problem of their own
	// (reported), by the variables that name the mode and the paths.
	pushOnly, ctxDir, dockerfile := false, ".", ""
	if s := pd.Settings; s != nil {
		pushOnly, ctxDir, dockerfile = s.PushOnly, s.Context, s.Dockerfile
	} else {
		v, _ := pd.Lookup("PLUGIN_PUSH_ONLY")
		b, err := strconv.ParseBool(v)
		pushOnly = err == nil && b
		if v, ok := pd.Lookup("PLUGIN_CONTEXT"); ok {
			ctxDir = v
		}
		dockerfile, _ = pd.Lookup("PLUGIN_DOCKERFILE")
	}
	if pushOnly || strings.Contains(ctxDir+dockerfile, OutputPlaceholder) {
		return
	}
	if ctxDir == "" {
		ctxDir = "."
	}
	if strings.Contains(ctxDir, "://") || strings.HasPrefix(ctxDir, "git@") || !inRunnerWorkspace(ctxDir) {
		return
	}
	if dockerfile == "" {
		dockerfile = path.Join(ctxDir, "Dockerfile")
	}
	if !inRunnerWorkspace(dockerfile) && !inRunnerWorkspace(ctxDir) {
		return
	}
	pos := pd.Step.Pos
	msg := fmt.Sprintf("step %s: stage %s does not clone the codebase (cloneCodebase is false or left out), so its workspace starts empty: the build's context %s and Dockerfile %s", pd.Step.Identifier, st.Identifier, ctxDir, dockerfile)
	if runBefore {
		w := Problem{Pos: pos, Msg: msg + " are there only if an earlier Run step of the stage writes them", Hint: "set spec.cloneCodebase: true on stage " + st.Identifier + " unless an earlier Run step writes the context"}
		pl.Warnings = append(pl.Warnings, w)
		pd.Notes = append(pd.Notes, "warning: "+w.Msg)
		return
	}
	ps.probs.addAt(pos, "set spec.cloneCodebase: true on stage "+st.Identifier+", or write the context in a Run step before this one",
		"%s are not there (no earlier Run step of the stage writes them)", msg)
}

// inRunnerWorkspace reports a path a runner resolves in the workspace:
// relative, or under /harness.
func inRunnerWorkspace(p string) bool {
	return !path.IsAbs(p) || p == "/harness" || strings.HasPrefix(p, "/harness/")
}

// checkSourceImage reports a PLUGIN_SOURCE_IMAGE that no earlier step of
// the stage builds (the document's -buildx suffix).
func checkSourceImage(ps *parser, pd *Planned, st *Stage, src string, built []name.Tag) {
	if strings.Contains(src, OutputPlaceholder) {
		return // an earlier step's output: known when the step runs
	}
	ref, err := name.ParseReference(src, name.WithDefaultTag("latest"))
	if err != nil {
		return // the settings check reports it
	}
	var names []string
	best, bestD := "", 1<<30
	for _, b := range built {
		if b.Name() == ref.Name() {
			return
		}
		names = append(names, shortRef(b))
		if d := settings.EditDistance(shortRef(b), src); d < bestD {
			best, bestD = shortRef(b), d
		}
	}
	pos := pd.Step.Pos
	origin := pd.Settings.Origin("source-image")
	for _, e := range pd.Env {
		if e.Name == origin {
			pos = e.Pos
		}
	}
	if len(built) == 0 {
		ps.probs.addAt(pos, "build it in an earlier step of this stage (with PLUGIN_NO_PUSH), or push from a tarball with PLUGIN_SOURCE_TAR_PATH",
			"step %s: PLUGIN_SOURCE_IMAGE %s: no earlier step of stage %s builds an image", pd.Step.Identifier, src, st.Identifier)
		return
	}
	ps.probs.addAt(pos, "write PLUGIN_SOURCE_IMAGE: "+best+" (the build step's repo and tag)",
		"step %s: PLUGIN_SOURCE_IMAGE %s is not an image an earlier step of stage %s builds (they build %s)", pd.Step.Identifier, src, st.Identifier, strings.Join(names, ", "))
}

// shortRef is a reference as a user writes it: Docker Hub's registry and
// library/ left out.
func shortRef(t name.Tag) string {
	s := t.Name()
	s = strings.TrimPrefix(s, name.DefaultRegistry+"/")
	return strings.TrimPrefix(s, "library/")
}

// placeholder is a value like REPO_NAME: a document's placeholder.
var placeholder = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

var harnessPath = regexp.MustCompile(`(^|[=,;:])/harness(/|$|[,;])`)

func planStep(ps *parser, sc *Scope, s *Step, o PlanOptions) *Planned {
	pd := &Planned{Step: s, Kind: kindOfStep(s.Type)}
	if pd.Kind == "" || s.Spec == nil {
		return nil
	}
	st := s.Stage
	r := &specReader{ps: ps, sc: sc, path: "step " + s.Identifier + ".spec"}
	// The run's identity, as the runner sends it to every step, last: a
	// stage's or step's own variables do not change it. The state a step
	// makes is stamped with it, and trusted only by its run
	// (internal/runid).
	var id []kv
	if o.ExecutionID != "" {
		id = append(id, kv{"HARNESS_EXECUTION_ID", o.ExecutionID, s.Pos})
	}
	if sc.Codebase.CommitSha != "" {
		id = append(id, kv{"DRONE_COMMIT_SHA", sc.Codebase.CommitSha, s.Pos})
	}
	switch pd.Kind {
	case "scan":
		pd.Scan = r.scanSpec(s)
		pd.Env = id
		return pd
	case "run":
		pd.Run = r.runSpec(s)
		pd.Env = id
		return pd
	}
	// What every plugin step gets from the runner: the build's
	// variables, then what the infrastructure adds.
	base := []kv{{"CI", "true", s.Pos}, {"DRONE", "true", s.Pos}, {"HARNESS", "true", s.Pos},
		{"DRONE_BUILD_NUMBER", strconv.Itoa(sc.Seq), s.Pos},
		{"DRONE_STAGE_NAME", st.Identifier, s.Pos}, {"DRONE_STEP_NAME", s.Identifier, s.Pos},
		{"HARNESS_PIPELINE_ID", sc.Pipeline.Identifier, s.Pos}, {"HARNESS_STAGE_ID", st.Identifier, s.Pos}, {"HARNESS_STEP_ID", s.Identifier, s.Pos},
		{"DRONE_WORKSPACE", "/harness", s.Pos}}
	if sc.Codebase.CommitSha != "" {
		base = append(base, kv{"DRONE_COMMIT", sc.Codebase.CommitSha, s.Pos})
	}
	if sc.Codebase.Branch != "" {
		base = append(base, kv{"DRONE_COMMIT_BRANCH", sc.Codebase.Branch, s.Pos}, kv{"DRONE_BRANCH", sc.Codebase.Branch, s.Pos},
			kv{"DRONE_COMMIT_REF", "refs/heads/" + sc.Codebase.Branch, s.Pos})
	}
	pd.Tool = "buildkit"
	switch st.Infra {
	case Kubernetes:
		base = append(base, kv{"KUBERNETES_SERVICE_HOST", "10.96.0.1", s.Pos}, kv{"PLUGIN_ARTIFACT_FILE", "/addon/tmp/.plugin/artifact", s.Pos})
		pd.Tool = "kaniko"
		if o.BuildxOnK8 {
			base = append(base, kv{"CI_USE_BUILDX_ON_K8", "true", s.Pos})
			pd.Tool = "buildkit"
		}
	default:
		base = append(base, kv{"PLUGIN_DAEMON_OFF", "true", s.Pos})
	}
	var stageEnv []kv
	for _, v := range st.Variables {
		val := v.Value
		if v.node != nil {
			val = r.value(v.node, "stage "+st.Identifier+" variables."+v.Name)
		}
		stageEnv = append(stageEnv, kv{v.Name, val, v.Pos})
	}
	spec, bs := r.buildEnv(s, st.Infra)
	pd.BaseConnector = bs.BaseConnector
	var creds []kv
	if o.Connectors != nil {
		var err error
		if creds, err = o.Connectors.stepEnv(bs.Connector, s.Type, pd.BaseConnector, sc); err != nil {
			ps.probs.addAt(bs.ConnPos, "add it to the connectors file (docs/pipelines.md)", "step %s: %v", s.Identifier, err)
		}
	}
	// As a Harness runner merges them (../spec/settings.md §4.2): the
	// stage's variables, then what the step's spec gives, its
	// envVariables last, so the step wins a name both set, and nothing
	// else is dropped: a stage-level PLUGIN_NO_PUSH reaches a push-only
	// step as it does under Harness, and the step's settings decide
	// what the pair means exactly as the plugin decides it.
	pd.Env = slices.Concat(base, stageEnv, creds, spec, id)
	for i := range pd.Env {
		pd.Env[i].Value = strings.TrimSpace(pd.Env[i].Value)
	}
	if !r.exprFailed {
		checkSettings(ps, pd)
	}
	return pd
}

// checkSettings converts the step's environment into its typed settings
// (pd.Settings), as the step would, and its references: a bad value or a
// mode conflict is a problem now, not at run time.
func checkSettings(ps *parser, pd *Planned) {
	s, err := loadSettings(pd.Lookup, "/harness")
	if err == nil {
		pd.Refs, pd.Pushes, err = step.Refs(s)
	}
	if err == nil {
		pd.Settings = s
	}
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), settings.ErrInvalid.Error()+": ")
		// At the value the error names, when it names one.
		pos, hint := pd.Step.Pos, ""
		for i := len(pd.Env) - 1; i >= 0; i-- {
			if e := pd.Env[i]; strings.Contains(msg, e.Name) && e.Pos != pd.Step.Pos {
				pos = e.Pos
				if placeholder.MatchString(e.Value) {
					hint = "replace the placeholder " + e.Value + " with a real value"
				}
				if strings.Contains(e.Value, OutputPlaceholder) {
					// A setting from an earlier step's output: checked
					// with its value when the step is about to run.
					return
				}
				break
			}
		}
		if strings.Contains(msg, OutputPlaceholder) {
			return
		}
		ps.probs.addAt(pos, hint, "step %s: %s", pd.Step.Identifier, msg)
	}
}

// InWorkspace maps a runner path (/harness/...) into the workspace dir.
func InWorkspace(v, ws string) string {
	return harnessPath.ReplaceAllStringFunc(v, func(m string) string {
		i := strings.Index(m, "/harness")
		rest := m[i+len("/harness"):]
		return m[:i] + path.Clean(ws) + rest
	})
}

// localHosts are the registries a run with --local stands in for: every
// host a step pushes to (by its typed settings: a no-push step, whichever
// name said so, pushes nothing) or a scan step pulls from; sorted.
func (pl *Plan) localHosts() []string {
	hosts := map[string]bool{}
	for _, pd := range pl.Steps {
		if pd.Kind == "build" && pd.Pushes {
			for _, ref := range pd.Refs {
				hosts[ref.RegistryStr()] = true
			}
		}
		if pd.Kind == "scan" && pd.Scan.ImageType == "docker_v2" {
			if ref, err := name.ParseReference(pd.Scan.Image); err == nil {
				hosts[ref.Context().RegistryStr()] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(hosts))
}
