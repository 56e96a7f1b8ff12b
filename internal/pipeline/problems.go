package pipeline

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
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
