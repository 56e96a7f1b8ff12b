package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// pipelineYAML is a one-stage pipeline (BuildKit, no clone) of parallel
// step groups; each group is a list of steps, each a Docker Build and
// Push step with its repo and envVariables.
func pipelineYAML(id string, groups [][]pipelineStep) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pipeline:\n  identifier: %s\n  stages:\n    - stage:\n        identifier: s\n        type: CI\n        spec:\n          cloneCodebase: false\n          runtime: {type: Cloud, spec: {}}\n          execution:\n            steps:\n", id)
	for _, g := range groups {
		b.WriteString("              - parallel:\n")
		for _, s := range g {
			fmt.Fprintf(&b, "                  - step:\n                      identifier: %s\n                      type: BuildAndPushDockerRegistry\n                      spec:\n                        connectorRef: registry\n                        repo: %s\n                        tags: [\"1\"]\n                        envVariables:\n", s.id, s.repo)
			for _, kv := range s.env {
				fmt.Fprintf(&b, "                          %s: %q\n", kv[0], kv[1])
			}
		}
	}
	return b.String()
}

type pipelineStep struct {
	id, repo string
	env      [][2]string
}

// pipelineRunner writes the pipeline and its connectors file (untimed) and
// runs hoist pipeline run on it (timed), its engine the suite's.
func (b *bench) pipelineRunner(m *meas, name, yaml, engineDir string) error {
	dir := filepath.Join(b.dir, "pipeline-"+name)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	file, conns := filepath.Join(dir, "pipeline.yaml"), filepath.Join(dir, "connectors.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(conns, []byte("connectors:\n  registry: {type: docker}\n"), 0o644); err != nil {
		return err
	}
	bk, err := filepath.Abs(buildkitdBin)
	if err != nil {
		return err
	}
	line := "PLUGIN_ENGINE_DIR=" + engineDir + " PLUGIN_BUILDKITD=" + bk + " " + hoistBin + " pipeline run " + file + " --connectors " + conns +
		" --sequence-id 1 --workspace " + filepath.Join(dir, "ws") + " --state " + filepath.Join(dir, "state") + " >/dev/null"
	return m.shell(line)
}

// pipelineScenarios measure hoist pipeline run on the document's "push
// only as tarball" pipeline: four build-only steps of one Dockerfile in
// parallel, each writing a tarball, then four push-only steps in
// parallel, each pushing one to its registry. Against one build and one
// push to the four registries (what the pipeline's work is), the same four
// plus four steps as separate hoist processes, and the legacy per-step
// chain (buildx --load + docker save; docker load, tag, push).
func (b *bench) pipelineScenarios(ctxDir, engineDir string, size int) []scenario {
	const app = "/bench/app:1"
	work := filepath.Join(b.dir, "pipeline-work")
	fresh := func() error {
		if err := os.RemoveAll(work); err != nil {
			return err
		}
		return os.MkdirAll(work, 0o755)
	}
	tar := func(i int) string { return filepath.Join(work, fmt.Sprintf("image-%d.tar", i)) }
	hoistBuild := func(out string) []string {
		return []string{hoistBin, "build", "--no-push", "--context", ctxDir, "--repo", "bench/built", "--tags", "1", "--engine-dir", engineDir,
			"--image-store", filepath.Join(work, "store"), "--progress", "quiet", "--daemon-off", "--tar-path", out}
	}
	pushed := func(m *meas) error {
		var refs []string
		for _, r := range m.regs {
			refs = append(refs, r+app)
		}
		return inRegistry(refs...)
	}
	return []scenario{
		{suite: "pipeline", id: "tar", title: "push only as tarball: 4 build-only steps of one Dockerfile, then 4 push-only steps, 4 registries", size: size, registries: 4, warmup: true, after: pruneBuilders(engineDir), tools: []tool{
			{id: "runner", title: "hoist pipeline run (4 + 4 steps, in parallel, one process)", verify: pushed, run: func(m *meas) error {
				var builds, pushes []pipelineStep
				for i, r := range m.regs {
					builds = append(builds, pipelineStep{fmt.Sprintf("build%d", i), "bench/built",
						[][2]string{{"PLUGIN_NO_PUSH", "true"}, {"PLUGIN_TAR_PATH", fmt.Sprintf("image-%d.tar", i)}, {"PLUGIN_CONTEXT", ctxDir}, {"PLUGIN_PROGRESS", "quiet"}}})
					pushes = append(pushes, pipelineStep{fmt.Sprintf("push%d", i), r + "/bench/app",
						[][2]string{{"PLUGIN_PUSH_ONLY", "true"}, {"PLUGIN_SOURCE_TAR_PATH", fmt.Sprintf("image-%d.tar", i)}, {"PLUGIN_PROGRESS", "quiet"}}})
				}
				return b.pipelineRunner(m, "tar", pipelineYAML("tar", [][]pipelineStep{builds, pushes}), engineDir)
			}},
			{id: "once", title: "hoist build --no-push (1 tarball) → hoist push to the 4 registries", verify: pushed, run: func(m *meas) error {
				if err := fresh(); err != nil {
					return err
				}
				if err := m.exec(hoistBuild(tar(0))...); err != nil {
					return err
				}
				args := []string{hoistBin, "push", "--source-tar-path", tar(0), "--image-store", filepath.Join(work, "store"), "--progress", "quiet", "--daemon-off"}
				for _, r := range m.regs {
					args = append(args, "--destination", r+app)
				}
				return m.exec(args...)
			}},
			{id: "processes", title: "4 hoist build --no-push processes at once, then 4 hoist push processes at once", verify: pushed, run: func(m *meas) error {
				if err := fresh(); err != nil {
					return err
				}
				var builds, pushes [][]string
				for i, r := range m.regs {
					builds = append(builds, hoistBuild(tar(i)))
					pushes = append(pushes, []string{hoistBin, "push", "--source-tar-path", tar(i), "--image-store", filepath.Join(work, "store"),
						"--destination", r + app, "--progress", "quiet", "--daemon-off"})
				}
				if err := m.parallel(builds); err != nil {
					return err
				}
				return m.parallel(pushes)
			}},
			{id: "legacy", title: "legacy per step: 4 × (buildx --load, docker save) at once, then 4 × (docker load, tag, push) at once", verify: pushed, run: func(m *meas) error {
				if err := fresh(); err != nil {
					return err
				}
				var builds, pushes [][]string
				for i, r := range m.regs {
					name := fmt.Sprintf("bench/built-%d:1", i)
					if err := dockerForget(name, r+app); err != nil {
						return err
					}
					builds = append(builds, []string{"sh", "-c", "docker buildx build -q --load -t " + name + " " + ctxDir + " >/dev/null && docker save -o " + tar(i) + " " + name})
					pushes = append(pushes, []string{"sh", "-c", "docker load -q -i " + tar(i) + " >/dev/null && docker tag " + name + " " + r + app + " && docker push -q " + r + app + " >/dev/null"})
				}
				if err := m.parallel(builds); err != nil {
					return err
				}
				// Each push step is another step: its daemon does not hold
				// the image its build step made.
				for i := range m.regs {
					if err := dockerForget(fmt.Sprintf("bench/built-%d:1", i)); err != nil {
						return err
					}
				}
				return m.parallel(pushes)
			}},
		}},
	}
}

