package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hoist-build/hoist/internal/harness"
)

// trivyBin is the pinned Trivy scripts/setup.sh builds.
var trivyBin = "bin/trivy"

// trivyOffline are the flags every Trivy run here is given, hoist's and
// the baseline's alike: the database is in the cache, nothing is fetched.
var trivyOffline = []string{"--skip-db-update", "--skip-java-db-update", "--offline-scan", "--skip-version-check", "--disable-telemetry", "--quiet", "--no-progress"}

// scanScenarios compare hoist's scan gate with Trivy run directly on the
// same tarball and database; a rescan (Trivy's layer cache) with a first
// scan; the gated push with scan then push as two commands; and the
// mission's build → scan → push to two registries with hoist's three
// steps against the legacy chain (buildx --load, docker save, trivy,
// docker load, docker tag, docker push twice). Every first scan starts
// with Trivy's layer cache empty and its database in place.
func (b *bench) scanScenarios(in *pushInputs, ctxDir, engineDir string, size int) []scenario {
	cache := filepath.Join(b.dir, "trivy-cache")
	records := filepath.Join(b.dir, "scan-records")
	freshCache := func() error {
		if err := os.RemoveAll(records); err != nil {
			return err
		}
		return os.RemoveAll(filepath.Join(cache, "fanal"))
	}
	hoistScan := func(src string) []string {
		return []string{hoistBin, "scan", "--trivy", trivyBin, "--cache-dir", cache, "--scan-records", records, "--progress", "quiet", src}
	}
	trivyScan := func(src string) []string {
		return append([]string{trivyBin, "image", "--input", src, "--cache-dir", cache, "--exit-code", "1"}, trivyOffline...)
	}
	scanned := func(m *meas) error {
		if _, err := os.Stat(filepath.Join(cache, "fanal", "fanal.db")); err != nil {
			return fmt.Errorf("Trivy's layer cache is empty: %w", err)
		}
		return nil
	}
	// hoist's gate runs Trivy on its in-memory layer cache (the bytes it
	// reads are checked alongside, and no analysis of unchecked bytes is
	// kept): its record and Trivy's kept report show that it scanned.
	recorded := func(m *meas) error {
		all, _ := filepath.Glob(filepath.Join(records, "sha256", "*.json"))
		kept, _ := filepath.Glob(filepath.Join(records, "sha256", "*.trivy-*.json"))
		if len(all)-len(kept) != 1 || len(kept) != 1 {
			return fmt.Errorf("%d scan records and %d kept Trivy reports, want 1 and 1", len(all)-len(kept), len(kept))
		}
		return nil
	}
	first := func(argv func() []string) func(m *meas) error {
		return func(m *meas) error {
			if err := freshCache(); err != nil {
				return err
			}
			return m.exec(argv()...)
		}
	}
	const app = "/bench/app:1"
	hoistPush := func(m *meas, extra ...string) error {
		args := []string{hoistBin, "push", "--source-tar-path", in.gz, "--destination", m.regs[0] + app, "--progress", "quiet", "--daemon-off",
			"--compress-cache=", "--trivy", trivyBin, "--cache-dir", cache, "--scan-records", records}
		return m.exec(append(args, extra...)...)
	}
	pushed := func(n int) func(m *meas) error {
		return func(m *meas) error {
			if err := recorded(m); err != nil {
				return err
			}
			var refs []string
			for _, r := range m.regs[:n] {
				refs = append(refs, r+app)
			}
			return inRegistry(refs...)
		}
	}

	out := filepath.Join(b.dir, "scan-out.tar")
	store := filepath.Join(b.dir, "scan-store")
	freshWork := func() error {
		os.Remove(out)
		if err := os.RemoveAll(store); err != nil {
			return err
		}
		return freshCache()
	}
	legacyBuild := "docker buildx build -q --no-cache --load -t bench/built:1 " + ctxDir + " >/dev/null && docker save -o " + out + " bench/built:1"
	return []scenario{
		{suite: "scan", id: "tarball", title: "scan a gzip docker-archive, first scan", size: size, tools: []tool{
			{id: "hoist", title: "hoist scan image.tar", run: first(func() []string { return hoistScan(in.gz) }), verify: recorded},
			{id: "trivy", title: "trivy image --input image.tar", run: first(func() []string { return trivyScan(in.gz) }), verify: scanned},
		}},
		{suite: "scan", id: "rescan", title: "scan of an image scanned before", size: size, tools: []tool{
			{id: "first", title: "hoist scan, first", run: first(func() []string { return hoistScan(in.gz) }), verify: recorded},
			{id: "second", title: "hoist scan, again (Trivy's kept report reused)", verify: recorded, run: func(m *meas) error {
				if err := freshCache(); err != nil {
					return err
				}
				if err := must(hoistScan(in.gz)...); err != nil {
					return err
				}
				return m.exec(hoistScan(in.gz)...)
			}},
			{id: "second-policy", title: "hoist scan, again with another --severity (Trivy runs again)", verify: recorded, run: func(m *meas) error {
				if err := freshCache(); err != nil {
					return err
				}
				if err := must(hoistScan(in.gz)...); err != nil {
					return err
				}
				return m.exec(append(hoistScan(in.gz)[:len(hoistScan(in.gz))-1], "--severity", "HIGH,CRITICAL", in.gz)...)
			}},
		}},
		{suite: "scan", id: "gated", title: "scan, then push to 1 registry", size: size, registries: 1, tools: []tool{
			{id: "hoist-gated", title: "hoist push --scan (one command)", verify: pushed(1), run: func(m *meas) error {
				if err := freshCache(); err != nil {
					return err
				}
				return hoistPush(m, "--scan")
			}},
			{id: "hoist-two", title: "hoist scan, then hoist push --require-scan", verify: pushed(1), run: func(m *meas) error {
				if err := freshCache(); err != nil {
					return err
				}
				if err := m.exec(hoistScan(in.gz)...); err != nil {
					return err
				}
				return hoistPush(m, "--require-scan")
			}},
		}},
		{suite: "scan", id: "workflow", title: "build → tarball → scan → push to 2 registries, no cache", size: size, registries: 2, warmup: true, after: pruneBuilders(engineDir), tools: []tool{
			{id: "hoist", title: "hoist build --no-push → hoist scan → hoist push --require-scan", verify: pushed(2), run: func(m *meas) error {
				if err := freshWork(); err != nil {
					return err
				}
				if err := m.exec(hoistBin, "build", "--no-push", "--no-cache", "--context", ctxDir, "--repo", "bench/built", "--tags", "1",
					"--engine-dir", engineDir, "--image-store", store, "--progress", "quiet", "--daemon-off", "--tar-path", out); err != nil {
					return err
				}
				if err := m.exec(hoistScan(out)...); err != nil {
					return err
				}
				return m.exec(hoistBin, "push", "--require-scan", "--scan-records", records, "--source-tar-path", out, "--image-store", store,
					"--destination", m.regs[0]+app, "--destination", m.regs[1]+app, "--progress", "quiet", "--daemon-off", "--compress-cache=")
			}},
			{id: "legacy", title: "legacy: buildx --load, docker save → trivy → docker load, tag, push ×2", verify: func(m *meas) error {
				if err := scanned(m); err != nil {
					return err
				}
				return inRegistry(m.regs[0]+app, m.regs[1]+app)
			}, run: func(m *meas) error {
				if err := freshWork(); err != nil {
					return err
				}
				if err := dockerForget("bench/built:1"); err != nil {
					return err
				}
				if err := m.shell(legacyBuild); err != nil {
					return err
				}
				if err := m.exec(trivyScan(out)...); err != nil {
					return err
				}
				// The push step is another step: its daemon does not hold
				// the image the build step made.
				if err := dockerForget("bench/built:1"); err != nil {
					return err
				}
				a, c := m.regs[0]+app, m.regs[1]+app
				return m.shell("docker load -q -i " + out + " >/dev/null && docker tag bench/built:1 " + a + " && docker tag bench/built:1 " + c +
					" && docker push -q " + a + " >/dev/null && docker push -q " + c + " >/dev/null")
			}},
		}},
	}
}

// scanSuite measures the scan scenarios on an image of size MiB: the push
// suite's gzip docker-archive, the build suite's context, and a Trivy
// cache holding a vulnerability database written with Trivy's own
// packages.
func (b *bench) scanSuite(size int) error {
	if !b.wanted(b.scanScenarios(&pushInputs{}, "", "", size)) {
		return nil
	}
	in, err := b.makePushInputs(size)
	if err != nil {
		return fmt.Errorf("making the %d MiB push inputs: %w", size, err)
	}
	ctxDir, err := b.buildContext(size)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(b.dir, "trivy-cache", "db", "trivy.db")); err != nil {
		now := time.Now()
		advs := []harness.Advisory{harness.AdvMusl, harness.AdvBusybox, harness.AdvGoCmp}
		if _, err := harness.BuildTrivyDB(filepath.Join(b.dir, "trivy-cache", "db"), advs, now, now.Add(7*24*time.Hour), 2); err != nil {
			return err
		}
	}
	engineDir, err := b.startEngine("engine-s")
	if err != nil {
		return err
	}
	return b.measureEach(b.scanScenarios(in, ctxDir, engineDir, size))
}
