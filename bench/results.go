package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/hoist-build/hoist/internal/files"
)

// Results is one benchmark run, as written to bench/out/results.json: where
// and when it ran, with what, every raw run of every case, the medians, and
// the targets judged on them.
type Results struct {
	Command string        `json:"command"`
	Date    time.Time     `json:"date"`
	Commit  string        `json:"commit"`
	Machine Machine       `json:"machine"`
	Tools   []ToolVersion `json:"tools"`
	Runs    int           `json:"runs"`
	Cases   []CaseResult  `json:"cases"`
	Targets []Verdict     `json:"targets,omitempty"`
	// Updates are the later runs whose cases replaced this run's (bench
	// merge), oldest first.
	Updates []Update `json:"updates,omitempty"`
}

// Update is a later run merged into a results file: what it ran, when,
// at which commit, and the suites whose cases it replaced.
type Update struct {
	Command string    `json:"command"`
	Date    time.Time `json:"date"`
	Commit  string    `json:"commit"`
	Runs    int       `json:"runs"`
	Suites  []string  `json:"suites"`
}

// Machine describes the machine a run measured on.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryGiB int    `json:"memory_gib"`
	OS        string `json:"os"`
	Kernel    string `json:"kernel"`
}

// ToolVersion is one tool of a run and the version it reported.
type ToolVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// CaseResult is every run of one case and their medians.
type CaseResult struct {
	ID       string   `json:"id"` // suite/scenario/tool
	SizeMiB  int      `json:"size_mib,omitempty"`
	Scenario string   `json:"scenario"` // the scenario's title
	Tool     string   `json:"tool"`     // the tool's title
	Command  string   `json:"command"`  // what was timed, as shell lines
	Runs     []sample `json:"runs"`
	Median   sample   `json:"median"`
}

// Find returns the case id at the image size, if it was measured.
func (r *Results) Find(id string, size int) (*CaseResult, bool) {
	for i := range r.Cases {
		c := &r.Cases[i]
		if c.ID == id && c.SizeMiB == size {
			return c, true
		}
	}
	return nil, false
}

// median takes the median of every metric on its own.
func median(ss []sample) sample {
	pick := func(f func(sample) float64) float64 {
		v := make([]float64, 0, len(ss))
		for _, s := range ss {
			v = append(v, f(s))
		}
		sort.Float64s(v)
		if len(v) == 0 {
			return 0
		}
		return v[len(v)/2]
	}
	out := sample{
		Wall:        pick(func(s sample) float64 { return s.Wall }),
		CPU:         pick(func(s sample) float64 { return s.CPU }),
		RSS:         pick(func(s sample) float64 { return s.RSS }),
		RegistryCPU: pick(func(s sample) float64 { return s.RegistryCPU }),
	}
	// An extra figure is the median of the runs that have it.
	for _, s := range ss {
		for k := range s.Extra {
			if _, done := out.Extra[k]; done {
				continue
			}
			var v []float64
			for _, s := range ss {
				if x, ok := s.Extra[k]; ok {
					v = append(v, x)
				}
			}
			sort.Float64s(v)
			if out.Extra == nil {
				out.Extra = map[string]float64{}
			}
			out.Extra[k] = v[len(v)/2]
		}
	}
	return out
}

// writeJSON writes v to path atomically: a reader never sees half a file.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	// Where the benchmark's flag says: a developer's tool, run on its own
	// checkout, with no workspace to confine it to.
	return files.Workspace("").WriteAtomic(path, append(b, '\n'))
}

func readResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}
