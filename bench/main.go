// Command bench measures hoist's push side by side with its peers (crane,
// skopeo, docker load + docker push) in one run, on deterministic images of
// incompressible random layers, against real distribution registries on
// loopback. It prints medians, MB/s, client CPU seconds, peak RSS and the
// registries' CPU. Run it through scripts/bench.sh, which builds the tools
// and starts a Docker daemon.
package main

import (
	"archive/tar"
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var (
	sizesFlag = flag.String("sizes", "32,512", "image sizes in MiB")
	runs      = flag.Int("runs", 5, "runs per measurement (the median is reported)")
	workDir   = flag.String("dir", "", "work directory (default: a new temp dir)")
	toolsFlag = flag.String("tools", "hoist,crane,skopeo,docker", "tools to compare")
	suites    = flag.String("suites", "push,build,kaniko", "benchmark suites: push, build, kaniko")
	kanikoImg = flag.String("kaniko-image", "hoist/kaniko:bench", "hoist's Kaniko image, loaded in the Docker daemon")
	buildkitd = flag.String("buildkitd", "bin/buildkitd", "buildkitd binary for hoist's embedded engine")
	hoistBin  = flag.String("hoist", "bin/hoist", "hoist binary")
	craneBin  = flag.String("crane", "bin/crane", "crane binary")
)

func main() {
	flag.Parse()
	dir := *workDir
	if dir == "" {
		var err error
		dir, err = os.MkdirTemp("", "hoist-bench-")
		check(err)
		defer os.RemoveAll(dir)
	}
	tools := map[string]bool{}
	for _, t := range strings.Split(*toolsFlag, ",") {
		tools[t] = true
	}
	fmt.Printf("# hoist benchmarks, %s, %d run(s) each, medians\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), *runs)
	for _, s := range strings.Split(*sizesFlag, ",") {
		mb, err := strconv.Atoi(s)
		check(err)
		if strings.Contains(*suites, "push") {
			benchSize(dir, mb, tools)
		}
		if strings.Contains(*suites, "build") {
			benchBuild(dir, mb)
		}
		if strings.Contains(*suites, "kaniko") {
			benchKaniko(dir, mb, *kanikoImg)
		}
	}
}

// inputs are one image in the three forms pushed.
type inputs struct {
	mb           int
	gz, save, oc string // gzip docker-archive, docker save (uncompressed), OCI layout
	tag          string
}

func benchSize(dir string, mb int, tools map[string]bool) {
	in := makeInputs(dir, mb)
	fmt.Printf("## %d MiB image (%d layers of random data)\n\n", mb, layersFor(mb))
	fmt.Println("| scenario | tool | wall s | MB/s | ratio to hoist | client CPU s | peak RSS MiB | registry CPU s |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|")

	one := func(scenario string, src, craneSrc, skopeoSrc string, docker bool) {
		var rows []row
		measure := map[string]func(regs []string, run int) sample{}
		if tools["hoist"] {
			measure["hoist"] = func(regs []string, run int) sample {
				return runCmd(nil, *hoistBin, "push", "--source-tar-path", src, "--destination", regs[0]+"/bench/app:1", "--progress", "quiet", "--daemon-off")
			}
		}
		if tools["crane"] && craneSrc != "" {
			measure["crane"] = func(regs []string, run int) sample {
				return runCmd(nil, *craneBin, "push", craneSrc, regs[0]+"/bench/app:1")
			}
		}
		if tools["skopeo"] && skopeoSrc != "" {
			measure["skopeo"] = func(regs []string, run int) sample {
				return runCmd(nil, "skopeo", "copy", "-q", "--dest-tls-verify=false", skopeoSrc, "docker://"+regs[0]+"/bench/app:1")
			}
		}
		if tools["docker"] && docker {
			measure["docker load+push"] = func(regs []string, run int) sample {
				dockerForget(in.tag)
				ref := regs[0] + "/bench/app:1"
				return runCmd(nil, "sh", "-c", "docker load -q -i "+src+" >/dev/null && docker tag "+in.tag+" "+ref+" && docker push -q "+ref+" >/dev/null")
			}
		}
		rows = compare(dir, 1, measure)
		printRows(scenario, mb, rows)
	}
	one("gzip docker-archive → 1 registry", in.gz, in.gz, "docker-archive:"+in.gz, true)
	one("uncompressed docker save → 1 registry", in.save, in.save, "docker-archive:"+in.save, true)
	one("OCI layout → 1 registry", in.oc, in.oc, "oci:"+in.oc+":1", false)

	// Four registries at once.
	four := map[string]func(regs []string, run int) sample{}
	if tools["hoist"] {
		four["hoist"] = func(regs []string, run int) sample { return hoistPush(in.gz, regs) }
		four["hoist (uncompressed save)"] = func(regs []string, run int) sample { return hoistPush(in.save, regs) }
	}
	if tools["crane"] {
		four["4 × crane in parallel"] = func(regs []string, run int) sample {
			var cmds [][]string
			for _, r := range regs {
				cmds = append(cmds, []string{*craneBin, "push", in.gz, r + "/bench/app:1"})
			}
			return runParallel(cmds)
		}
	}
	if tools["skopeo"] {
		four["4 × skopeo in parallel"] = func(regs []string, run int) sample {
			var cmds [][]string
			for _, r := range regs {
				cmds = append(cmds, []string{"skopeo", "copy", "-q", "--dest-tls-verify=false", "docker-archive:" + in.gz, "docker://" + r + "/bench/app:1"})
			}
			return runParallel(cmds)
		}
	}
	printRows("gzip docker-archive → 4 registries", mb, compare(dir, 4, four))

	// Re-push of an image already present: only manifests are checked.
	if tools["hoist"] {
		var one, all []sample
		for i := 0; i < *runs; i++ {
			regs, stop := startRegistries(dir, 4)
			hoistPush(in.gz, regs)
			one = append(one, hoistPush(in.gz, regs[:1]))
			all = append(all, hoistPush(in.gz, regs))
			stop()
		}
		printRows("re-push of a present image", mb, []row{
			{tool: "hoist, 1 destination", s: median(one)},
			{tool: "hoist, 4 destinations", s: median(all)},
		})
	}
	fmt.Println()
}

// hoistPush pushes src to app:1 on every registry in one hoist run.
func hoistPush(src string, regs []string) sample {
	args := []string{"push", "--source-tar-path", src, "--progress", "quiet", "--daemon-off"}
	for _, r := range regs {
		args = append(args, "--destination", r+"/bench/app:1")
	}
	return runCmd(nil, *hoistBin, args...)
}

// lastStderr is the stderr of the last runCmd, for progress parsing.
var lastStderr string

type sample struct {
	wall, cpu time.Duration
	rssKB     int64
	regCPU    time.Duration
	err       error
}

type row struct {
	tool string
	s    sample
}

// compare runs every tool once per run, interleaved, each against fresh
// registries, and returns the medians.
func compare(dir string, nreg int, measure map[string]func([]string, int) sample) []row {
	var names []string
	for n := range measure {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return order(names[i]) < order(names[j]) })
	all := map[string][]sample{}
	for run := 0; run < *runs; run++ {
		// Rotate the order run by run: no tool always follows another.
		for k := range names {
			n := names[(k+run)%len(names)]
			regs, pids, stop := startRegistriesPIDs(dir, nreg)
			settle()
			before := cpuOf(pids)
			s := measure[n](regs, run)
			s.regCPU = cpuOf(pids) - before
			stop()
			if s.err != nil {
				fmt.Fprintf(os.Stderr, "%s run %d: %v\n", n, run, s.err)
			}
			all[n] = append(all[n], s)
		}
	}
	var rows []row
	for _, n := range names {
		rows = append(rows, row{tool: n, s: median(all[n])})
	}
	return rows
}

func order(n string) int {
	if strings.HasPrefix(n, "hoist") {
		return 0
	}
	return 1
}

// settle lets the disk and the Docker daemon finish the previous run's
// work, so it does not bill the next tool.
func settle() {
	exec.Command("sync").Run()
	time.Sleep(time.Second)
}

func median(ss []sample) sample {
	pick := func(f func(sample) int64) int64 {
		v := make([]int64, 0, len(ss))
		for _, s := range ss {
			v = append(v, f(s))
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return v[len(v)/2]
	}
	out := sample{
		wall:   time.Duration(pick(func(s sample) int64 { return int64(s.wall) })),
		cpu:    time.Duration(pick(func(s sample) int64 { return int64(s.cpu) })),
		rssKB:  pick(func(s sample) int64 { return s.rssKB }),
		regCPU: time.Duration(pick(func(s sample) int64 { return int64(s.regCPU) })),
	}
	for _, s := range ss {
		if s.err != nil {
			out.err = s.err
		}
	}
	return out
}

func printRows(scenario string, mb int, rows []row) {
	// The ratio is to the row named "hoist" (else the first hoist row).
	var base time.Duration
	for _, r := range rows {
		if r.tool == "hoist" || strings.HasPrefix(r.tool, "hoist") && base == 0 {
			base = r.s.wall
		}
	}
	for _, r := range rows {
		ratio := "1.00"
		if base > 0 && !strings.HasPrefix(r.tool, "hoist") {
			ratio = fmt.Sprintf("%.2f", r.s.wall.Seconds()/base.Seconds())
		}
		status := ""
		if r.s.err != nil {
			status = " (failed)"
		}
		rss := fmt.Sprintf("%.0f", float64(r.s.rssKB)/1024)
		if strings.HasPrefix(r.tool, "docker") {
			rss = "n/a (daemon)"
		}
		fmt.Printf("| %s | %s%s | %.2f | %.0f | %s | %.2f | %s | %.2f |\n", scenario, r.tool, status, r.s.wall.Seconds(),
			float64(mb)*1.048576/r.s.wall.Seconds(), ratio, r.s.cpu.Seconds(), rss, r.s.regCPU.Seconds())
	}
}

func runCmd(env []string, bin string, args ...string) sample {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	defer func() { lastStderr = stderr.String() }()
	start := time.Now()
	err := cmd.Run()
	s := sample{wall: time.Since(start)}
	if err != nil {
		s.err = fmt.Errorf("%s: %v: %s", bin, err, lastLine(stderr.String()))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		s.rssKB = ru.Maxrss
	}
	return s
}

func runParallel(cmds [][]string) sample {
	start := time.Now()
	out := make(chan sample, len(cmds))
	for _, c := range cmds {
		go func() { out <- runCmd(nil, c[0], c[1:]...) }()
	}
	var agg sample
	for range cmds {
		s := <-out
		agg.cpu += s.cpu
		agg.rssKB = max(agg.rssKB, s.rssKB)
		if s.err != nil {
			agg.err = s.err
		}
	}
	agg.wall = time.Since(start)
	return agg
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// --- registries ---

func startRegistries(dir string, n int) ([]string, func()) {
	regs, _, stop := startRegistriesPIDs(dir, n)
	return regs, stop
}

func startRegistriesPIDs(dir string, n int) ([]string, []int, func()) {
	var hosts []string
	var pids []int
	var stops []func()
	for i := 0; i < n; i++ {
		rdir, err := os.MkdirTemp(dir, "reg-")
		check(err)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		check(err)
		host := l.Addr().String()
		l.Close()
		cfg := fmt.Sprintf("version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n", filepath.Join(rdir, "data"), host)
		check(os.WriteFile(filepath.Join(rdir, "config.yml"), []byte(cfg), 0o644))
		cmd := exec.Command("docker-registry", "serve", filepath.Join(rdir, "config.yml"))
		check(cmd.Start())
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
				resp.Body.Close()
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		hosts = append(hosts, host)
		pids = append(pids, cmd.Process.Pid)
		stops = append(stops, func() {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
			}
			os.RemoveAll(rdir)
		})
	}
	return hosts, pids, func() {
		for _, s := range stops {
			s()
		}
	}
}

// cpuOf sums user+system CPU of processes, from /proc/PID/stat.
func cpuOf(pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * time.Second / 100
}

// --- inputs ---

func layersFor(mb int) int {
	if mb >= 256 {
		return 8
	}
	return 4
}

func makeInputs(dir string, mb int) inputs {
	in := inputs{mb: mb, tag: fmt.Sprintf("hoist-bench/app:%dm", mb)}
	base := filepath.Join(dir, fmt.Sprintf("img-%dm", mb))
	check(os.MkdirAll(base, 0o755))
	in.gz = filepath.Join(base, "image-gzip.tar")
	in.save = filepath.Join(base, "docker-save.tar")
	in.oc = filepath.Join(base, "layout")
	if _, err := os.Stat(in.oc); err == nil {
		return in
	}
	n := layersFor(mb)
	img := empty.Image
	for i := 0; i < n; i++ {
		p := filepath.Join(base, fmt.Sprintf("layer-%d.tar", i))
		writeRandomLayer(p, int64(mb)<<20/int64(n), uint64(mb*1000+i))
		l, err := tarball.LayerFromFile(p)
		check(err)
		img, err = mutate.AppendLayers(img, l)
		check(err)
	}
	cfg, err := img.ConfigFile()
	check(err)
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Cmd = []string{"/bin/sh"}
	img, err = mutate.ConfigFile(img, cfg)
	check(err)
	tag, err := name.NewTag(in.tag)
	check(err)
	check(tarball.WriteToFile(in.gz, tag, img))
	// The same image as docker save writes it (uncompressed layers), and
	// as skopeo writes an OCI layout.
	must("docker", "load", "-q", "-i", in.gz)
	must("docker", "save", "-o", in.save, in.tag)
	dockerForget(in.tag)
	must("skopeo", "copy", "-q", "docker-archive:"+in.gz, "oci:"+in.oc+":1")
	for i := 0; i < n; i++ {
		os.Remove(filepath.Join(base, fmt.Sprintf("layer-%d.tar", i)))
	}
	return in
}

// writeRandomLayer writes a layer tar with one file of incompressible,
// deterministic bytes.
func writeRandomLayer(p string, size int64, seed uint64) {
	f, err := os.Create(p)
	check(err)
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	check(tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/%d.bin", seed), Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}))
	var key [32]byte
	for i := range key {
		key[i] = byte(seed >> (8 * (i % 8)))
	}
	r := rand.NewChaCha8(key)
	_, err = io.CopyN(tw, r, size)
	check(err)
	check(tw.Close())
	check(bw.Flush())
	check(f.Close())
}

func dockerForget(tag string) {
	exec.Command("docker", "rmi", "-f", tag).Run()
	exec.Command("sh", "-c", "docker images -q --filter reference='127.0.0.1:*/bench/app' | xargs -r docker rmi -f").Run()
}

func must(bin string, args ...string) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
		os.Exit(1)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
