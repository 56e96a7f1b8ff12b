package pipeline

import (
	"fmt"
	"regexp"
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
}

// Expressions are the expressions hoist resolves, for docs and errors.
var Expressions = []string{
	"pipeline.sequenceId", "pipeline.name", "pipeline.identifier",
	"pipeline.variables.NAME", "stage.name", "stage.identifier", "stage.variables.NAME",
	"step.name", "step.identifier",
	"codebase.branch", "codebase.commitSha", "codebase.shortCommitSha",
	`secrets.getValue("NAME")`,
}

// exprError is an expression hoist cannot resolve, at its column.
type exprError struct {
	Col int // 0-based offset in the value
	Msg string
}

func (e *exprError) Error() string { return e.Msg }

// check reports whether every expression in v is one hoist knows, without
// resolving it (validate).
func (sc *Scope) check(v string) *exprError {
	for _, m := range exprRe.FindAllStringSubmatchIndex(v, -1) {
		inner := strings.TrimSpace(v[m[2]:m[3]])
		if _, err := sc.lookup(inner, false); err != nil {
			return &exprError{Col: m[0], Msg: err.Error()}
		}
	}
	if i := strings.Index(v, "<+"); i >= 0 && !exprRe.MatchString(v[i:]) {
		return &exprError{Col: i, Msg: fmt.Sprintf("unterminated expression %q: want <+...>", v[i:])}
	}
	return nil
}

// Expand resolves every expression in v.
func (sc *Scope) Expand(v string) (string, error) {
	if e := sc.check(v); e != nil {
		return "", e
	}
	var err error
	out := exprRe.ReplaceAllStringFunc(v, func(m string) string {
		inner := strings.TrimSpace(m[2 : len(m)-1])
		val, e := sc.lookup(inner, true)
		if e != nil && err == nil {
			err = e
		}
		return val
	})
	return out, err
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
			return sc.variable(sc.Pipeline.Variables, n, "pipeline", resolve)
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
			return sc.variable(sc.Stage.Variables, n, "stage "+sc.Stage.Identifier, resolve)
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
	return "", fmt.Errorf("unknown expression <+%s>: hoist resolves <+%s>", e, strings.Join(Expressions, ">, <+"))
}

func (sc *Scope) variable(vars []Var, n, where string, resolve bool) (string, error) {
	for _, v := range vars {
		if v.Name == n {
			if !resolve {
				return "", nil
			}
			// A variable's value may hold expressions of its own (not
			// itself).
			if strings.Contains(v.Value, "variables."+n) {
				return "", fmt.Errorf("variable %s refers to itself", n)
			}
			return sc.Expand(v.Value)
		}
	}
	var names []string
	for _, v := range vars {
		names = append(names, v.Name)
	}
	return "", fmt.Errorf("%s has no variable %q (it has: %s)", where, n, strings.Join(names, ", "))
}

// A condition is the documented subset of Harness's JEXL conditions:
// expressions, quoted strings, true and false, compared with == and !=,
// combined with &&, || and !, grouped with parentheses.
type cond interface {
	eval(sc *Scope) (string, error)
}

type (
	condLit  string
	condExpr string
	condNot  struct{ x cond }
	condBin  struct {
		op   string
		l, r cond
	}
)

func (c condLit) eval(*Scope) (string, error) { return string(c), nil }
func (c condExpr) eval(sc *Scope) (string, error) {
	return sc.lookup(string(c), true)
}
func (c condNot) eval(sc *Scope) (string, error) {
	v, err := c.x.eval(sc)
	return strconv.FormatBool(v != "true"), err
}
func (c condBin) eval(sc *Scope) (string, error) {
	l, err := c.l.eval(sc)
	if err != nil {
		return "", err
	}
	switch c.op {
	case "&&":
		if l != "true" {
			return "false", nil
		}
	case "||":
		if l == "true" {
			return "true", nil
		}
	}
	r, err := c.r.eval(sc)
	if err != nil {
		return "", err
	}
	switch c.op {
	case "==":
		return strconv.FormatBool(l == r), nil
	case "!=":
		return strconv.FormatBool(l != r), nil
	}
	return strconv.FormatBool(r == "true"), nil
}

