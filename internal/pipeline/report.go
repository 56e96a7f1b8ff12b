package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/hoist-build/hoist/internal/files"
)

// StepReport is what one step did.
type StepReport struct {
	Stage      string  `json:"stage"`
	Identifier string  `json:"identifier"`
	Name       string  `json:"name"`
	Type       string  `json:"type"`
	Status     string  `json:"status"` // Success, Failed, Skipped, Cancelled
	ExitCode   int     `json:"exitCode"`
	Seconds    float64 `json:"seconds"`
	Digest     string  `json:"digest,omitempty"`
	// Pushed are the references the step pushed, each with its digest.
	Pushed      []Pushed `json:"pushed,omitempty"`
	Tarballs    []string `json:"tarballs,omitempty"`
	ScanRecords []string `json:"scanRecords,omitempty"`
	Error       string   `json:"error,omitempty"`
	Notes       []string `json:"notes,omitempty"`
}

// Pushed is one reference a step pushed.
type Pushed struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

// RegistryReport is a local registry and what it holds at the end.
type RegistryReport struct {
	Host     string    `json:"host"`
	Addr     string    `json:"addr"`
	PID      int       `json:"pid,omitempty"` // with --keep
	Contents []Content `json:"contents"`
}

// Report is what a run did (hoist pipeline run --report).
type Report struct {
	File       string           `json:"file"`
	Pipeline   string           `json:"pipeline"`
	Sequence   int              `json:"sequenceId"`
	Status     string           `json:"status"`
	Seconds    float64          `json:"seconds"`
	Workspace  string           `json:"workspace,omitempty"`
	Ignored    []string         `json:"ignored,omitempty"`
	Steps      []*StepReport    `json:"steps"`
	Registries []RegistryReport `json:"registries,omitempty"`
}

// Write writes the report as JSON, whole (a temporary file, then
// renamed); in the checkout ws, no symbolic link that leads out of it is
// followed.
func (r *Report) Write(ws files.Workspace, path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return ws.WriteAtomic(path, append(b, '\n'))
}

// Summary is the run's table: one row per step.
func (r *Report) Summary(w io.Writer) {
	rows := [][]string{{"STAGE", "STEP", "STATUS", "SECONDS", "DIGEST", "DESTINATIONS"}}
	for _, s := range r.Steps {
		var dests []string
		for _, p := range s.Pushed {
			dests = append(dests, p.Ref)
		}
		for _, t := range s.Tarballs {
			dests = append(dests, "tarball "+t)
		}
		for _, t := range s.ScanRecords {
			dests = append(dests, "scan record "+t)
		}
		digest := s.Digest
		if digest == "" {
			digest = "-"
		}
		status := s.Status
		if s.Status == "Failed" {
			status = fmt.Sprintf("Failed (%d)", s.ExitCode)
		}
		rows = append(rows, []string{s.Stage, s.Identifier, status, fmt.Sprintf("%.1f", s.Seconds), digest, strings.Join(dests, ", ")})
	}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row[:len(row)-1] {
			width[i] = max(width[i], len(c))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, c := range row {
			if i == len(row)-1 {
				b.WriteString(c)
			} else {
				fmt.Fprintf(&b, "%-*s  ", width[i], c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	for _, reg := range r.Registries {
		keep := ""
		if reg.PID > 0 {
			keep = fmt.Sprintf(", running (pid %d; stop it with kill %d)", reg.PID, reg.PID)
		}
		fmt.Fprintf(w, "local registry %s at %s%s:\n", reg.Host, reg.Addr, keep)
		sort.Slice(reg.Contents, func(i, j int) bool { return reg.Contents[i].Ref < reg.Contents[j].Ref })
		for _, c := range reg.Contents {
			fmt.Fprintf(w, "  %s  %s\n", c.Ref, c.Digest)
		}
		if len(reg.Contents) == 0 {
			fmt.Fprintln(w, "  (empty)")
		}
	}
}
