package main

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// pushInputs are one image in the three forms pushed.
type pushInputs struct {
	gz, save, oci string // gzip docker-archive, docker save (uncompressed), OCI layout
	tag           string // the name inside the archives
}

// pushScenarios compare hoist's push-only with crane, skopeo and the
// legacy docker load + docker push, image by image form, then to four
// registries at once, then the re-push of an image already there.
func (b *bench) pushScenarios(in *pushInputs, size int) []scenario {
	const app = "/bench/app:1"
	// Every measurement starts with an empty compression cache (the
	// workspace's .hoist/compressed): the cost of one run of one step.
	cache := filepath.Join(b.dir, "compressed")
	hoistArgs := func(src string, regs ...string) []string {
		args := []string{hoistBin, "push", "--source-tar-path", src, "--progress", "quiet", "--daemon-off", "--compress-cache", cache}
		for _, r := range regs {
			args = append(args, "--destination", r+app)
		}
		return args
	}
	hoistPush := func(src string, n int) func(m *meas) error {
		return func(m *meas) error {
			if err := os.RemoveAll(cache); err != nil {
				return err
			}
			return m.exec(hoistArgs(src, m.regs[:n]...)...)
		}
	}
	oneDigest := func(n int) func(m *meas) error {
		return func(m *meas) error {
			var first string
			for _, r := range m.regs[:n] {
				ref, err := name.ParseReference(r + app)
				if err != nil {
					return err
				}
				d, err := remote.Head(ref)
				if err != nil {
					return fmt.Errorf("%s is not in its registry: %w", ref, err)
				}
				if first == "" {
					first = d.Digest.String()
				} else if d.Digest.String() != first {
					return fmt.Errorf("%s holds %s, the first registry %s", ref, d.Digest, first)
				}
			}
			return nil
		}
	}
	pushedTo := func(n int) func(m *meas) error {
		return func(m *meas) error {
			var refs []string
			for _, r := range m.regs[:n] {
				refs = append(refs, r+app)
			}
			return inRegistry(refs...)
		}
	}
	crane := func(src string) tool {
		return tool{id: "crane", title: "crane", verify: pushedTo(1), run: func(m *meas) error { return m.exec(craneBin, "push", src, m.regs[0]+app) }}
	}
	skopeo := func(src string) tool {
		return tool{id: "skopeo", title: "skopeo", verify: pushedTo(1), run: func(m *meas) error {
			return m.exec("skopeo", "copy", "-q", "--dest-tls-verify=false", src, "docker://"+m.regs[0]+app)
		}}
	}
	docker := func(src string) tool {
		return tool{id: "docker", title: "docker load+push", verify: pushedTo(1), run: func(m *meas) error {
			if err := dockerForget(in.tag); err != nil {
				return err
			}
			ref := m.regs[0] + app
			return m.shell("docker load -q -i " + src + " >/dev/null && docker tag " + in.tag + " " + ref + " && docker push -q " + ref + " >/dev/null")
		}}
	}
	one := func(id, title, src string, others ...tool) scenario {
		return scenario{suite: "push", id: id, title: title, size: size, registries: 1,
			tools: append([]tool{{id: "hoist", title: "hoist", run: hoistPush(src, 1), verify: pushedTo(1)}}, others...)}
	}
	parallel := func(n int, argv func(reg string) []string) func(m *meas) error {
		return func(m *meas) error {
			var cmds [][]string
			for _, r := range m.regs[:n] {
				cmds = append(cmds, argv(r))
			}
			return m.parallel(cmds)
		}
	}
	limit := func(src string) tool {
		return tool{id: "limit", title: "the limit (monolithic PUTs, digests known, 4 at once)", verify: pushedTo(1), run: limitRun(src, app, 1)}
	}
	return []scenario{
		one("gzip-1reg", "gzip docker-archive → 1 registry", in.gz, crane(in.gz), skopeo("docker-archive:"+in.gz), docker(in.gz), limit(in.gz)),
		one("save-1reg", "uncompressed docker save → 1 registry", in.save, crane(in.save), skopeo("docker-archive:"+in.save), docker(in.save)),
		one("oci-1reg", "OCI layout → 1 registry", in.oci, crane(in.oci), skopeo("oci:"+in.oci+":1"), limit(in.oci)),
		{suite: "push", id: "gzip-4reg", title: "gzip docker-archive → 4 registries", size: size, registries: 4, tools: []tool{
			{id: "hoist", title: "hoist", run: hoistPush(in.gz, 4), verify: pushedTo(4)},
			{id: "hoist-save", title: "hoist (from the uncompressed docker save)", run: hoistPush(in.save, 4), verify: pushedTo(4)},
			{id: "crane", title: "4 × crane in parallel", verify: pushedTo(4), run: parallel(4, func(r string) []string {
				return []string{craneBin, "push", in.gz, r + app}
			})},
			{id: "skopeo", title: "4 × skopeo in parallel", verify: pushedTo(4), run: parallel(4, func(r string) []string {
				return []string{"skopeo", "copy", "-q", "--dest-tls-verify=false", "docker-archive:" + in.gz, "docker://" + r + app}
			})},
		}},
		// The mission's workflow: four push-only steps at once, each its
		// own process, from one uncompressed tarball in one workspace.
		{suite: "push", id: "save-4steps", title: "uncompressed docker save → 4 push-only steps at once", size: size, registries: 4, tools: []tool{
			{id: "hoist", title: "4 × hoist in parallel, one workspace (compression cache)", verify: oneDigest(4), run: func(m *meas) error {
				if err := os.RemoveAll(cache); err != nil {
					return err
				}
				return parallel(4, func(r string) []string { return hoistArgs(in.save, r) })(m)
			}},
			{id: "hoist-nocache", title: "4 × hoist in parallel, no compression cache", verify: oneDigest(4), run: parallel(4, func(r string) []string {
				return append(hoistArgs(in.save, r), "--compress-cache=")
			})},
			{id: "crane", title: "4 × crane in parallel", verify: pushedTo(4), run: parallel(4, func(r string) []string {
				return []string{craneBin, "push", in.save, r + app}
			})},
			{id: "skopeo", title: "4 × skopeo in parallel", verify: pushedTo(4), run: parallel(4, func(r string) []string {
				return []string{"skopeo", "copy", "-q", "--dest-tls-verify=false", "docker-archive:" + in.save, "docker://" + r + app}
			})},
		}},
		{suite: "push", id: "repush", title: "re-push of a present image", size: size, registries: 4,
			prepare: hoistPush(in.gz, 4),
			tools: []tool{
				{id: "hoist-1", title: "hoist, 1 destination", run: hoistPush(in.gz, 1), verify: pushedTo(1)},
				{id: "hoist-4", title: "hoist, 4 destinations", run: hoistPush(in.gz, 4), verify: pushedTo(4)},
			}},
	}
}

