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
	// Omitted counts the problems past MaxProblems, and those that
	// repeat one listed at the same place.
	Omitted int
	seen    map[Problem]bool
}

// MaxProblems is the most problems listed; the rest are counted. Each
// message is clipped to maxMessage bytes: a hostile file cannot make its
// report larger than itself many times over.
const (
	MaxProblems = 200
	maxMessage  = 2 << 10
)

// ErrInvalid marks a pipeline that cannot run as written.
var ErrInvalid = errors.New("invalid pipeline")

func (p *Problems) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s)", p.File, len(p.Items)+p.Omitted)
	for _, it := range p.Items {
		fmt.Fprintf(&b, "\n%s:%s: %s", p.File, it.Pos, it.Msg)
		if it.Hint != "" {
			fmt.Fprintf(&b, "\n    fix: %s", it.Hint)
		}
	}
	if p.Omitted > 0 {
		fmt.Fprintf(&b, "\n... and %d more (repeated, or past the first %d)", p.Omitted, MaxProblems)
	}
	return b.String()
}

func (p *Problems) Unwrap() error { return ErrInvalid }

func (p *Problems) add(n *yaml.Node, hint, format string, a ...any) {
	p.addAt(posOf(n), hint, format, a...)
}

func (p *Problems) addAt(pos Pos, hint, format string, a ...any) {
	if len(p.Items) >= MaxProblems {
		p.Omitted++
		return
	}
	msg := fmt.Sprintf(format, a...)
	if len(msg) > maxMessage {
		msg = msg[:maxMessage-3] + "..."
	}
	it := Problem{Pos: pos, Msg: msg, Hint: hint}
	if p.seen[it] {
		p.Omitted++
		return
	}
	if p.seen == nil {
		p.seen = map[Problem]bool{}
	}
	p.seen[it] = true
	p.Items = append(p.Items, it)
}

func (p *Problems) sort() {
	sort.SliceStable(p.Items, func(i, j int) bool {
		a, b := p.Items[i].Pos, p.Items[j].Pos
		return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
	})
}
