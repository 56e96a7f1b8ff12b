package pipeline

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// exprRe finds the expressions in a value: <+...>.
var exprRe = regexp.MustCompile(`<\+([^<>]*)>`)

var secretRe = regexp.MustCompile(`^secrets\.getValue\(\s*"([^"]+)"\s*\)$|^secrets\.getValue\(\s*'([^']+)'\s*\)$`)

// Codebase is what the git checkout says.
type Codebase struct {
	Branch, CommitSha string
}

// Scope resolves expressions where they stand: in a pipeline, a stage, a
// step.
type Scope struct {
	Pipeline *Pipeline
	Stage    *Stage
	Step     *Step
	Seq      int
	Codebase Codebase
	// Secret looks a secret up (the secrets file, then the environment).
	Secret func(name string) (string, bool)
	// Secrets collects the secret values resolved, for the mask.
	Secrets *[]string

	// ctx stops an expansion when it is done (SIGTERM, Ctrl-C); nil
	// never does.
	ctx context.Context
	// budget is what the expressions of the scope's plan may still
	// produce (MaxExpansion): shared by the scopes of one plan, a
	// scope's own otherwise.
	budget *budget
	// memo holds the variables resolved in this scope.
	memo map[string]memo
	// index finds a variable of the pipeline or the stage by name.
	index map[string]map[string]int
	// outputs resolves another step's output variable (OutputRef); nil
	// where none can be had (variables, conditions): before the run it
	// gives OutputPlaceholder, during the run the step's value.
	outputs func(OutputRef) (string, error)
	// used collects the outputs the scope's expressions name.
	used *[]OutputRef
}

// Expressions are the expressions hoist resolves, for docs and errors.
var Expressions = []string{
	"pipeline.sequenceId", "pipeline.name", "pipeline.identifier",
	"pipeline.variables.NAME", "stage.name", "stage.identifier", "stage.variables.NAME",
	"step.name", "step.identifier",
	"codebase.branch", "codebase.commitSha", "codebase.shortCommitSha",
	`secrets.getValue("NAME")`,
}

// Limits of an expansion (docs/pipelines.md, "Limits"). A value's
// expressions may hold expressions of their own (a variable's value), so a
// few lines can ask for gigabytes ("v1 = <+v0><+v0>, v2 = <+v1><+v1>,
// ..."); the bounds are checked while expanding, before anything is
// allocated past them.
const (
	// MaxValueSize is the most one value may hold once its expressions
	// are resolved: far above any setting (Linux passes no environment
	// variable longer than 128 KiB to a program).
	MaxValueSize = 1 << 20
	// MaxExpansion is the most that all the expressions resolved for one
	// plan (hoist pipeline validate, or the start of a run) may produce
	// together, each expression counted at least once.
	MaxExpansion = 16 << 20
)

// ErrExpansion marks an expansion past a limit, or a variable that
// refers to itself through others.
var ErrExpansion = errors.New("expansion refused")

// errSpent is an expansion after the plan's budget ran out: its
// problem was reported once, where it ran out.
var errSpent = fmt.Errorf("%w: the pipeline's expressions already produced more than %d MiB", ErrExpansion, MaxExpansion>>20)

// exprError is an expression hoist cannot resolve, at its column.
type exprError struct {
	Col int // 0-based offset in the value
	Msg string
}

func (e *exprError) Error() string { return e.Msg }

// check reports whether every expression in v is one hoist knows, without
// resolving it (validate).
func (sc *Scope) check(v string) *exprError {
	starts := map[int]bool{}
	for _, m := range exprRe.FindAllStringSubmatchIndex(v, -1) {
		inner := strings.TrimSpace(v[m[2]:m[3]])
		if _, err := sc.lookup(inner, false); err != nil {
			return &exprError{Col: m[0], Msg: err.Error()}
		}
		starts[m[0]] = true
	}
	// Every <+ starts an expression: one that does not is unterminated
	// (the second of "<+a> <+b" too).
	for i := 0; ; {
		j := strings.Index(v[i:], "<+")
		if j < 0 {
			return nil
		}
		if i += j; !starts[i] {
			return &exprError{Col: i, Msg: fmt.Sprintf("unterminated expression %q: want <+...>", clip(v[i:]))}
		}
		i += 2
	}
}

