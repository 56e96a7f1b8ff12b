package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// benchBuild measures build-only to a tarball of an image of random layers
// added from build-context files: hoist's direct export (one pass, from the
// build) with several compression settings against the peers' legacy path,
// docker buildx build --load into the daemon, then docker save. Then the
// rebuild from a registry cache on a fresh engine.
func benchBuild(dir string, mb int) {
	n := layersFor(mb)
	ctx := filepath.Join(dir, fmt.Sprintf("build-%dm", mb))
	check(os.MkdirAll(ctx, 0o755))
	var df strings.Builder
	df.WriteString("FROM scratch\n")
	for i := 0; i < n; i++ {
		p := filepath.Join(ctx, fmt.Sprintf("blob-%d.bin", i))
		if _, err := os.Stat(p); err != nil {
			writeRandomFile(p, int64(mb)<<20/int64(n), uint64(7000+mb*100+i))
		}
		fmt.Fprintf(&df, "COPY blob-%d.bin /data/blob-%d.bin\n", i, i)
	}
	check(os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df.String()), 0o644))

	engineDir := filepath.Join(dir, "engine")
	bk, err := filepath.Abs(*buildkitd)
	check(err)
	s := runCmd(nil, *hoistBin, "engine", "start", "--engine-dir", engineDir, "--buildkitd", bk)
	check(s.err)
	defer func() {
		runCmd(nil, *hoistBin, "engine", "stop", "--engine-dir", engineDir)
		os.RemoveAll(engineDir)
		os.RemoveAll(filepath.Join(dir, "store"))
	}()

	out := filepath.Join(dir, "out.tar")
	hoistBuild := func(extra ...string) func([]string, int) sample {
		return func(_ []string, _ int) sample {
			os.Remove(out)
			os.RemoveAll(filepath.Join(dir, "store"))
			args := append([]string{"build", "--no-push", "--no-cache", "--context", ctx, "--repo", "bench/built", "--tags", "1",
				"--engine-dir", engineDir, "--image-store", filepath.Join(dir, "store"), "--progress", "plain", "--daemon-off"}, extra...)
			return runCmd(nil, *hoistBin, args...)
		}
	}
	fmt.Printf("## build-only of a %d MiB image (%d COPY layers of random data), no cache\n\n", mb, n)
	fmt.Println("| how | wall s | legacy ÷ this | build steps s | engine export s | rest s (tarball, client) | tarball MiB |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	cases := []struct {
		name string
		run  func([]string, int) sample
	}{
		{"hoist → docker tarball, default (uncompressed layers)", hoistBuild("--tar-path", out)},
		{"hoist → docker tarball, gzip level 1", hoistBuild("--tar-path", out, "--compression", "gzip", "--compression-level", "1")},
		{"hoist → docker tarball, gzip (BuildKit's default level)", hoistBuild("--tar-path", out, "--compression", "gzip")},
		{"hoist → docker tarball, zstd", hoistBuild("--tar-path", out, "--compression", "zstd")},
		{"hoist → workspace image store only, default", hoistBuild()},
		{"legacy: buildx --load, then docker save", func(_ []string, _ int) sample {
			os.Remove(out)
			dockerForget("bench/built:1")
			return runCmd(nil, "sh", "-c", "docker buildx build -q --no-cache --load -t bench/built:1 "+ctx+" >/dev/null && docker save -o "+out+" bench/built:1")
		}},
	}
	type res struct {
		wall          []time.Duration
		build, export []time.Duration
		size          int64
		err           error
	}
	results := make([]res, len(cases))
	for run := 0; run < *runs; run++ {
		// Each run starts with another case, so that none always follows
		// the legacy path's heavy disk writes.
		for k := range cases {
			i := (k + run) % len(cases)
			c := cases[i]
			settle()
			s := c.run(nil, run)
			if s.err != nil {
				results[i].err = s.err
				fmt.Fprintf(os.Stderr, "%s: %v\n", c.name, s.err)
			}
			b, e := splitBuildExport(lastStderr)
			results[i].wall = append(results[i].wall, s.wall)
			results[i].build = append(results[i].build, b)
			results[i].export = append(results[i].export, e)
			if st, err := os.Stat(out); err == nil {
				results[i].size = st.Size()
			}
		}
	}
	legacy := medianD(results[len(results)-1].wall)
	for i, c := range cases {
		r := results[i]
		w := medianD(r.wall)
		legacyRow := strings.HasPrefix(c.name, "legacy")
		split := func(d []time.Duration) string {
			if legacyRow {
				return "n/a"
			}
			return fmt.Sprintf("%.2f", medianD(d).Seconds())
		}
		rest := "n/a"
		if !legacyRow {
			rest = fmt.Sprintf("%.2f", (w - medianD(r.build) - medianD(r.export)).Seconds())
		}
		size := fmt.Sprintf("%.0f", float64(r.size)/(1<<20))
		if strings.Contains(c.name, "store only") {
			size = "-"
		}
		status := ""
		if r.err != nil {
			status = " (failed)"
		}
		fmt.Printf("| %s%s | %.2f | %.2f | %s | %s | %s | %s |\n", c.name, status, w.Seconds(), legacy.Seconds()/w.Seconds(), split(r.build), split(r.export), rest, size)
	}
	fmt.Println()

	// Rebuild from a registry cache on a fresh engine.
	regs, stop := startRegistries(dir, 1)
	defer stop()
	cache := regs[0] + "/bench/cache:buildcache"
	warm := runCmd(nil, *hoistBin, "build", "--context", ctx, "--destination", regs[0]+"/bench/built:1", "--cache-to", "type=registry,ref="+cache+",mode=max",
		"--engine-dir", engineDir, "--progress", "quiet", "--daemon-off")
	if warm.err != nil {
		fmt.Fprintln(os.Stderr, "bench: warm build:", warm.err)
		return
	}
	var cold, cached []time.Duration
	for run := 0; run < *runs; run++ {
		for _, withCache := range []bool{false, true} {
			fresh := filepath.Join(dir, fmt.Sprintf("fresh-%d-%t", run, withCache))
			args := []string{"build", "--no-push", "--context", ctx, "--repo", "bench/built", "--engine-dir", fresh, "--buildkitd", bk,
				"--image-store", filepath.Join(dir, "store"), "--progress", "plain", "--daemon-off"}
			if withCache {
				args = append(args, "--cache-from", "type=registry,ref="+cache)
			}
			settle()
			s := runCmd(nil, *hoistBin, args...)
			check(s.err)
			if withCache {
				cached = append(cached, s.wall)
			} else {
				cold = append(cold, s.wall)
			}
			os.RemoveAll(fresh)
		}
	}
	fmt.Printf("| build-only on a fresh embedded engine (engine start included) | wall s |\n|---|---:|\n")
	fmt.Printf("| without a cache | %.2f |\n| from the registry cache (%s) | %.2f |\n\n", medianD(cold).Seconds(), "mode=max", medianD(cached).Seconds())
}

