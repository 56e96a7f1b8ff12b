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
	"github.com/hoist-build/hoist/internal/publish"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/step"
)

// runStep turns the settings into a step, runs it, prints its summary,
// and prints its digest on success. Everything it prints, the final error
// included, passes through the step's mask.
func runStep(ctx context.Context, s *settings.Settings, env Env, plugin bool) error {
	tmp := env.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	st, err := step.FromSettings(s, step.Environ{Lookup: env.Lookup, WorkDir: env.WorkDir, TempDir: tmp, Environ: env.Environ, Terminal: isTerminal(env.Stderr), Plugin: plugin})
	if errors.Is(err, step.ErrSkip) {
		fmt.Fprintln(env.Stderr, strings.TrimPrefix(err.Error(), step.ErrSkip.Error()+": "))
		return nil
	}
	if err != nil {
		return err
	}
	stdout, stderr := mask.NewWriter(env.Stdout, st.Mask), mask.NewWriter(env.Stderr, st.Mask)
	defer stdout.Flush()
	defer stderr.Flush()
	st.Stdout, st.Stderr = stdout, stderr
	if f, ok := env.Stderr.(*os.File); ok && st.Progress == progress.TTY && isTerminal(f) {
		st.Terminal = maskedTerminal{File: f, w: stderr}
	}
	res, err := step.Run(ctx, st)
	if res.Pushed {
		summary(stderr, res.Destinations)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hoist: %s\n", indentJoined(err))
		return fmt.Errorf("%w: %w", errReported, err)
	}
	fmt.Fprintln(stdout, res.Digest)
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

// summary prints one line per destination.
func summary(w io.Writer, results []publish.Result) {
	width := 0
	for _, r := range results {
		width = max(width, len(r.Ref))
	}
	fmt.Fprintln(w, "summary:")
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
}
