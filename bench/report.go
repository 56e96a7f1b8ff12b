package main

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
)

func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	resultsFile := fs.String("results", "docs/benchmarks.json", "results of a full run (bench run)")
	tmplFile := fs.String("template", "bench/benchmarks.md.tmpl", "the document's template")
	targetsFile := fs.String("targets", "bench/targets.json", "the targets, judged on the results")
	checkFile := fs.String("check", "docs/bench-check.json", "results of the latest make bench-check, whose targets the document also shows (none when the file is absent)")
	out := fs.String("out", "", "write here instead of stdout")
	fs.Parse(args)
	res, err := readResults(*resultsFile)
	if err != nil {
		return err
	}
	tg, err := loadTargets(*targetsFile)
	if err != nil {
		return err
	}
	check, err := readCheck(*checkFile)
	if err != nil {
		return err
	}
	doc, pics, err := render(*tmplFile, res, check, tg)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = os.Stdout.Write(doc)
		return err
	}
	// The pictures the document shows sit beside it.
	for name, b := range pics {
		if err := os.WriteFile(filepath.Join(filepath.Dir(*out), name), b, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(*out, doc, 0o644)
}

// readCheck reads the results of a make bench-check, or nil when there is
// no such file.
func readCheck(path string) (*Results, error) {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil, nil
	}
	return readResults(path)
}

// render fills the document's template from one run's results, with the
// targets judged on them, and on check (the latest make bench-check, when
// not nil). Every figure in the document comes from the results: a case
// the template or a target names that the results lack is an error, never
// an empty cell.
func render(tmplFile string, res, check *Results, tg *Targets) ([]byte, map[string][]byte, error) {
	vs, err := tg.judge(res)
	if err != nil {
		return nil, nil, err
	}
	r := &reporter{res: res, verdicts: vs, pics: map[string][]byte{}}
	if check != nil {
		cvs, err := tg.judge(check)
		if err != nil {
			return nil, nil, fmt.Errorf("the bench-check results: %w", err)
		}
		r.check = &reporter{res: check, verdicts: cvs, pics: r.pics}
	}
	t, err := template.New("doc").Funcs(template.FuncMap{
		"table":         r.table,
		"targets":       r.targets,
		"check":         r.checkSection,
		"tools":         r.tools,
		"machine":       r.machine,
		"wall":          r.wall,
		"ratio":         r.ratio,
		"ratio_cpu":     r.ratioCPU,
		"verdict":       r.verdict,
		"measured":      r.measured,
		"join":          strings.Join,
		"chart":         r.chart,
		"has":           r.has,
		"growth_fanout": func() int { return growthFanoutMiB },
		"growth_tags":   func() int { return growthTagsMiB },
		"per_tag":       r.perTag,
	}).ParseFiles(tmplFile)
	if err != nil {
		return nil, nil, err
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmplFileName(tmplFile), res); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), r.pics, nil
}

// has reports whether the results hold cases of suite at size: a
// section of a suite a run did not measure is left out, never filled
// with figures of another run.
func (r *reporter) has(suite string, size int) bool {
	for _, c := range r.res.Cases {
		if strings.HasPrefix(c.ID, suite+"/") && c.SizeMiB == size {
			return true
		}
	}
	return false
}

// chart draws a picture of the results into the file name beside the
// document, and is the Markdown that shows it: "targets" is every
// target's value against its bound, "check-targets" the same on the
// latest make bench-check.
func (r *reporter) chart(kind, name string) (string, error) {
	switch kind {
	case "targets":
		r.pics[name] = targetsChart("The targets, judged on the full run", r.verdicts)
	case "check-targets":
		if r.check == nil {
			return "", nil
		}
		r.pics[name] = targetsChart("The targets, judged on the latest make bench-check", r.check.verdicts)
	case "growth-size", "growth-registries", "growth-tags":
		pic, err := r.growthChart(kind)
		if err != nil {
			return "", err
		}
		r.pics[name] = pic
	default:
		return "", fmt.Errorf("chart %q: want targets, check-targets, growth-size, growth-registries or growth-tags", kind)
	}
	return fmt.Sprintf("![%s](%s)", kind, name), nil
}

