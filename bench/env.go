package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// commit is the commit measured, with "-dirty" when the work tree has
// changes.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += "-dirty"
	}
	return c
}

// machine describes this machine from /proc and /etc/os-release.
func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), CPU: "unknown", OS: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.MemoryGiB = int((kb + 512*1024) >> 20)
			}
		}
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// toolVersions asks every tool the benchmarks use for its version. A tool
// that does not answer stops the run before anything is measured.
func toolVersions() ([]ToolVersion, error) {
	probes := []struct {
		name string
		argv []string
	}{
		{"hoist", []string{hoistBin, "version"}},
		{"crane", []string{craneBin, "version"}},
		{"trivy", []string{trivyBin, "--version"}},
		{"cosign", []string{"sh", "-c", cosignBin + " version 2>&1 | grep GitVersion"}},
		{"skopeo", []string{"skopeo", "--version"}},
		{"docker", []string{"docker", "version", "--format", "client {{.Client.Version}}, daemon {{.Server.Version}} (API {{.Server.APIVersion}})"}},
		{"buildx", []string{"docker", "buildx", "version"}},
		{"buildkitd", []string{buildkitdBin, "--version"}},
		{"registry", []string{"docker-registry", "--version"}},
		{"kaniko executor", []string{"docker", "run", "--rm", "--entrypoint", "/kaniko/executor", kanikoImage, "version"}},
		{"hoist buildkit image", []string{"docker", "image", "inspect", "--format", "{{.Id}}", buildkitImage}},
		{"go", []string{"go", "version"}},
	}
	var out []ToolVersion
	for _, p := range probes {
		b, err := exec.Command(p.argv[0], p.argv[1:]...).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("%s is not usable (%s): %v\n%s\nscripts/bench.sh installs and builds every tool; run the benchmarks through it (make bench)",
				p.name, shellLine(p.argv), err, tailLines(string(b), 5))
		}
		v := strings.Join(strings.Fields(tailLines(string(b), 1)), " ")
		out = append(out, ToolVersion{Name: p.name, Version: v})
	}
	return out, nil
}
