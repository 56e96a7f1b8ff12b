package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

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
	if total == 0 {
		return 0, fmt.Errorf("timeout %q is zero: give a positive one, or leave the field out for none", clip(in))
	}
	return total, nil
}