func tmplFileName(p string) string {
	return p[strings.LastIndex(p, "/")+1:]
}

type reporter struct {
	res      *Results
	verdicts []Verdict
	// pics are the pictures drawn for the document, by file name.
	pics map[string][]byte
	// check is the latest make bench-check's, when there is one.
	check *reporter
}

func (r *reporter) find(id string, size int) (*CaseResult, error) {
	c, ok := r.res.Find(id, size)
	if !ok {
		return nil, fmt.Errorf("the results lack case %s at %d MiB", id, size)
	}
	return c, nil
}

// wall is a case's median wall time, in seconds.
func (r *reporter) wall(id string, size int) (string, error) {
	c, err := r.find(id, size)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%.2f s", c.Median.Wall), nil
}

// ratio is the median wall time of one case over another's.
func (r *reporter) ratio(a, b string, size int) (string, error) {
	ca, cb, err := r.pair(a, b, size)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%.2f×", ca.Median.Wall/cb.Median.Wall), nil
}

// ratioCPU is ratio on the client CPU time.
func (r *reporter) ratioCPU(a, b string, size int) (string, error) {
	ca, cb, err := r.pair(a, b, size)
	if err != nil {
		return "", err
	}
	if cb.Median.CPU <= 0 {
		return "", fmt.Errorf("case %s measured no CPU", b)
	}
	return fmt.Sprintf("%.2f×", ca.Median.CPU/cb.Median.CPU), nil
}

// pair finds two cases of one size.
func (r *reporter) pair(a, b string, size int) (*CaseResult, *CaseResult, error) {
	ca, err := r.find(a, size)
	if err != nil {
		return nil, nil, err
	}
	cb, err := r.find(b, size)
	return ca, cb, err
}

func (r *reporter) verdictOf(id string) (*Verdict, error) {
	for i := range r.verdicts {
		if r.verdicts[i].ID == id {
			return &r.verdicts[i], nil
		}
	}
	return nil, fmt.Errorf("the results judge no target %s", id)
}

// verdict is "met" or "missed" for a target.
func (r *reporter) verdict(id string) (string, error) {
	v, err := r.verdictOf(id)
	if err != nil {
		return "", err
	}
	if v.Pass {
		return "met", nil
	}
	return "missed", nil
}

// measured is a target's measured value.
func (r *reporter) measured(id string) (string, error) {
	v, err := r.verdictOf(id)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%.2f", v.Measured), nil
}

func (r *reporter) machine() string { return machineText(r.res.Machine) }

func machineText(m Machine) string {
	return fmt.Sprintf("%d cores (%s), %d GiB, %s, Linux %s", m.Cores, m.CPU, m.MemoryGiB, m.OS, m.Kernel)
}

func (r *reporter) tools() string {
	var b strings.Builder
	for _, t := range r.res.Tools {
		fmt.Fprintf(&b, "- %s: `%s`\n", t.Name, t.Version)
	}
	return strings.TrimRight(b.String(), "\n")
}

