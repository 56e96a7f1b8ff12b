package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The growth suite measures how the push's cost grows: with the image
// (growthSizes MiB, in one layer and in 50), with the registries pushed to
// at once, with the tags written. Its scenarios have no image size of the
// run's (-sizes): each names its own, and runs once per bench run.
var (
	growthSizes      = []int{64, 256, 1024, 4096}
	growthLayers     = []int{1, 50}
	growthRegistries = []int{1, 2, 4, 8, 16}
	growthTags       = []int{1, 10, 100, 500}
)

const (
	// growthFanoutMiB is the image pushed to 1 → 16 registries (in 50
	// layers); growthTagsMiB the one pushed under 1 → 500 tags (1 layer).
	growthFanoutMiB = 256
	growthTagsMiB   = 64
)

// growthImage is the name of an image of the suite: 1l-64, 50l-4096.
func growthImage(layers, mb int) string { return fmt.Sprintf("%dl-%d", layers, mb) }

// growthImageSize is the layers and MiB of an image named by growthImage.
func growthImageSize(img string) (layers, mb int) {
	fmt.Sscanf(img, "%dl-%d", &layers, &mb)
	return layers, mb
}

// growthImageOf is the image a scenario of the suite pushes, from its id
// (size-50l-4096, registries-16, tags-500).
func growthImageOf(scenarioID string) string {
	switch {
	case strings.HasPrefix(scenarioID, "size-"):
		return strings.TrimPrefix(scenarioID, "size-")
	case strings.HasPrefix(scenarioID, "registries-"):
		return growthImage(50, growthFanoutMiB)
	}
	return growthImage(1, growthTagsMiB)
}

// growthScenarios are the suite's scenarios; layouts maps an image's
// name to its OCI layout (empty in the catalogue).
func (b *bench) growthScenarios(layouts map[string]string) []scenario {
	const repo = "/bench/app"
	refs := func(m *meas, regs, tags int) []string {
		var out []string
		for _, r := range m.regs[:regs] {
			for t := 1; t <= tags; t++ {
				out = append(out, fmt.Sprintf("%s%s:t%d", r, repo, t))
			}
		}
		return out
	}
	hoist := func(img string, regs, tags int) tool {
		return tool{id: "hoist", title: fmt.Sprintf("hoist push, %d registr%s, %d tag(s)", regs, map[bool]string{true: "y", false: "ies"}[regs == 1], tags),
			run: func(m *meas) error {
				args := []string{hoistBin, "push", "--source-tar-path", layouts[img], "--progress", "quiet", "--daemon-off"}
				for _, r := range refs(m, regs, tags) {
					args = append(args, "--destination", r)
				}
				return m.exec(args...)
			},
			verify: func(m *meas) error { return inRegistry(refs(m, regs, tags)...) }}
	}
	crane := func(img string) tool {
		return tool{id: "crane", title: "crane push", run: func(m *meas) error {
			return m.exec(craneBin, "push", layouts[img], m.regs[0]+repo+":t1")
		}, verify: func(m *meas) error { return inRegistry(refs(m, 1, 1)...) }}
	}
	var out []scenario
	for _, layers := range growthLayers {
		for _, mb := range growthSizes {
			img := growthImage(layers, mb)
			out = append(out, scenario{suite: "growth", id: "size-" + img, sizeless: true, registries: 1,
				title: fmt.Sprintf("OCI layout of %d MiB in %d layer(s) → 1 registry", mb, layers),
				tools: []tool{hoist(img, 1, 1), crane(img)}})
		}
	}
	fan := growthImage(50, growthFanoutMiB)
	for _, n := range growthRegistries {
		out = append(out, scenario{suite: "growth", id: fmt.Sprintf("registries-%d", n), sizeless: true, registries: n,
			title: fmt.Sprintf("OCI layout of %d MiB in 50 layers → %d registries at once", growthFanoutMiB, n),
			tools: []tool{hoist(fan, n, 1)}})
	}
	tagged := growthImage(1, growthTagsMiB)
	for _, n := range growthTags {
		out = append(out, scenario{suite: "growth", id: fmt.Sprintf("tags-%d", n), sizeless: true, registries: 1,
			title: fmt.Sprintf("OCI layout of %d MiB → 1 registry under %d tag(s)", growthTagsMiB, n),
			tools: []tool{hoist(tagged, 1, n), {id: "limit", title: fmt.Sprintf("the limit, %d tag(s) (monolithic PUTs, then the manifest under each tag, 16 at once)", n),
				run: func(m *meas) error { return limitRun(layouts[tagged], repo+":t1", n)(m) }, verify: func(m *meas) error { return inRegistry(refs(m, 1, n)...) }}}})
	}
	return out
}

// growthSuite makes each image the wanted scenarios push (just before
// its first scenario; the largest are removed after their last) and
// measures them.
func (b *bench) growthSuite() error {
	all := b.growthScenarios(nil)
	if !b.wanted(all) {
		return nil
	}
	layouts := map[string]string{}
	scs := b.growthScenarios(layouts)
	last := map[string]int{}
	for i, sc := range scs {
		if b.wanted([]scenario{sc}) {
			last[growthImageOf(sc.id)] = i
		}
	}
	for i, sc := range scs {
		if !b.wanted([]scenario{sc}) {
			continue
		}
		img := growthImageOf(sc.id)
		if layouts[img] == "" {
			layers, mb := growthImageSize(img)
			p, err := b.makeGrowthLayout(layers, mb)
			if err != nil {
				return fmt.Errorf("making the growth suite's image %s: %w", img, err)
			}
			layouts[img] = p
		}
		if err := b.measure(sc); err != nil {
			return err
		}
		if last[img] == i {
			// The disk holds one large image at a time.
			os.RemoveAll(filepath.Dir(layouts[img]))
		}
	}
	return nil
}

// makeGrowthLayout writes an image of mb MiB of incompressible bytes in
// layers gzip layers (level 1) as an OCI layout, with
// go-containerregistry's writer (as crane writes them), and returns its
// directory.
func (b *bench) makeGrowthLayout(layers, mb int) (string, error) {
	base := filepath.Join(b.dir, "growth-"+growthImage(layers, mb))
	dir := filepath.Join(base, "layout")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "bench: making the growth image %s (%d MiB in %d layer(s))\n", growthImage(layers, mb), mb, layers)
	img := empty.Image
	per := int64(mb) << 20 / int64(layers)
	for i := 0; i < layers; i++ {
		p := filepath.Join(base, fmt.Sprintf("layer-%d.tar", i))
		if err := writeRandomLayer(p, per, uint64(layers*100000+mb*100+i)); err != nil {
			return "", err
		}
		l, err := tarball.LayerFromFile(p, tarball.WithCompressionLevel(1))
		if err != nil {
			return "", err
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return "", err
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return "", err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", err
	}
	if err := lp.AppendImage(img); err != nil {
		return "", err
	}
	for i := 0; i < layers; i++ {
		os.Remove(filepath.Join(base, fmt.Sprintf("layer-%d.tar", i)))
	}
	return dir, nil
}