var (
	vertexHead = regexp.MustCompile(`^#(\d+) (.*)$`)
	vertexDone = regexp.MustCompile(`^#(\d+) (?:DONE|CACHED) ?([0-9.]*)s?$`)
)

// splitBuildExport sums BuildKit's plain progress: the exporter vertices
// ("exporting to ...") against the others.
func splitBuildExport(log string) (build, export time.Duration) {
	names := map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		if m := vertexDone.FindStringSubmatch(line); m != nil {
			secs, _ := strconv.ParseFloat(m[2], 64)
			d := time.Duration(secs * float64(time.Second))
			if strings.HasPrefix(names[m[1]], "exporting to") {
				export += d
			} else {
				build += d
			}
			continue
		}
		if m := vertexHead.FindStringSubmatch(line); m != nil {
			if _, ok := names[m[1]]; !ok {
				names[m[1]] = m[2]
			}
		}
	}
	return build, export
}

func medianD(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	c := slices.Clone(ds)
	slices.Sort(c)
	return c[len(c)/2]
}

// writeRandomFile writes size deterministic, incompressible bytes.
func writeRandomFile(p string, size int64, seed uint64) {
	tmp := p + ".tmp"
	writeRandomLayer(tmp, size, seed) // a tar; its bytes are as random
	check(os.Rename(tmp, p))
}