func (r *reporter) targets() string {
	var b strings.Builder
	b.WriteString("| target | issue | computed as | measured | run by run | bound | |\n|---|---:|---|---:|---:|---:|---|\n")
	for _, v := range r.verdicts {
		if v.Unmeasured {
			fmt.Fprintf(&b, "| %s | %d | not measured by this run | - | - | %s | pending: %s |\n", v.Text, v.Issue, v.Bound, v.Pending)
			continue
		}
		res := "met"
		switch {
		case !v.Pass && v.Pending != "":
			res = "missed, pending: " + v.Pending
		case !v.Pass:
			res = "**missed**"
		}
		if v.Noise {
			res += " (inside the noise: some runs pass, some miss)"
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %.2f | %s | %s | %s |\n", v.Text, v.Issue, v.Expr, v.Measured, strings.Trim(v.spread(), "[]"), v.Bound, res)
	}
	return strings.TrimRight(b.String(), "\n")
}

// checkSection is the targets judged on the latest make bench-check: a
// shorter run, on a later commit than the full run's where the code has
// changed since (the two may be on different machines of one kind).
func (r *reporter) checkSection() (string, error) {
	if r.check == nil {
		return "", nil
	}
	c := r.check.res
	var b strings.Builder
	fmt.Fprintf(&b, "## The latest `make bench-check`\n\n")
	fmt.Fprintf(&b, "`%s` on %s (commit `%s`, %d runs per case at 512 MiB, medians), on %s;\n", c.Command, c.Date.Format("2006-01-02 15:04 UTC"), c.Commit, c.Runs, machineText(c.Machine))
	b.WriteString("recorded in [bench-check.json](bench-check.json). The same targets, judged on it:\n\n")
	pic, err := r.chart("check-targets", "bench-check-targets.svg")
	if err != nil {
		return "", err
	}
	b.WriteString(pic + "\n\n")
	b.WriteString(r.check.targets())
	return b.String(), nil
}

// table renders the cases of one suite at one size (0 for a suite without
// sizes), scenario by scenario in the order measured, with the columns
// that suite's figures need.
func (r *reporter) table(suite string, size int) (string, error) {
	var cases []*CaseResult
	for i := range r.res.Cases {
		c := &r.res.Cases[i]
		if strings.HasPrefix(c.ID, suite+"/") && c.SizeMiB == size {
			cases = append(cases, c)
		}
	}
	if len(cases) == 0 {
		return "", fmt.Errorf("the results have no %s cases at %d MiB", suite, size)
	}
	// over is a case's median wall time over that of another tool of its
	// scenario (the first of tools measured), or the other's over the
	// case's when inverse; "-" when the scenario has none of them.
	over := func(c *CaseResult, inverse bool, tools ...string) string {
		for _, tool := range tools {
			if o, ok := r.res.Find(c.ID[:strings.LastIndex(c.ID, "/")+1]+tool, size); ok {
				if inverse {
					return fmt.Sprintf("%.2f", o.Median.Wall/c.Median.Wall)
				}
				return fmt.Sprintf("%.2f", c.Median.Wall/o.Median.Wall)
			}
		}
		return "-"
	}
	var b strings.Builder
	switch suite {
	case "push":
		b.WriteString("| scenario | tool | wall s | MB/s | ÷ hoist | client CPU s | peak RSS MiB | registry CPU s |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range cases {
			ratio := over(c, false, "hoist", "hoist-1")
			rss := fmt.Sprintf("%.0f", c.Median.RSS)
			if strings.HasSuffix(c.ID, "/docker") {
				rss = "n/a (daemon)"
			}
			fmt.Fprintf(&b, "| %s | %s | %.2f | %.0f | %s | %.2f | %s | %.2f |\n", c.Scenario, c.Tool, c.Median.Wall,
				float64(size)*1.048576/c.Median.Wall, ratio, c.Median.CPU, rss, c.Median.RegistryCPU)
		}
	case "build":
		b.WriteString("| scenario | how | wall s | legacy ÷ this | build steps s | engine export s | rest s | client CPU s |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range cases {
			ratio := over(c, true, "legacy")
			bs, es, rest := "n/a", "n/a", "n/a"
			if build, ok := c.Median.Extra["build_s"]; ok {
				export := c.Median.Extra["export_s"]
				bs, es, rest = fmt.Sprintf("%.2f", build), fmt.Sprintf("%.2f", export), fmt.Sprintf("%.2f", c.Median.Wall-build-export)
			}
			fmt.Fprintf(&b, "| %s | %s | %.2f | %s | %s | %s | %s | %.2f |\n", c.Scenario, c.Tool, c.Median.Wall, ratio, bs, es, rest, c.Median.CPU)
		}
	case "scan":
		b.WriteString("| scenario | how | wall s | ÷ baseline | client CPU s | peak RSS MiB |\n|---|---|---:|---:|---:|---:|\n")
		for _, c := range cases {
			fmt.Fprintf(&b, "| %s | %s | %.2f | %s | %.2f | %.0f |\n", c.Scenario, c.Tool, c.Median.Wall,
				over(c, false, "trivy", "first", "hoist-two", "legacy"), c.Median.CPU, c.Median.RSS)
		}
	case "pipeline":
		b.WriteString("| scenario | how | wall s | ÷ baseline | client CPU s | peak RSS MiB |\n|---|---|---:|---:|---:|---:|\n")
		for _, c := range cases {
			fmt.Fprintf(&b, "| %s | %s | %.2f | %s | %.2f | %.0f |\n", c.Scenario, c.Tool, c.Median.Wall,
				over(c, false, "once", "hand"), c.Median.CPU, c.Median.RSS)
		}
	case "buildpush":
		b.WriteString("| scenario | how | wall s | ÷ buildx | ÷ Kaniko executor | client CPU s | registry CPU s |\n|---|---|---:|---:|---:|---:|---:|\n")
		for _, c := range cases {
			fmt.Fprintf(&b, "| %s | %s | %.2f | %s | %s | %.2f | %.2f |\n", c.Scenario, c.Tool, c.Median.Wall,
				over(c, false, "buildx"), over(c, false, "executor"), c.Median.CPU, c.Median.RegistryCPU)
		}
	case "growth":
		b.WriteString("| scenario | how | wall s | s per GiB | client CPU s | peak RSS MiB | registry CPU s |\n|---|---|---:|---:|---:|---:|---:|\n")
		for _, c := range cases {
			_, mb := growthOf(c.ID)
			fmt.Fprintf(&b, "| %s | %s | %.2f | %.2f | %.2f | %.0f | %.2f |\n", c.Scenario, c.Tool, c.Median.Wall,
				c.Median.Wall/(float64(mb)/1024), c.Median.CPU, c.Median.RSS, c.Median.RegistryCPU)
		}
	case "promote":
		b.WriteString("| scenario | how | wall s | ÷ peers | client CPU s | peak RSS MiB | registry CPU s |\n|---|---|---:|---:|---:|---:|---:|\n")
		for _, c := range cases {
			fmt.Fprintf(&b, "| %s | %s | %.2f | %s | %.2f | %.0f | %.2f |\n", c.Scenario, c.Tool, c.Median.Wall,
				over(c, false, "peers"), c.Median.CPU, c.Median.RSS, c.Median.RegistryCPU)
		}
	case "freshstep":
		b.WriteString("| how | wall s | ÷ dockerd and buildx | client CPU s |\n|---|---:|---:|---:|\n")
		for _, c := range cases {
			fmt.Fprintf(&b, "| %s | %.2f | %s | %.2f |\n", c.Tool, c.Median.Wall, over(c, false, "dind-buildx"), c.Median.CPU)
		}
	case "cache":
		b.WriteString("| how | wall s | ÷ hoist, no cache | ÷ buildx, same cache |\n|---|---:|---:|---:|\n")
		for _, c := range cases {
			fmt.Fprintf(&b, "| %s | %.2f | %s | %s |\n", c.Tool, c.Median.Wall, over(c, false, "hoist-cold"), over(c, false, "buildx-cached"))
		}
	default:
		b.WriteString("| how | wall s | client CPU s |\n|---|---:|---:|\n")
		for _, c := range cases {
			fmt.Fprintf(&b, "| %s | %.2f | %.2f |\n", c.Tool, c.Median.Wall, c.Median.CPU)
		}
	}
	// The run that measured the suite: the latest update that replaced
	// its cases, else the results' own.
	by := Update{Command: r.res.Command, Date: r.res.Date, Commit: r.res.Commit, Runs: r.res.Runs}
	for _, u := range r.res.Updates {
		if slices.Contains(u.Suites, suite) {
			by = u
		}
	}
	fmt.Fprintf(&b, "\n*Measured by `%s` (%s, commit `%s`, medians of %d runs); each case's timed commands and raw runs are in benchmarks.json under its id (`%s/...`).*",
		by.Command, by.Date.Format("2006-01-02"), by.Commit, by.Runs, suite)
	return b.String(), nil
}

// growthOf is what a growth case varies (its image's size in MiB, its
// registries or its tags: the number its scenario id ends with) and the
// size of its image in MiB.
func growthOf(id string) (n, mb int) {
	sc := strings.Split(id, "/")[1]
	fmt.Sscanf(sc[strings.LastIndex(sc, "-")+1:], "%d", &n)
	_, mb = growthImageSize(growthImageOf(sc))
	return n, mb
}

// growthChart draws the growth suite's curves: time per GiB over the
// image's size (hoist and crane, 1 and 50 layers), and time over the
// registries and over the tags.
func (r *reporter) growthChart(kind string) ([]byte, error) {
	points := func(prefix, tool string, y func(c *CaseResult, n, mb int) float64) [][2]float64 {
		var pts [][2]float64
		for i := range r.res.Cases {
			c := &r.res.Cases[i]
			if c.SizeMiB != 0 || !strings.HasPrefix(c.ID, "growth/"+prefix) || !strings.HasSuffix(c.ID, "/"+tool) {
				continue
			}
			n, mb := growthOf(c.ID)
			pts = append(pts, [2]float64{float64(n), y(c, n, mb)})
		}
		slices.SortFunc(pts, func(a, b [2]float64) int { return cmp.Compare(a[0], b[0]) })
		return pts
	}
	wall := func(c *CaseResult, _, _ int) float64 { return c.Median.Wall }
	var curves []curve
	var title, xl, yl string
	switch kind {
	case "growth-size":
		perGiB := func(c *CaseResult, _, mb int) float64 { return c.Median.Wall / (float64(mb) / 1024) }
		title, xl, yl = "Push time per GiB as the image grows (OCI layout → 1 registry)", "image size, MiB", "seconds per GiB"
		curves = []curve{
			{name: "hoist, 1 layer", color: "#1565c0", pts: points("size-1l-", "hoist", perGiB)},
			{name: "hoist, 50 layers", color: "#2e7d32", pts: points("size-50l-", "hoist", perGiB)},
			{name: "crane, 1 layer", color: "#1565c0", dashed: true, pts: points("size-1l-", "crane", perGiB)},
			{name: "crane, 50 layers", color: "#2e7d32", dashed: true, pts: points("size-50l-", "crane", perGiB)},
		}
	case "growth-registries":
		title, xl, yl = fmt.Sprintf("Push of %d MiB (50 layers) to more registries at once", growthFanoutMiB), "registries", "seconds"
		curves = []curve{
			{name: "hoist, wall", color: "#1565c0", pts: points("registries-", "hoist", wall)},
			{name: "registries' CPU", color: "#9e9e9e", dashed: true, pts: points("registries-", "hoist", func(c *CaseResult, _, _ int) float64 { return c.Median.RegistryCPU })},
		}
	default:
		title, xl, yl = fmt.Sprintf("Push of %d MiB under more tags", growthTagsMiB), "tags", "seconds"
		curves = []curve{{name: "hoist, wall", color: "#1565c0", pts: points("tags-", "hoist", wall)},
			{name: "the limit", color: "#9e9e9e", dashed: true, pts: points("tags-", "limit", wall)}}
	}
	var drawn []curve
	for _, c := range curves {
		if len(c.pts) > 0 {
			drawn = append(drawn, c)
		}
	}
	if len(drawn) == 0 {
		return nil, fmt.Errorf("chart %s: the results have no growth cases", kind)
	}
	return lineChart(title, xl, yl, drawn), nil
}

// perTag is what each tag beyond the first cost tool in the growth
// suite, in milliseconds: from its fewest tags to its most.
func (r *reporter) perTag(tool string) (string, error) {
	lo, hi := growthTags[0], growthTags[len(growthTags)-1]
	a, err := r.find(fmt.Sprintf("growth/tags-%d/%s", lo, tool), 0)
	if err != nil {
		return "", err
	}
	b, err := r.find(fmt.Sprintf("growth/tags-%d/%s", hi, tool), 0)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%.1f", 1000*(b.Median.Wall-a.Median.Wall)/float64(hi-lo)), nil
}