// clip is s, or its start when it is long, for a message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// Expand resolves every expression in v. A variable's value is resolved
// once per scope; the result may hold no more than MaxValueSize, and the
// scope's plan no more than MaxExpansion in all; a variable that refers
// to itself, directly or through others, is an error that names each
// variable of the cycle where it is defined. The scope's context stops
// it.
func (sc *Scope) Expand(v string) (string, error) {
	if e := sc.check(v); e != nil {
		return "", e
	}
	return sc.expand(v, nil)
}

// context is the scope's context: its ctx, or one that never ends.
func (sc *Scope) context() context.Context {
	if sc.ctx == nil {
		return context.Background()
	}
	return sc.ctx
}

// varRef is a variable being resolved.
type varRef struct {
	key string // pipeline.variables.x, stage.variables.x
	pos Pos
}

func (r varRef) String() string {
	if r.pos.Line == 0 {
		return r.key
	}
	return r.key + " (" + r.pos.String() + ")"
}

// varIndex maps the names of vars (the pipeline's or the stage's, by
// scope) to their first position.
func (sc *Scope) varIndex(scope string, vars []Var) map[string]int {
	if m, ok := sc.index[scope]; ok {
		return m
	}
	m := make(map[string]int, len(vars))
	for i, v := range vars {
		if _, dup := m[v.Name]; !dup {
			m[v.Name] = i
		}
	}
	if sc.index == nil {
		sc.index = map[string]map[string]int{}
	}
	sc.index[scope] = m
	return m
}

// memo is a variable's resolved value (or why it has none).
type memo struct {
	val string
	err error
}

// budget is what the expressions of one plan may still produce.
type budget struct {
	left int
	// spent reports that the budget ran out, once: the values after it
	// fail for the same reason.
	spent bool
}

// expand resolves v's expressions; stack holds the variables being
// resolved, outermost first.
func (sc *Scope) expand(v string, stack []varRef) (string, error) {
	ctx := sc.context()
	if sc.budget == nil {
		sc.budget = &budget{left: MaxExpansion}
	}
	if sc.budget.spent {
		return "", errSpent
	}
	var b strings.Builder
	last := 0
	for _, m := range exprRe.FindAllStringSubmatchIndex(v, -1) {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		inner := strings.TrimSpace(v[m[2]:m[3]])
		val, err := sc.resolve(inner, stack)
		if err != nil {
			return "", err
		}
		if b.Len()+(m[0]-last)+len(val) > MaxValueSize {
			return "", tooLarge(stack, "with <+"+inner+"> ")
		}
		if sc.budget.left -= len(val) + 1; sc.budget.left < 0 {
			sc.budget.spent = true
			return "", fmt.Errorf("%w: the pipeline's expressions would produce more than %s in all, hoist's limit (docs/pipelines.md, Limits)", ErrExpansion, size(MaxExpansion))
		}
		b.WriteString(v[last:m[0]])
		b.WriteString(val)
		last = m[1]
	}
	if last == 0 {
		return v, nil
	}
	if b.Len()+len(v)-last > MaxValueSize {
		return "", tooLarge(stack, "")
	}
	b.WriteString(v[last:])
	return b.String(), nil
}

func size(n int) string { return fmt.Sprintf("%d MiB", n>>20) }

// tooLarge says that a value would hold more than MaxValueSize: the
// variable being resolved, if any.
func tooLarge(stack []varRef, with string) error {
	what := "the value"
	if len(stack) > 0 {
		what = stack[len(stack)-1].String()
	}
	return fmt.Errorf("%w: %s would hold more than %s %s(hoist's limit for one value: docs/pipelines.md, Limits)", ErrExpansion, what, size(MaxValueSize), with)
}

