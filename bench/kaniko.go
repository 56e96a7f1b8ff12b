package main

import (
	"os"
	"path/filepath"
)

// kanikoScenarios compare the two build tools on the build suite's
// Dockerfile and context: BuildKit (hoist's embedded engine) and Kaniko
// (hoist's Kaniko image run as a plugin container, as a CI runner runs
// it), build-only to a tarball and build-and-push; and, for Kaniko's
// build-and-push, the executor's own push against hoist's push core after
// the executor's tarball.
func (b *bench) kanikoScenarios(ctx, engineDir string, size int) []scenario {
	// The tarball goes beside the context, not into it: it would be part
	// of the next build's context.
	outDir := filepath.Join(b.dir, "kaniko-out")
	out := filepath.Join(outDir, "out.tar")
	store := filepath.Join(b.dir, "store-k")
	const app = "/bench/built:1"
	kaniko := func(m *meas, env ...string) error {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return err
		}
		args := []string{"docker", "run", "--rm", "--network", "host", "-v", ctx + ":/harness", "-v", outDir + ":/out", "-w", "/harness"}
		for _, e := range env {
			args = append(args, "-e", e)
		}
		return m.exec(append(args, kanikoImage)...)
	}
	tarball := func(*meas) error { return wholeTarball(out, size) }
	pushed := func(m *meas) error { return inRegistry(m.regs[0] + app) }
	return []scenario{{suite: "kaniko", id: "tools", title: "build tools, no cache", size: size, registries: 1, warmup: true, after: pruneBuilders(engineDir), tools: []tool{
		{id: "buildkit-tar", title: "BuildKit (embedded engine) → tarball", verify: tarball, run: func(m *meas) error {
			os.Remove(out)
			os.RemoveAll(store)
			return m.exec(hoistBin, "build", "--no-push", "--no-cache", "--context", ctx, "--repo", "bench/built", "--engine-dir", engineDir,
				"--image-store", store, "--tar-path", out, "--progress", "quiet", "--daemon-off")
		}},
		{id: "kaniko-tar", title: "Kaniko (plugin image) → tarball", verify: tarball, run: func(m *meas) error {
			os.Remove(out)
			return kaniko(m, "PLUGIN_NO_PUSH=true", "PLUGIN_REPO=bench/built", "PLUGIN_TAR_PATH=/out/out.tar", "PLUGIN_IMAGE_STORE=/tmp/store", "PLUGIN_PROGRESS=quiet")
		}},
		{id: "buildkit-push", title: "BuildKit (embedded engine) → registry", verify: pushed, run: func(m *meas) error {
			return m.exec(hoistBin, "build", "--no-cache", "--context", ctx, "--destination", m.regs[0]+app, "--engine-dir", engineDir,
				"--progress", "quiet", "--daemon-off")
		}},
		{id: "kaniko-push", title: "Kaniko → tarball → hoist's push core → registry", verify: pushed, run: func(m *meas) error {
			return kaniko(m, "PLUGIN_DESTINATIONS="+m.regs[0]+app, "PLUGIN_PROGRESS=quiet")
		}},
		{id: "executor-push", title: "Kaniko executor's own push → registry", verify: pushed, run: func(m *meas) error {
			return m.exec("docker", "run", "--rm", "--network", "host", "-v", ctx+":/harness", "--entrypoint", "/kaniko/executor", kanikoImage,
				"--context=dir:///harness", "--dockerfile=/harness/Dockerfile", "--destination="+m.regs[0]+app, "--insecure")
		}},
	}}}
}

// kanikoSuite measures the build tools on an image of size MiB.
func (b *bench) kanikoSuite(size int) error {
	return b.builderSuite(size, "engine-k", func(ctx, engineDir string) []scenario { return b.kanikoScenarios(ctx, engineDir, size) })
}