// pipelineOverheadScenarios measure the runner's own cost: one push-only
// step of a small tarball to one registry, run by hand as a plugin step
// and as the only step of a pipeline (validate, plan, workspace, report).
func (b *bench) pipelineOverheadScenarios(in *pushInputs, engineDir string) []scenario {
	const app = "/bench/app:1"
	pushed := func(m *meas) error { return inRegistry(m.regs[0] + app) }
	return []scenario{
		{suite: "pipeline", id: "overhead", sizeless: true, title: "one push-only step of an 8 MiB docker-archive to 1 registry", registries: 1, tools: []tool{
			{id: "hand", title: "the step by hand: hoist as a plugin, PLUGIN_* variables", verify: pushed, run: func(m *meas) error {
				return m.shell("PLUGIN_PUSH_ONLY=true PLUGIN_SOURCE_TAR_PATH=" + in.gz + " PLUGIN_REPO=" + m.regs[0] + "/bench/app PLUGIN_TAGS=1 PLUGIN_DAEMON_OFF=true PLUGIN_PROGRESS=quiet " +
					"PLUGIN_IMAGE_STORE=" + filepath.Join(b.dir, "overhead-store") + " PLUGIN_COMPRESS_CACHE= " + hoistBin + " >/dev/null")
			}},
			{id: "runner", title: "the same step as a pipeline: hoist pipeline run", verify: pushed, run: func(m *meas) error {
				yaml := pipelineYAML("overhead", [][]pipelineStep{{{"push", m.regs[0] + "/bench/app",
					[][2]string{{"PLUGIN_PUSH_ONLY", "true"}, {"PLUGIN_SOURCE_TAR_PATH", in.gz}, {"PLUGIN_PROGRESS", "quiet"}, {"PLUGIN_COMPRESS_CACHE", ""}}}}})
				return b.pipelineRunner(m, "overhead", yaml, engineDir)
			}},
		}},
	}
}

// pipelineSuite measures the tarball pipeline on an image of size MiB.
func (b *bench) pipelineSuite(size int) error {
	if !b.wanted(b.pipelineScenarios("", "", size)) {
		return nil
	}
	ctxDir, err := b.buildContext(size)
	if err != nil {
		return err
	}
	engineDir, err := b.startEngine("engine-p")
	if err != nil {
		return err
	}
	return b.measureEach(b.pipelineScenarios(ctxDir, engineDir, size))
}

// pipelineOverheadSuite measures the runner's overhead once (it does not
// depend on the image size).
func (b *bench) pipelineOverheadSuite() error {
	if !b.wanted(b.pipelineOverheadScenarios(&pushInputs{}, "")) {
		return nil
	}
	in, err := b.makePushInputs(8)
	if err != nil {
		return err
	}
	return b.measureEach(b.pipelineOverheadScenarios(in, ""))
}
