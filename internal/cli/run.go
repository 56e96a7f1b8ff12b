package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/step"
)

// runStep turns the settings into a step, runs it, prints its summary,
// and prints its digest on success. Everything it prints, the final error
// included, passes through the step's mask.
func runStep(ctx context.Context, s *settings.Settings, env Env, plugin bool) error {
	st, err := step.FromSettings(s, stepEnviron(env, plugin))
	return runPlanned(ctx, st, err, env)
}

// runScan is hoist scan: the digest scanned goes to stderr with the
// verdict; standard output carries the report, as Trivy's does.
func runScan(ctx context.Context, s *settings.Settings, env Env) error {
	st, err := step.ScanFromSettings(s, stepEnviron(env, false))
	return runPlanned(ctx, st, err, env)
}

func stepEnviron(env Env, plugin bool) step.Environ {
	tmp := env.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	return step.Environ{Lookup: env.Lookup, WorkDir: env.WorkDir, TempDir: tmp, Environ: env.Environ, Shield: env.Shield, Terminal: isTerminal(env.Stderr), Plugin: plugin, Version: Version}
}

// runPlanned runs a planned step (err is the planning's error, masked
// with the secrets the planning knew of).
func runPlanned(ctx context.Context, st step.Step, err error, env Env) error {
	if errors.Is(err, step.ErrSkip) {
		fmt.Fprintln(env.Stderr, strings.TrimPrefix(err.Error(), step.ErrSkip.Error()+": "))
		return nil
	}
	if err != nil {
		return mask.Error(st.Secrets, err)
	}
	set := st.Secrets.Clone()
	stdout, stderr := mask.NewWriter(env.Stdout, set), mask.NewWriter(env.Stderr, set)
	defer stdout.Flush()
	defer stderr.Flush()
	rt := step.Runtime{Stdout: stdout, Stderr: stderr, Mask: set}
	if f, ok := env.Stderr.(*os.File); ok && st.Progress == progress.TTY && isTerminal(f) {
		rt.Terminal = maskedTerminal{File: f, w: stderr}
	}
	res, err := step.Run(ctx, st, rt)
	if errors.Is(err, step.ErrSkip) {
		// Every destination holds its tag already (PLUGIN_SKIP_PUSH_IF_TAG_EXISTS).
		fmt.Fprintln(stderr, strings.TrimPrefix(err.Error(), step.ErrSkip.Error()+": "))
		return nil
	}
	if res.Pushed || res.Scan != nil {
		summary(stderr, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hoist: %s\n", indentJoined(err))
		return fmt.Errorf("%w: %w", errReported, err)
	}
	if st.Mode != step.ModeScanOnly && st.Mode != step.ModeVerify {
		fmt.Fprintln(stdout, res.Digest)
	}
	return nil
}

// maskedTerminal is the terminal BuildKit draws its display on: the file
// itself, which BuildKit needs to size and drive the console, except that
// every byte written goes through the step's mask (a RUN step's output is
// shown live, and may hold a secret).
type maskedTerminal struct {
	*os.File
	w io.Writer
}

func (t maskedTerminal) Write(p []byte) (int, error) { return t.w.Write(p) }

// summary prints the scan record and one line per destination.
func summary(w io.Writer, res *step.Result) {
	results := res.Destinations
	width := 0
	for _, r := range results {
		width = max(width, len(r.Ref))
	}
	fmt.Fprintln(w, "summary:")
	if rec := res.Scan; rec != nil {
		fmt.Fprintf(w, "  %-*s  %s  %s  %s\n", width, "scan", rec.Digest, rec.Verdict(), rec.Path)
	}
	for _, r := range results {
		digest := r.Digest
		if digest == "" {
			digest = "-"
		}
		status := "ok (" + r.Status + ")"
		if r.Err != nil {
			status = "FAILED: " + strings.ReplaceAll(r.Err.Error(), "\n", " ")
		}
		fmt.Fprintf(w, "  %-*s  %s  %9s  %6.2fs  %s\n", width, r.Ref, digest, progress.Bytes(r.Bytes), r.Duration.Seconds(), status)
	}
	signed := "signed"
	if len(res.Attested) > 0 {
		signed += ", attested: " + strings.Join(res.Attested, ", ")
	}
	for _, repo := range res.Signed {
		fmt.Fprintf(w, "  %-*s  %s  %s\n", width, repo, res.Digest, signed)
	}
}
