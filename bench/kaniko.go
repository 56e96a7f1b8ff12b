package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// benchKaniko compares the two build tools on the same Dockerfile and
// context as the build suite: BuildKit (hoist's embedded engine) and Kaniko
// (hoist's Kaniko image run as a plugin container), build-only to a tarball
// and build-and-push; and, for Kaniko's build-and-push, the executor's own
// push against hoist's push core after the executor's tarball.
func benchKaniko(dir string, mb int, image string) {
	ctx := filepath.Join(dir, fmt.Sprintf("build-%dm", mb))
	if _, err := os.Stat(filepath.Join(ctx, "Dockerfile")); err != nil {
		fmt.Fprintln(os.Stderr, "bench: run the build suite first (it makes the context)")
		return
	}
	engineDir := filepath.Join(dir, "engine-k")
	bk, err := filepath.Abs(*buildkitd)
	check(err)
	check(runCmd(nil, *hoistBin, "engine", "start", "--engine-dir", engineDir, "--buildkitd", bk).err)
	defer func() {
		runCmd(nil, *hoistBin, "engine", "stop", "--engine-dir", engineDir)
		os.RemoveAll(engineDir)
	}()
	kaniko := func(env ...string) sample {
		args := []string{"run", "--rm", "--network", "host", "-v", ctx + ":/harness", "-w", "/harness"}
		for _, e := range env {
			args = append(args, "-e", e)
		}
		return runCmd(nil, "docker", append(args, image)...)
	}
	cases := []struct {
		name string
		run  func(reg string) sample
	}{
		{"BuildKit (embedded engine) → tarball", func(string) sample {
			os.Remove(filepath.Join(ctx, "out.tar"))
			return runCmd(nil, *hoistBin, "build", "--no-push", "--no-cache", "--context", ctx, "--repo", "bench/built", "--engine-dir", engineDir,
				"--image-store", filepath.Join(dir, "store-k"), "--tar-path", filepath.Join(ctx, "out.tar"), "--progress", "quiet", "--daemon-off")
		}},
		{"Kaniko (plugin image) → tarball", func(string) sample {
			os.Remove(filepath.Join(ctx, "out.tar"))
			return kaniko("PLUGIN_NO_PUSH=true", "PLUGIN_REPO=bench/built", "PLUGIN_TAR_PATH=/harness/out.tar", "PLUGIN_IMAGE_STORE=/tmp/store", "PLUGIN_PROGRESS=quiet")
		}},
		{"BuildKit (embedded engine) → registry", func(reg string) sample {
			return runCmd(nil, *hoistBin, "build", "--no-cache", "--context", ctx, "--destination", reg+"/bench/built:1", "--engine-dir", engineDir,
				"--progress", "quiet", "--daemon-off")
		}},
		{"Kaniko → tarball → hoist's push core → registry", func(reg string) sample {
			return kaniko("PLUGIN_DESTINATIONS="+reg+"/bench/built:1", "PLUGIN_PROGRESS=quiet")
		}},
		{"Kaniko executor's own push → registry", func(reg string) sample {
			args := []string{"run", "--rm", "--network", "host", "-v", ctx + ":/harness", "--entrypoint", "/kaniko/executor", image,
				"--context=dir:///harness", "--dockerfile=/harness/Dockerfile", "--destination=" + reg + "/bench/built:1", "--insecure"}
			return runCmd(nil, "docker", args...)
		}},
	}
	walls := make([][]time.Duration, len(cases))
	var errs []error
	for run := 0; run < *runs; run++ {
		for k := range cases {
			i := (k + run) % len(cases)
			regs, stop := startRegistries(dir, 1)
			settle()
			s := cases[i].run(regs[0])
			stop()
			if s.err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", cases[i].name, s.err))
			}
			walls[i] = append(walls[i], s.wall)
		}
	}
	fmt.Printf("## build tools, %d MiB image (%d COPY layers of random data), no cache\n\n| how | wall s |\n|---|---:|\n", mb, layersFor(mb))
	for i, c := range cases {
		fmt.Printf("| %s | %.2f |\n", c.name, medianD(walls[i]).Seconds())
	}
	for _, e := range errs {
		fmt.Fprintln(os.Stderr, "bench:", strings.TrimSpace(e.Error()))
	}
	fmt.Println()
	os.RemoveAll(filepath.Join(dir, "store-k"))
}
