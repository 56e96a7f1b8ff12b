package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// buildScenarios compare hoist's build-only to a tarball, and the pair
// build-only then push-only, with the peers' legacy paths: buildx --load
// into the daemon then docker save; and docker load then docker push in
// the push step. The image is FROM scratch plus COPY layers of random data;
// every build is --no-cache. hoist builds on its embedded engine, started
// once and kept running (hoist engine start).
//
// builder is a buildx builder on a container of hoist's BuildKit image
// (the same BuildKit version as the engine's): buildx writes its tarball
// there directly (--output type=docker|oci,dest=...), no daemon.
func (b *bench) buildScenarios(ctx, engineDir, builder string, size int) []scenario {
	out := filepath.Join(b.dir, "out.tar")
	store := filepath.Join(b.dir, "store")
	hoistBuild := func(extra ...string) []string {
		return append([]string{hoistBin, "build", "--no-push", "--no-cache", "--context", ctx, "--repo", "bench/built", "--tags", "1",
			"--engine-dir", engineDir, "--image-store", store, "--progress", "plain", "--daemon-off"}, extra...)
	}
	fresh := func() error {
		os.Remove(out)
		return os.RemoveAll(store)
	}
	toTarball := func(extra ...string) func(m *meas) error {
		return func(m *meas) error {
			if err := fresh(); err != nil {
				return err
			}
			if err := m.exec(hoistBuild(append([]string{"--tar-path", out}, extra...)...)...); err != nil {
				return err
			}
			build, export := splitBuildExport(m.stderr)
			m.extra("build_s", build)
			m.extra("export_s", export)
			return nil
		}
	}
	tarball := func(m *meas) error { return wholeTarball(out, size) }
	legacyBuild := "docker buildx build -q --no-cache --load -t bench/built:1 " + ctx + " >/dev/null && docker save -o " + out + " bench/built:1"
	legacy := func(m *meas) error {
		if err := fresh(); err != nil {
			return err
		}
		if err := dockerForget("bench/built:1"); err != nil {
			return err
		}
		return m.shell(legacyBuild)
	}
	const app = "/bench/app:1"
	pushed := func(m *meas) error { return inRegistry(m.regs[0] + app) }
	var buildxTarball func(format string) func(m *meas) error
	hoistPair := func(extra ...string) func(m *meas) error {
		return func(m *meas) error {
			if err := fresh(); err != nil {
				return err
			}
			if err := m.exec(hoistBuild(append([]string{"--tar-path", out}, extra...)...)...); err != nil {
				return err
			}
			// The push-only step of the same workspace: it sees the build's
			// image store, as the mission's steps share .hoist/images.
			return m.exec(hoistBin, "push", "--source-tar-path", out, "--image-store", store, "--destination", m.regs[0]+app, "--progress", "quiet", "--daemon-off", "--compress-cache=")
		}
	}
	buildxTarball = func(format string) func(m *meas) error {
		return func(m *meas) error {
			if err := fresh(); err != nil {
				return err
			}
			return m.exec("docker", "buildx", "build", "--builder", builder, "--no-cache", "--progress", "quiet",
				"--output", "type="+format+",name=bench/built:1,dest="+out, ctx)
		}
	}
	prune := func() error {
		if err := pruneBuilders(engineDir)(); err != nil {
			return err
		}
		if builder == "" {
			return nil
		}
		return must("docker", "buildx", "prune", "--builder", builder, "-af", "--filter", "type!=source.local")
	}
	return []scenario{
		{suite: "build", id: "tarball", title: "build-only to a tarball, no cache", size: size, warmup: true, after: prune, tools: []tool{
			{id: "hoist", title: "hoist → docker tarball, default (gzip level 1)", run: toTarball(), verify: tarball},
			{id: "hoist-uncompressed", title: "hoist → docker tarball, uncompressed layers", run: toTarball("--compression", "uncompressed"), verify: tarball},
			{id: "hoist-gzip", title: "hoist → docker tarball, gzip (BuildKit's default level)", run: toTarball("--compression", "gzip"), verify: tarball},
			{id: "hoist-zstd", title: "hoist → docker tarball, zstd", run: toTarball("--compression", "zstd"), verify: tarball},
			{id: "hoist-store", title: "hoist → workspace image store only, default", run: func(m *meas) error {
				if err := fresh(); err != nil {
					return err
				}
				return m.exec(hoistBuild()...)
			}, verify: func(*meas) error {
				if _, err := os.Stat(filepath.Join(store, "index.json")); err != nil {
					return fmt.Errorf("the workspace image store has no index.json: %w", err)
				}
				return nil
			}},
			{id: "buildx-docker", title: "buildx --output type=docker,dest= (BuildKit container, no daemon)", run: buildxTarball("docker"), verify: tarball},
			{id: "buildx-oci", title: "buildx --output type=oci,dest= (BuildKit container, no daemon)", run: buildxTarball("oci"), verify: tarball},
			{id: "legacy", title: "legacy: buildx --load, then docker save", run: legacy, verify: tarball},
		}},
		{suite: "build", id: "pair", title: "build-only → tarball → push-only to 1 registry, no cache", size: size, registries: 1, warmup: true, after: prune, tools: []tool{
			{id: "hoist", title: "hoist build (default, gzip level 1) → hoist push, one digest", run: hoistPair(), verify: pushed},
			{id: "hoist-uncompressed", title: "hoist build (uncompressed) → hoist push (gzips once)", run: hoistPair("--compression", "uncompressed"), verify: pushed},
			{id: "legacy", title: "legacy: buildx --load, docker save → docker load, docker push", verify: pushed, run: func(m *meas) error {
				if err := legacy(m); err != nil {
					return err
				}
				// The push step is another step: its daemon does not hold
				// the image the build step made.
				if err := dockerForget("bench/built:1"); err != nil {
					return err
				}
				ref := m.regs[0] + app
				return m.shell("docker load -q -i " + out + " >/dev/null && docker tag bench/built:1 " + ref + " && docker push -q " + ref + " >/dev/null")
			}},
		}},
	}
}

