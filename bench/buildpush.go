package main

import "fmt"

// buildPushScenarios compare a build that pushes, to 1 and to 4
// registries, with what users pick today: docker buildx build --push with
// a tag per registry, on the very same BuildKit (one container of hoist's
// BuildKit image, started for the suite; hoist reaches it through
// --builder-addr, as PLUGIN_BUILDER_REMOTE_CONN, buildx through its remote
// driver), and the Kaniko executor with a --destination per registry
// against hoist's Kaniko plugin image. Every build is --no-cache on the
// build suite's context; every measurement has fresh registries, so every
// repository is new.
func (b *bench) buildPushScenarios(ctx, addr, builder string, size int) []scenario {
	const app = "/bench/app:1"
	refs := func(m *meas, n int) []string {
		var out []string
		for _, r := range m.regs[:n] {
			out = append(out, r+app)
		}
		return out
	}
	hoist := func(n int) func(m *meas) error {
		return func(m *meas) error {
			// The suite's BuildKit container is on the host's network:
			// it may push to the loopback registries itself.
			args := []string{hoistBin, "build", "--no-cache", "--context", ctx, "--builder-addr", addr, "--builder-push", "true", "--progress", "quiet", "--daemon-off"}
			for _, r := range refs(m, n) {
				args = append(args, "--destination", r)
			}
			return m.exec(args...)
		}
	}
	buildx := func(n int) func(m *meas) error {
		return func(m *meas) error {
			args := []string{"docker", "buildx", "build", "--builder", builder, "--no-cache", "--progress", "quiet", "--push"}
			for _, r := range refs(m, n) {
				args = append(args, "-t", r)
			}
			return m.exec(append(args, ctx)...)
		}
	}
	executor := func(n int) func(m *meas) error {
		return func(m *meas) error {
			args := []string{"docker", "run", "--rm", "--network", "host", "-v", ctx + ":/harness", "--entrypoint", "/kaniko/executor", kanikoImage,
				"--context=dir:///harness", "--dockerfile=/harness/Dockerfile", "--insecure"}
			for _, r := range refs(m, n) {
				args = append(args, "--destination="+r)
			}
			return m.exec(args...)
		}
	}
	kanikoPlugin := func(n int) func(m *meas) error {
		return func(m *meas) error {
			var dests string
			for i, r := range refs(m, n) {
				if i > 0 {
					dests += ","
				}
				dests += r
			}
			return m.exec("docker", "run", "--rm", "--network", "host", "-v", ctx+":/harness", "-w", "/harness",
				"-e", "PLUGIN_DESTINATIONS="+dests, "-e", "PLUGIN_PROGRESS=quiet", "-e", "PLUGIN_INSECURE=true", kanikoImage)
		}
	}
	pushedTo := func(n int) func(m *meas) error {
		return func(m *meas) error { return inRegistry(refs(m, n)...) }
	}
	prune := func() error {
		return must(buildctlBin, "--addr", addr, "prune", "--all", "--filter", "type!=source.local")
	}
	scenarioOf := func(n int) scenario {
		return scenario{suite: "buildpush", id: fmt.Sprintf("%dreg", n), title: fmt.Sprintf("build and push to %d registr%s, no cache", n, map[bool]string{true: "y", false: "ies"}[n == 1]),
			size: size, registries: n, warmup: true, after: prune, tools: []tool{
				{id: "hoist", title: "hoist build --destination × " + fmt.Sprint(n) + " (the suite's BuildKit container)", run: hoist(n), verify: pushedTo(n)},
				{id: "buildx", title: "docker buildx build --push -t × " + fmt.Sprint(n) + " (remote driver, the same container)", run: buildx(n), verify: pushedTo(n)},
				{id: "kaniko", title: "hoist's Kaniko plugin image, PLUGIN_DESTINATIONS × " + fmt.Sprint(n), run: kanikoPlugin(n), verify: pushedTo(n)},
				{id: "executor", title: "Kaniko executor --destination × " + fmt.Sprint(n), run: executor(n), verify: pushedTo(n)},
			}}
	}
	return []scenario{scenarioOf(1), scenarioOf(4)}
}

// buildPushSuite starts one BuildKit container (hoist's BuildKit image)
// for hoist and buildx to share, and measures the build-and-push
// scenarios on an image of size MiB.
func (b *bench) buildPushSuite(size int) error {
	if !b.wanted(b.buildPushScenarios("", "", "", size)) {
		return nil
	}
	ctx, err := b.buildContext(size)
	if err != nil {
		return err
	}
	builder, addr, stop, err := buildxBuilder(-1)
	if err != nil {
		return fmt.Errorf("starting the shared BuildKit container: %w", err)
	}
	b.atEnd(stop)
	return b.measureEach(b.buildPushScenarios(ctx, addr, builder, size))
}