// EvalCondition evaluates a when.condition.
func (sc *Scope) EvalCondition(s string) (bool, error) {
	c, err := parseCondition(s)
	if err != nil {
		return false, err
	}
	v, err := c.eval(sc)
	return v == "true", err
}

func parseCondition(s string) (cond, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	p := &condParser{toks: toks}
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, fmt.Errorf("condition %q: unexpected %q", s, p.toks[p.i].v)
	}
	return c, nil
}

type token struct{ kind, v string }

func tokenize(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case strings.HasPrefix(s[i:], "<+"):
			j := strings.IndexByte(s[i:], '>')
			if j < 0 {
				return nil, fmt.Errorf("condition %q: unterminated expression", s)
			}
			inner := strings.TrimSpace(s[i+2 : i+j])
			if strings.Contains(inner, "<+") {
				return nil, fmt.Errorf("condition %q: nested expressions are not supported", s)
			}
			out = append(out, token{"expr", inner})
			i += j + 1
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("condition %q: unterminated string", s)
			}
			out = append(out, token{"lit", s[i+1 : i+1+j]})
			i += j + 2
		case strings.HasPrefix(s[i:], "==") || strings.HasPrefix(s[i:], "!=") || strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			out = append(out, token{"op", s[i : i+2]})
			i += 2
		case c == '(' || c == ')' || c == '!':
			out = append(out, token{"op", string(c)})
			i++
		case strings.HasPrefix(s[i:], "true"):
			out = append(out, token{"lit", "true"})
			i += 4
		case strings.HasPrefix(s[i:], "false"):
			out = append(out, token{"lit", "false"})
			i += 5
		default:
			return nil, fmt.Errorf("condition %q: %q at offset %d is not in the supported subset (<+expr>, \"string\", true, false, ==, !=, &&, ||, !, parentheses)", s, s[i:], i)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty condition")
	}
	return out, nil
}

type condParser struct {
	toks []token
	i    int
}

func (p *condParser) peek(v string) bool {
	return p.i < len(p.toks) && p.toks[p.i].kind == "op" && p.toks[p.i].v == v
}

func (p *condParser) or() (cond, error) {
	l, err := p.and()
	for err == nil && p.peek("||") {
		p.i++
		var r cond
		r, err = p.and()
		l = condBin{"||", l, r}
	}
	return l, err
}

func (p *condParser) and() (cond, error) {
	l, err := p.cmp()
	for err == nil && p.peek("&&") {
		p.i++
		var r cond
		r, err = p.cmp()
		l = condBin{"&&", l, r}
	}
	return l, err
}

func (p *condParser) cmp() (cond, error) {
	l, err := p.unary()
	if err == nil && (p.peek("==") || p.peek("!=")) {
		op := p.toks[p.i].v
		p.i++
		var r cond
		r, err = p.unary()
		l = condBin{op, l, r}
	}
	return l, err
}

func (p *condParser) unary() (cond, error) {
	if p.i >= len(p.toks) {
		return nil, fmt.Errorf("condition ends too early")
	}
	t := p.toks[p.i]
	p.i++
	switch {
	case t.kind == "op" && t.v == "!":
		x, err := p.unary()
		return condNot{x}, err
	case t.kind == "op" && t.v == "(":
		x, err := p.or()
		if err == nil && !p.peek(")") {
			return nil, fmt.Errorf("condition: missing )")
		}
		p.i++
		return x, err
	case t.kind == "lit":
		return condLit(t.v), nil
	case t.kind == "expr":
		return condExpr(t.v), nil
	}
	return nil, fmt.Errorf("condition: unexpected %q", t.v)
}
