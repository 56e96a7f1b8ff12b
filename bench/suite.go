package main

import (
	"fmt"
	"os"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// scenario is a set of cases measured side by side: one per tool, the
// tools rotated run by run so that none always follows another, each
// measurement against registries of its own.
type scenario struct {
	suite, id, title string
	size             int // image size in MiB; 0 when the scenario has none
	// sizeless scenarios are measured once, not at each image size.
	sizeless   bool
	registries int // fresh registries started for every measurement
	// warmup runs every case once, unrecorded, before the measured runs:
	// the first build on a builder transfers the whole context and fills
	// its state, for hoist's engine and the Docker daemon alike.
	warmup bool
	// prepare runs before every measurement, untimed, after the
	// registries start (the re-push scenario pushes the image once).
	prepare func(m *meas) error
	// after runs after every measurement, untimed: the build scenarios
	// empty their builders' caches, which would otherwise grow by the
	// image's size with every build.
	after func() error
	tools []tool
}

// tool is one case of a scenario: how one tool does the scenario's job.
type tool struct {
	id, title string
	// run does the job once, through m's timed commands.
	run func(m *meas) error
	// verify checks, untimed, that the run did what it says (the image is
	// in every registry, the tarball is whole, the cache was used).
	verify func(m *meas) error
}

func (s scenario) caseID(t tool) string { return s.suite + "/" + s.id + "/" + t.id }

// meas is one measurement in progress: the registries it has and the
// timed commands it ran.
type meas struct {
	regs   []string
	run    int
	s      sample
	cmds   []string
	stderr string // of the last timed command
}

// exec runs a timed command.
func (m *meas) exec(argv ...string) error {
	s, stderr, err := runCmd(argv...)
	m.record(s, shellLine(argv))
	m.stderr = stderr
	return err
}

// shell runs a timed shell command line.
func (m *meas) shell(line string) error {
	s, stderr, err := sh(line)
	m.record(s, line)
	m.stderr = stderr
	return err
}

// parallel runs timed commands at once.
func (m *meas) parallel(cmds [][]string) error {
	s, err := runParallel(cmds)
	var lines []string
	for _, c := range cmds {
		lines = append(lines, shellLine(c))
	}
	m.record(s, strings.Join(lines, " & ")+" & wait")
	return err
}

func (m *meas) record(s sample, line string) {
	m.s.add(s)
	m.cmds = append(m.cmds, line)
}

func (m *meas) extra(name string, v float64) {
	if m.s.Extra == nil {
		m.s.Extra = map[string]float64{}
	}
	m.s.Extra[name] = v
}

// command is the timed command lines, with the registries' addresses
// written as $REG1, $REG2, ... so they read the same in every run.
func (m *meas) command() string {
	out := strings.Join(m.cmds, "\n")
	for i, h := range m.regs {
		out = strings.ReplaceAll(out, h, fmt.Sprintf("$REG%d", i+1))
	}
	return out
}

// bench holds one benchmark run.
type bench struct {
	dir  string
	runs int
	// want says whether a case is measured in this run.
	want func(id string) bool
	res  *Results
	// settle runs before every measurement (tests make it a no-op).
	settle func()
	// cleanups undo what the suites set up, last first, also when a
	// measurement fails or the run is interrupted.
	mu       sync.Mutex
	cleanups []func()
}

// atEnd registers f to run when the benchmark ends.
func (b *bench) atEnd(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanups = append(b.cleanups, f)
}

func (b *bench) cleanup() {
	b.mu.Lock()
	fs := b.cleanups
	b.cleanups = nil
	b.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// wanted reports whether any case of the scenarios is measured.
func (b *bench) wanted(scs []scenario) bool {
	for _, sc := range scs {
		for _, t := range sc.tools {
			if b.want(sc.caseID(t)) {
				return true
			}
		}
	}
	return false
}

// measure runs every wanted case of the scenario b.runs times and records
// the runs and medians. The first failure ends it with the case, the run
// and the failing command; nothing of the scenario is recorded then.
func (b *bench) measure(sc scenario) error {
	var tools []tool
	for _, t := range sc.tools {
		if b.want(sc.caseID(t)) {
			tools = append(tools, t)
		}
	}
	if len(tools) == 0 {
		return nil
	}
	fmt.Fprintf(os.Stderr, "bench: %s (%d MiB): %d case(s) × %d run(s)\n", sc.title, sc.size, len(tools), b.runs)
	runs := make([][]sample, len(tools))
	cmds := make([]string, len(tools))
	if sc.warmup {
		for _, t := range tools {
			if _, err := b.measureOnce(sc, t, -1); err != nil {
				return fmt.Errorf("case %s (%s, %s), warm-up run:\n%w", sc.caseID(t), sc.title, t.title, err)
			}
		}
	}
	for run := 0; run < b.runs; run++ {
		for k := range tools {
			i := (k + run) % len(tools)
			t := tools[i]
			m, err := b.measureOnce(sc, t, run)
			if err != nil {
				return fmt.Errorf("case %s (%s, %s), run %d of %d:\n%w", sc.caseID(t), sc.title, t.title, run+1, b.runs, err)
			}
			runs[i] = append(runs[i], m.s)
			cmds[i] = m.command()
			fmt.Fprintf(os.Stderr, "bench:   %-60s run %d: %.2f s\n", t.title, run+1, m.s.Wall)
		}
	}
	for i, t := range tools {
		b.res.Cases = append(b.res.Cases, CaseResult{
			ID: sc.caseID(t), SizeMiB: sc.size, Scenario: sc.title, Tool: t.title,
			Command: cmds[i], Runs: runs[i], Median: median(runs[i]),
		})
	}
	return nil
}

// measureEach measures the scenarios one after another.
func (b *bench) measureEach(scs []scenario) error {
	for _, sc := range scs {
		if err := b.measure(sc); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) measureOnce(sc scenario, t tool, run int) (*meas, error) {
	m := &meas{run: run}
	if sc.after != nil {
		defer func() {
			if err := sc.after(); err != nil {
				fmt.Fprintf(os.Stderr, "bench: cleaning up after %s: %v\n", sc.caseID(t), err)
			}
		}()
	}
	regs := &registries{}
	if sc.registries > 0 {
		var err error
		if regs, err = startRegistries(b.dir, sc.registries); err != nil {
			return nil, err
		}
		defer regs.stop()
		m.regs = regs.hosts
	}
	if sc.prepare != nil {
		if err := sc.prepare(m); err != nil {
			return nil, fmt.Errorf("preparing: %w", err)
		}
		m.s, m.cmds = sample{}, nil
	}
	if b.settle != nil {
		b.settle()
	}
	before := regs.cpu()
	if err := t.run(m); err != nil {
		return nil, err
	}
	m.s.RegistryCPU = regs.cpu() - before
	if t.verify != nil {
		if err := t.verify(m); err != nil {
			return nil, fmt.Errorf("the run ended without error, but did not do its job: %w\n  timed commands:\n%s", err, indent(m.command(), "    "))
		}
	}
	return m, nil
}

// catalogue lists every scenario of every suite, for checking case ids
// without measuring anything.
func catalogue() []scenario {
	b := &bench{}
	var all []scenario
	all = append(all, b.pushScenarios(&pushInputs{}, 0)...)
	all = append(all, b.buildScenarios("", "", "", 0)...)
	all = append(all, b.buildPushScenarios("", "", "", 0)...)
	all = append(all, b.kanikoScenarios("", "", 0)...)
	all = append(all, b.scanScenarios(&pushInputs{}, "", "", 0)...)
	all = append(all, b.pipelineScenarios("", "", 0)...)
	all = append(all, b.signScenarios(&pushInputs{}, &signKey{}, 0)...)
	all = append(all, b.promoteScenarios("", "", &signKey{}, 0)...)
	all = append(all, b.freshStepScenarios("")...)
	all = append(all, b.growthScenarios(nil)...)
	all = append(all, b.cacheScenarios("", "", v1.Hash{})...)
	all = append(all, b.pipelineOverheadScenarios(&pushInputs{}, "")...)
	return all
}