// buildSuite measures the build scenarios on an image of size MiB.
func (b *bench) buildSuite(size int) error {
	if !b.wanted(b.buildScenarios("", "", "", size)) {
		return nil
	}
	builder, _, stop, err := buildxBuilder(-2)
	if err != nil {
		return fmt.Errorf("starting buildx's BuildKit container: %w", err)
	}
	b.atEnd(stop)
	return b.builderSuite(size, "engine", func(ctx, engineDir string) []scenario { return b.buildScenarios(ctx, engineDir, builder, size) })
}

// builderSuite makes the build context of an image of size MiB and starts
// an embedded engine for the scenarios, when one of their cases is wanted,
// then measures them.
func (b *bench) builderSuite(size int, engine string, scenarios func(ctx, engineDir string) []scenario) error {
	if !b.wanted(scenarios("", "")) {
		return nil
	}
	ctx, err := b.buildContext(size)
	if err != nil {
		return err
	}
	engineDir, err := b.startEngine(engine)
	if err != nil {
		return err
	}
	return b.measureEach(scenarios(ctx, engineDir))
}

// pruneBuilders empties the build caches of hoist's engine in engineDir
// and of the Docker daemon's builder, all but their copies of the build
// context: every build is --no-cache, so the rest only fills the disk (by
// the image's size per build; a full run would otherwise hold tens of
// GiB), while the context stays transferred incrementally, for both.
func pruneBuilders(engineDir string) func() error {
	const keepContext = "type!=source.local"
	return func() error {
		if engineDir != "" {
			if err := must(buildctlBin, "--addr", "unix://"+filepath.Join(engineDir, "buildkitd.sock"), "prune", "--all", "--filter", keepContext); err != nil {
				return err
			}
		}
		return must("docker", "builder", "prune", "-af", "--filter", keepContext)
	}
}

// startEngine starts a hoist embedded engine that stays running for the
// suite (hoist engine start) and is stopped at the end of the benchmark.
func (b *bench) startEngine(name string) (string, error) {
	dir := filepath.Join(b.dir, name)
	if err := must(hoistBin, "engine", "start", "--engine-dir", dir, "--buildkitd", buildkitdBin); err != nil {
		return "", err
	}
	b.atEnd(func() {
		runCmd(hoistBin, "engine", "stop", "--engine-dir", dir)
		os.RemoveAll(dir)
	})
	return dir, nil
}

// buildContext writes, once per size, a build context of layersFor(mb)
// files of random data and a Dockerfile that copies each into a layer.
func (b *bench) buildContext(mb int) (string, error) {
	n := layersFor(mb)
	ctx := filepath.Join(b.dir, fmt.Sprintf("build-%dm", mb))
	if err := os.MkdirAll(ctx, 0o755); err != nil {
		return "", err
	}
	var df strings.Builder
	df.WriteString("FROM scratch\n")
	for i := 0; i < n; i++ {
		p := filepath.Join(ctx, fmt.Sprintf("blob-%d.bin", i))
		if _, err := os.Stat(p); err != nil {
			if err := writeRandomFile(p, int64(mb)<<20/int64(n), uint64(7000+mb*100+i)); err != nil {
				return "", err
			}
		}
		fmt.Fprintf(&df, "COPY blob-%d.bin /data/blob-%d.bin\n", i, i)
	}
	return ctx, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df.String()), 0o644)
}

func writeRandomFile(p string, size int64, seed uint64) error {
	f, err := os.Create(p + ".tmp")
	if err != nil {
		return err
	}
	if err := writeRandom(f, size, seed); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

// wholeTarball checks that a build wrote a tarball at least as large as
// the image's data.
func wholeTarball(p string, mb int) error {
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("no tarball: %w", err)
	}
	if st.Size() < int64(mb)<<20 {
		return fmt.Errorf("the tarball %s has %d bytes, less than the image's %d MiB of data", p, st.Size(), mb)
	}
	return nil
}

var (
	vertexHead = regexp.MustCompile(`^#(\d+) (.*)$`)
	vertexDone = regexp.MustCompile(`^#(\d+) (?:DONE|CACHED) ?([0-9.]*)s?$`)
)

// splitBuildExport sums BuildKit's plain progress in seconds: the exporter
// vertices ("exporting to ...") against the others.
func splitBuildExport(log string) (build, export float64) {
	names := map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		if m := vertexDone.FindStringSubmatch(line); m != nil {
			secs, _ := strconv.ParseFloat(m[2], 64)
			if strings.HasPrefix(names[m[1]], "exporting to") {
				export += secs
			} else {
				build += secs
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
