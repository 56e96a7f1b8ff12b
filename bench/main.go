// Command bench measures hoist side by side with its peers in one run
// (crane, skopeo, docker load + docker push, buildx --load + docker save,
// buildx's docker-container builder, the Kaniko executor), against real
// distribution registries on loopback, and judges the performance targets
// of bench/targets.json.
//
//	bench run    [-sizes 32,512] [-runs 5] [-suites push,build,buildpush,kaniko,scan,pipeline,sign,cache] [-out bench/out/results.json]
//	bench check  [-targets bench/targets.json] [-runs N] [-out bench/out/check.json]
//	bench report [-results docs/benchmarks.json] [-template bench/benchmarks.md.tmpl]
//	bench merge  -from FILE [-into docs/benchmarks.json]
//
// run and check write every raw run, the medians, the machine, the commit
// and every tool's version as JSON; report renders docs/benchmarks.md from
// such a file; merge replaces a results file's cases with a later run's
// of the same cases (a suite measured again after a change), and records
// that run beside the first. A measurement that fails stops the run with the failing
// command and its output, and exits 1: nothing is recorded for it. Run it
// through scripts/bench.sh, which builds the pinned tools and starts a
// Docker daemon.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The tools measured; flags of every subcommand that measures.
var (
	hoistBin      = "bin/hoist"
	craneBin      = "bin/crane"
	buildkitdBin  = "bin/buildkitd"
	buildctlBin   = "bin/buildctl"
	kanikoImage   = "hoist/kaniko:bench"
	buildkitImage = "hoist/buildkit:bench"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench run|check|report|merge|limit [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(os.Args[2:])
	case "check":
		err = cmdCheck(os.Args[2:])
	case "report":
		err = cmdReport(os.Args[2:])
	case "merge":
		err = cmdMerge(os.Args[2:])
	case "limit":
		err = cmdLimit(os.Args[2:])
	case "dind-entry":
		// The entrypoint of the fresh-step suite's peer image.
		err = cmdDindEntry(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: run, check, report, merge or limit", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: FAILED:", err)
		os.Exit(1)
	}
}

// measureFlags are the flags of the subcommands that measure.
type measureFlags struct {
	runs *int
	dir  *string
	out  *string
}

func addMeasureFlags(fs *flag.FlagSet, runs int, out string) measureFlags {
	fs.StringVar(&hoistBin, "hoist", hoistBin, "hoist binary")
	fs.StringVar(&craneBin, "crane", craneBin, "crane binary")
	fs.StringVar(&buildkitdBin, "buildkitd", buildkitdBin, "buildkitd binary for hoist's embedded engine")
	fs.StringVar(&trivyBin, "trivy", trivyBin, "Trivy binary (the pinned one)")
	fs.StringVar(&cosignBin, "cosign", cosignBin, "cosign binary (the pinned one)")
	fs.StringVar(&buildctlBin, "buildctl", buildctlBin, "buildctl binary, to empty the engine's cache between builds")
	fs.StringVar(&kanikoImage, "kaniko-image", kanikoImage, "hoist's Kaniko plugin image, in the Docker daemon")
	fs.StringVar(&buildkitImage, "buildkit-image", buildkitImage, "hoist's BuildKit plugin image, in the Docker daemon")
	return measureFlags{
		runs: fs.Int("runs", runs, "runs per case (the median is reported)"),
		dir:  fs.String("dir", "", "work directory (default: a new temporary directory, removed at the end)"),
		out:  fs.String("out", out, "results file (JSON)"),
	}
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	mf := addMeasureFlags(fs, 5, "bench/out/results.json")
	sizesFlag := fs.String("sizes", "32,512", "image sizes in MiB")
	suitesFlag := fs.String("suites", strings.Join(allSuites, ","), "suites: "+strings.Join(allSuites, ", "))
	targetsFile := fs.String("targets", "bench/targets.json", "targets judged at the end when every case they need was measured")
	only := fs.String("only", "", "measure only the cases whose ids start with one of these comma-separated prefixes (e.g. push/oci-1reg)")
	fs.Parse(args)
	var sizes []int
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-sizes: %q is not a size in MiB", s)
		}
		sizes = append(sizes, n)
	}
	suites := strings.Split(*suitesFlag, ",")
	for _, s := range suites {
		if !slices.Contains(allSuites, s) {
			return fmt.Errorf("-suites: unknown suite %q (%s)", s, strings.Join(allSuites, ", "))
		}
	}
	tg, err := loadTargets(*targetsFile)
	if err != nil {
		return err
	}
	want := func(id string) bool {
		if !slices.Contains(suites, strings.SplitN(id, "/", 2)[0]) {
			return false
		}
		if *only == "" {
			return true
		}
		for _, p := range strings.Split(*only, ",") {
			if strings.HasPrefix(id, p) {
				return true
			}
		}
		return false
	}
	res, err := measureAll(mf, sizes, want)
	if err != nil {
		return err
	}
	// Judge the targets when the run measured what they need.
	if vs, err := tg.judge(res); err == nil {
		res.Targets = vs
		printVerdicts(os.Stdout, vs)
	} else {
		fmt.Fprintf(os.Stderr, "bench: targets not judged: %v\n", err)
	}
	return writeJSON(*mf.out, res)
}

func cmdCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	targetsFile := fs.String("targets", "bench/targets.json", "the targets")
	mf := addMeasureFlags(fs, 0, "bench/out/check.json")
	fs.Parse(args)
	tg, err := loadTargets(*targetsFile)
	if err != nil {
		return err
	}
	if *mf.runs == 0 {
		*mf.runs = tg.Runs
	}
	need := tg.cases()
	res, err := measureAll(mf, []int{tg.SizeMiB}, func(id string) bool { return slices.Contains(need, id) })
	if err != nil {
		return err
	}
	vs, err := tg.judge(res)
	if err != nil {
		return err
	}
	res.Targets = vs
	if err := writeJSON(*mf.out, res); err != nil {
		return err
	}
	fmt.Printf("targets at %d MiB, medians of %d runs (%s):\n", tg.SizeMiB, *mf.runs, *mf.out)
	if !printVerdicts(os.Stdout, vs) {
		return errors.New("a target was missed (the FAIL lines above)")
	}
	return nil
}

// allSuites are the suites, in the order they run.
var allSuites = []string{"push", "build", "buildpush", "kaniko", "scan", "pipeline", "sign", "promote", "cache", "freshstep", "growth"}

// measureAll measures every wanted case: the push, build and kaniko
// suites at each size, then the cache suite. The results file is removed
// first, so a failed run never leaves an older one looking current.
func measureAll(mf measureFlags, sizes []int, want func(string) bool) (*Results, error) {
	if *mf.runs < 1 {
		return nil, fmt.Errorf("-runs must be at least 1")
	}
	if err := os.Remove(*mf.out); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	dir, removeDir := *mf.dir, func() {}
	if dir == "" {
		d, err := os.MkdirTemp("", "hoist-bench-")
		if err != nil {
			return nil, err
		}
		dir, removeDir = d, func() { os.RemoveAll(d) }
		defer removeDir()
	}
	command := os.Getenv("HOIST_BENCH_COMMAND")
	if command == "" {
		command = "go run ./bench " + strings.Join(os.Args[1:], " ")
	}
	res := &Results{Command: command, Date: time.Now().UTC().Truncate(time.Second), Commit: commit(), Machine: machine(), Runs: *mf.runs}
	tools, err := toolVersions()
	if err != nil {
		return nil, err
	}
	res.Tools = tools
	for _, t := range tools {
		fmt.Fprintf(os.Stderr, "bench: %-16s %s\n", t.Name, t.Version)
	}
	b := &bench{dir: dir, runs: *mf.runs, want: want, res: res, settle: settle}
	defer b.cleanup()
	// An interrupted run still stops the engines and registries it started.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		if _, ok := <-sig; ok {
			fmt.Fprintln(os.Stderr, "bench: interrupted; stopping what it started")
			b.cleanup()
			removeDir()
			os.Exit(130)
		}
	}()
	for _, size := range sizes {
		for _, suite := range []func(int) error{b.pushSuite, b.buildSuite, b.buildPushSuite, b.kanikoSuite, b.scanSuite, b.pipelineSuite, b.signSuite, b.promoteSuite} {
			if err := suite(size); err != nil {
				return nil, err
			}
		}
	}
	if err := b.cacheSuite(); err != nil {
		return nil, err
	}
	if err := b.pipelineOverheadSuite(); err != nil {
		return nil, err
	}
	if err := b.freshStepSuite(); err != nil {
		return nil, err
	}
	if err := b.growthSuite(); err != nil {
		return nil, err
	}
	if len(res.Cases) == 0 {
		return nil, errors.New("no case was measured")
	}
	return res, nil
}

// cmdMerge replaces the cases of -into that -from measured again, adds
// the cases -into lacks, records -from's run among the updates, judges
// the targets again, and writes -into.
func cmdMerge(args []string) error {
	fs := flag.NewFlagSet("merge", flag.ExitOnError)
	into := fs.String("into", "docs/benchmarks.json", "the results file to update")
	from := fs.String("from", "", "a later run's results (bench run -suites ...)")
	targetsFile := fs.String("targets", "bench/targets.json", "the targets, judged on the merged results")
	fs.Parse(args)
	if *from == "" {
		return errors.New("merge: -from names the later run's results file")
	}
	base, err := readResults(*into)
	if err != nil {
		return err
	}
	later, err := readResults(*from)
	if err != nil {
		return err
	}
	merged, err := merge(base, later)
	if err != nil {
		return err
	}
	tg, err := loadTargets(*targetsFile)
	if err != nil {
		return err
	}
	if vs, err := tg.judge(merged); err == nil {
		merged.Targets = vs
		printVerdicts(os.Stdout, vs)
	} else {
		return fmt.Errorf("merge: the targets cannot be judged on the merged results: %w", err)
	}
	return writeJSON(*into, merged)
}

// merge is base with later's cases in place of base's (by id and size)
// and later's run recorded among the updates. Both runs must be of the
// same machine.
func merge(base, later *Results) (*Results, error) {
	if base.Machine != later.Machine {
		return nil, fmt.Errorf("merge: the runs are of different machines (%+v, %+v)", base.Machine, later.Machine)
	}
	if len(later.Cases) == 0 {
		return nil, errors.New("merge: the later run measured no case")
	}
	out := *base
	out.Cases = append([]CaseResult(nil), base.Cases...)
	u := Update{Command: later.Command, Date: later.Date, Commit: later.Commit, Runs: later.Runs}
	for _, c := range later.Cases {
		suite := strings.SplitN(c.ID, "/", 2)[0]
		if !slices.Contains(u.Suites, suite) {
			u.Suites = append(u.Suites, suite)
		}
		i := slices.IndexFunc(out.Cases, func(b CaseResult) bool { return b.ID == c.ID && b.SizeMiB == c.SizeMiB })
		if i < 0 {
			out.Cases = append(out.Cases, c)
		} else {
			out.Cases[i] = c
		}
	}
	out.Updates = append(append([]Update(nil), base.Updates...), u)
	return &out, nil
}
