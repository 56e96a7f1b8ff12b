package pipeline

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hoist-build/hoist/internal/settings"
)

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
			hint = "write " + clip(s)
		}
		ps.probs.add(n, hint, "%s %q is not an identifier: Harness takes a letter or _, then letters, digits or _, at most 128 characters", path, clip(v))
		// It names the step in every later message: kept short.
		return clip(v)
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
