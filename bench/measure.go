package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cmdTimeout bounds every command a measurement runs: a hung tool fails
// the suite instead of stalling it.
const cmdTimeout = 10 * time.Minute

// sample is one measured run of one case.
type sample struct {
	Wall        float64            `json:"wall_s"`
	CPU         float64            `json:"cpu_s"`
	RSS         float64            `json:"rss_mib"`
	RegistryCPU float64            `json:"registry_cpu_s"`
	Extra       map[string]float64 `json:"extra,omitempty"`
}

// add sums a later command of the same case into s: times and CPU add up,
// the peak RSS is the larger one.
func (s *sample) add(o sample) {
	s.Wall += o.Wall
	s.CPU += o.CPU
	s.RSS = max(s.RSS, o.RSS)
}

// cmdError is a failed command: what ran and the end of what it said.
type cmdError struct {
	cmd  string
	err  error
	tail string
}

func (e *cmdError) Error() string {
	return fmt.Sprintf("command failed: %s\n  error: %v\n  its output ends with:\n%s", e.cmd, e.err, indent(e.tail, "    "))
}

func indent(s, pre string) string {
	if s == "" {
		return pre + "(nothing)"
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n")
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runCmd runs one command and measures it: wall time, the CPU time and
// peak RSS of the process and its children (from rusage). It returns the
// command's stderr (for progress parsing) and a *cmdError when it fails.
func runCmd(argv ...string) (sample, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	// The peak RSS comes from GNU time, which forks the command from its
	// own small process: Go starts a command sharing the bench's memory
	// until it execs, and Linux counts the bench's peak into the
	// command's (every command then seemed to use as much as the bench).
	rssFile, err := os.CreateTemp("", "bench-rss-")
	if err != nil {
		return sample{}, "", err
	}
	rssFile.Close()
	defer os.Remove(rssFile.Name())
	cmd := exec.CommandContext(ctx, timeBin, append([]string{"-q", "-f", "%M", "-o", rssFile.Name(), "--"}, argv...)...)
	cmd.WaitDelay = 10 * time.Second
	// A command that runs past cmdTimeout ends with everything it
	// started (GNU time's child included): its own process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	s := sample{Wall: time.Since(start).Seconds()}
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			s.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
	}
	if b, rerr := os.ReadFile(rssFile.Name()); rerr == nil {
		if kib, perr := strconv.ParseFloat(strings.TrimSpace(lastLine(string(b))), 64); perr == nil {
			s.RSS = kib / 1024
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (no end after %s)", err, cmdTimeout)
		}
		return s, stderr.String(), &cmdError{cmd: shellLine(argv), err: err, tail: tailLines(stdout.String()+stderr.String(), 15)}
	}
	return s, stderr.String(), nil
}

// sh runs a shell command line, measured like runCmd.
func sh(line string) (sample, string, error) { return runCmd("sh", "-c", line) }

// runParallel runs commands at once and measures them together: the wall
// time until the last ends, the sum of their CPU, the largest RSS.
func runParallel(cmds [][]string) (sample, error) {
	type out struct {
		s   sample
		err error
	}
	start := time.Now()
	ch := make(chan out, len(cmds))
	for _, c := range cmds {
		go func() {
			s, _, err := runCmd(c...)
			ch <- out{s, err}
		}()
	}
	var agg sample
	var errs []error
	for range cmds {
		o := <-ch
		agg.CPU += o.s.CPU
		agg.RSS = max(agg.RSS, o.s.RSS)
		errs = append(errs, o.err)
	}
	agg.Wall = time.Since(start).Seconds()
	return agg, errors.Join(errs...)
}

// must runs an unmeasured setup command; its failure is the suite's.
func must(argv ...string) error {
	_, _, err := runCmd(argv...)
	return err
}

func shellLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$&|;<>()*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// settle lets the disk and the Docker daemon finish the previous run's
// work, so that it does not bill the next case.
func settle() {
	exec.Command("sync").Run()
	time.Sleep(time.Second)
}

// --- registries ---

// registries are distribution processes started for one measurement.
type registries struct {
	hosts []string
	cmds  []*exec.Cmd
	dirs  []string
}

// startRegistries starts n distribution registries on free loopback ports,
// each with its own storage under dir, and waits (bounded) until each
// answers.
func startRegistries(dir string, n int) (*registries, error) {
	r := &registries{}
	for i := 0; i < n; i++ {
		rdir, err := os.MkdirTemp(dir, "reg-")
		if err != nil {
			r.stop()
			return nil, err
		}
		r.dirs = append(r.dirs, rdir)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			r.stop()
			return nil, err
		}
		host := l.Addr().String()
		l.Close()
		cfg := fmt.Sprintf("version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: %s}\n", filepath.Join(rdir, "data"), host)
		if err := os.WriteFile(filepath.Join(rdir, "config.yml"), []byte(cfg), 0o644); err != nil {
			r.stop()
			return nil, err
		}
		cmd := exec.Command("docker-registry", "serve", filepath.Join(rdir, "config.yml"))
		logf, err := os.Create(filepath.Join(rdir, "registry.log"))
		if err != nil {
			r.stop()
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		err = cmd.Start()
		logf.Close()
		if err != nil {
			r.stop()
			return nil, fmt.Errorf("start docker-registry: %w", err)
		}
		r.cmds = append(r.cmds, cmd)
		if err := waitHTTP("http://"+host+"/v2/", 10*time.Second); err != nil {
			log, _ := os.ReadFile(filepath.Join(rdir, "registry.log"))
			r.stop()
			return nil, fmt.Errorf("registry on %s: %w\n%s", host, err, log)
		}
		r.hosts = append(r.hosts, host)
	}
	return r, nil
}

func waitHTTP(url string, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer after %s: %w", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cpu sums the user and system CPU the registries have used so far.
func (r *registries) cpu() float64 {
	var pids []int
	for _, c := range r.cmds {
		pids = append(pids, c.Process.Pid)
	}
	return cpuOf(pids)
}

// stop ends the registries this started, by PID, and removes their storage.
func (r *registries) stop() {
	if r == nil {
		return
	}
	for _, c := range r.cmds {
		c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
	for _, d := range r.dirs {
		os.RemoveAll(d)
	}
	r.cmds, r.dirs = nil, nil
}

// cpuOf sums user+system CPU seconds of processes, from /proc/PID/stat.
func cpuOf(pids []int) float64 {
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
	return float64(ticks) / 100
}

// timeBin is GNU time (Debian's package time).
var timeBin = "/usr/bin/time"

// lastLine is the last non-empty line of s (GNU time writes a line about
// a command that failed before its figures).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