// pushSuite measures the push scenarios on an image of size MiB.
func (b *bench) pushSuite(size int) error {
	scs := b.pushScenarios(&pushInputs{}, size)
	if !b.wanted(scs) {
		return nil
	}
	in, err := b.makePushInputs(size)
	if err != nil {
		return fmt.Errorf("making the %d MiB push inputs: %w", size, err)
	}
	return b.measureEach(b.pushScenarios(in, size))
}

// inRegistry checks, with go-containerregistry rather than the tool that
// pushed, that every reference resolves in its registry.
func inRegistry(refs ...string) error {
	for _, r := range refs {
		ref, err := name.ParseReference(r)
		if err != nil {
			return err
		}
		if _, err := remote.Head(ref); err != nil {
			return fmt.Errorf("%s is not in its registry: %w", r, err)
		}
	}
	return nil
}

// layersFor is the number of layers of an image of mb MiB.
func layersFor(mb int) int {
	if mb >= 256 {
		return 8
	}
	return 4
}

// makePushInputs writes, once per size, a deterministic image of
// incompressible random layers as a gzip docker-archive (go-containerregistry's
// writer, as crane and kaniko write them), as docker save writes it after
// docker load, and as skopeo writes an OCI layout.
func (b *bench) makePushInputs(mb int) (*pushInputs, error) {
	base := filepath.Join(b.dir, fmt.Sprintf("img-%dm", mb))
	in := &pushInputs{
		tag: fmt.Sprintf("hoist-bench/app:%dm", mb),
		gz:  filepath.Join(base, "image-gzip.tar"), save: filepath.Join(base, "docker-save.tar"), oci: filepath.Join(base, "layout"),
	}
	if _, err := os.Stat(filepath.Join(in.oci, "index.json")); err == nil {
		return in, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	n := layersFor(mb)
	img := empty.Image
	for i := 0; i < n; i++ {
		p := filepath.Join(base, fmt.Sprintf("layer-%d.tar", i))
		if err := writeRandomLayer(p, int64(mb)<<20/int64(n), uint64(mb*1000+i)); err != nil {
			return nil, err
		}
		l, err := tarball.LayerFromFile(p)
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return nil, err
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Cmd = []string{"/bin/sh"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	tag, err := name.NewTag(in.tag)
	if err != nil {
		return nil, err
	}
	if err := tarball.WriteToFile(in.gz, tag, img); err != nil {
		return nil, err
	}
	for _, argv := range [][]string{
		{"docker", "load", "-q", "-i", in.gz},
		{"docker", "save", "-o", in.save, in.tag},
		{"skopeo", "copy", "-q", "docker-archive:" + in.gz, "oci:" + in.oci + ":1"},
	} {
		if err := must(argv...); err != nil {
			return nil, err
		}
	}
	if err := dockerForget(in.tag); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		os.Remove(filepath.Join(base, fmt.Sprintf("layer-%d.tar", i)))
	}
	return in, nil
}

// writeRandomLayer writes a layer tar with one file of incompressible,
// deterministic bytes.
func writeRandomLayer(p string, size int64, seed uint64) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/%d.bin", seed), Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}); err != nil {
		return err
	}
	if err := writeRandom(tw, size, seed); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// writeRandom writes size deterministic, incompressible bytes.
func writeRandom(w io.Writer, size int64, seed uint64) error {
	var key [32]byte
	for i := range key {
		key[i] = byte(seed >> (8 * (i % 8)))
	}
	_, err := io.CopyN(w, rand.NewChaCha8(key), size)
	return err
}

// dockerForget removes the benchmark's images from the Docker daemon, so
// that a docker load or build starts from nothing.
func dockerForget(tags ...string) error {
	for _, t := range tags {
		// A missing image is not an error here.
		runCmd("docker", "rmi", "-f", t)
	}
	_, _, err := sh("docker images -q --filter reference='127.0.0.1:*/bench/*' | xargs -r docker rmi -f >/dev/null")
	return err
}
