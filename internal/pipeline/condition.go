package pipeline

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

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
	return sc.resolve(string(c), nil)
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

// Limits of a condition (docs/pipelines.md, Limits): its parser and
// evaluator recurse, once per operator and per nesting.
const (
	MaxConditionSize  = 16 << 10
	MaxConditionDepth = 64
)

func parseCondition(s string) (cond, error) {
	if len(s) > MaxConditionSize {
		return nil, fmt.Errorf("the condition has %d bytes, more than %d KiB, hoist's limit (docs/pipelines.md, Limits)", len(s), MaxConditionSize>>10)
	}
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
	toks  []token
	i     int
	depth int // of ! and ( being parsed
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
	if t.kind == "op" && (t.v == "!" || t.v == "(") {
		if p.depth++; p.depth > MaxConditionDepth {
			return nil, fmt.Errorf("the condition nests ! and ( more than %d deep, hoist's limit (docs/pipelines.md, Limits)", MaxConditionDepth)
		}
		defer func() { p.depth-- }()
	}
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