// resolve is an expression's value; a variable's is its value's
// expressions resolved, once per scope.
func (sc *Scope) resolve(e string, stack []varRef) (string, error) {
	scope, rest, _ := strings.Cut(e, ".")
	n, isVar := strings.CutPrefix(rest, "variables.")
	if !isVar || (scope != "pipeline" && scope != "stage") {
		return sc.lookup(e, true)
	}
	var vars []Var
	switch {
	case scope == "pipeline":
		vars = sc.Pipeline.Variables
	case sc.Stage != nil:
		vars = sc.Stage.Variables
	default:
		return sc.lookup(e, true) // its error
	}
	i, ok := sc.varIndex(scope, vars)[n]
	if !ok {
		return sc.lookup(e, true) // its error
	}
	ref := varRef{key: scope + ".variables." + n, pos: vars[i].Pos}
	if at := slices.IndexFunc(stack, func(r varRef) bool { return r.key == ref.key }); at >= 0 {
		cycle := slices.Clone(stack[at:])
		if len(cycle) == 1 {
			return "", fmt.Errorf("%w: %s refers to itself", ErrExpansion, ref)
		}
		// From the variable defined first, so that every message about
		// one cycle reads the same.
		first := 0
		for i, r := range cycle {
			if p := cycle[first].pos; r.pos.Line < p.Line || (r.pos.Line == p.Line && r.pos.Col < p.Col) {
				first = i
			}
		}
		cycle = append(slices.Clone(cycle[first:]), cycle[:first+1]...)
		var parts []string
		for _, r := range cycle {
			parts = append(parts, r.String())
		}
		return "", fmt.Errorf("%w: variables refer to each other in a cycle: %s", ErrExpansion, strings.Join(parts, " → "))
	}
	if m, ok := sc.memo[ref.key]; ok {
		return m.val, m.err
	}
	val, err := sc.expand(vars[i].Value, append(stack, ref))
	if err := sc.context().Err(); err != nil {
		return "", err
	}
	if sc.memo == nil {
		sc.memo = map[string]memo{}
	}
	sc.memo[ref.key] = memo{val, err}
	return val, err
}

func (sc *Scope) lookup(e string, resolve bool) (string, error) {
	if m := secretRe.FindStringSubmatch(e); m != nil {
		n := m[1] + m[2]
		if !resolve {
			return "", nil
		}
		if sc.Secret == nil {
			return "", fmt.Errorf("secret %q: no secrets file given (--secrets) and not in the environment", n)
		}
		v, ok := sc.Secret(n)
		if !ok {
			return "", fmt.Errorf("secret %q is neither in the secrets file (--secrets) nor in the environment", n)
		}
		if sc.Secrets != nil && v != "" {
			*sc.Secrets = append(*sc.Secrets, v)
		}
		return v, nil
	}
	if ref, ok, err := parseOutputRef(e); err != nil {
		return "", err
	} else if ok {
		return sc.output(ref, resolve)
	}
	scope, rest, _ := strings.Cut(e, ".")
	switch scope {
	case "pipeline":
		switch rest {
		case "sequenceId":
			return strconv.Itoa(sc.Seq), nil
		case "name":
			return sc.Pipeline.Name, nil
		case "identifier":
			return sc.Pipeline.Identifier, nil
		}
		if n, ok := strings.CutPrefix(rest, "variables."); ok {
			if err := variable(sc.Pipeline.Variables, n, "pipeline"); err != nil || !resolve {
				return "", err
			}
			return sc.resolve(e, nil)
		}
	case "stage":
		if sc.Stage == nil {
			return "", fmt.Errorf("<+%s> is used outside a stage", e)
		}
		switch rest {
		case "name":
			return sc.Stage.Name, nil
		case "identifier":
			return sc.Stage.Identifier, nil
		}
		if n, ok := strings.CutPrefix(rest, "variables."); ok {
			if err := variable(sc.Stage.Variables, n, "stage "+sc.Stage.Identifier); err != nil || !resolve {
				return "", err
			}
			return sc.resolve(e, nil)
		}
	case "step":
		if sc.Step == nil {
			return "", fmt.Errorf("<+%s> is used outside a step", e)
		}
		switch rest {
		case "name":
			return sc.Step.Name, nil
		case "identifier":
			return sc.Step.Identifier, nil
		}
	case "codebase":
		switch rest {
		case "branch":
			return sc.Codebase.Branch, nil
		case "commitSha":
			return sc.Codebase.CommitSha, nil
		case "shortCommitSha":
			return sc.Codebase.CommitSha[:min(7, len(sc.Codebase.CommitSha))], nil
		}
	}
	return "", fmt.Errorf("unknown expression <+%s>: hoist resolves <+%s>", clip(e), strings.Join(append(slices.Clone(Expressions), OutputForms...), ">, <+"))
}

// variable says whether vars has one named n (resolve finds it).
func variable(vars []Var, n, where string) error {
	if slices.ContainsFunc(vars, func(v Var) bool { return v.Name == n }) {
		return nil
	}
	var names []string
	for _, v := range vars {
		names = append(names, v.Name)
	}
	return fmt.Errorf("%s has no variable %q (it has: %s)", where, clip(n), clip(strings.Join(names, ", ")))
}
