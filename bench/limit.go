package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

// The limit: the simplest client that can push an image whose blobs'
// digests it knows in advance (an OCI layout names its blobs by digest;
// go-containerregistry's docker-archive names its layers so). Every blob
// goes up in one monolithic PUT, jobs at a time, then the manifest; no
// existence check, no hashing, no retry. Its time is what the registry
// and the loopback absorb on this machine, against which hoist's push is
// judged (targets push-gzip-limit and push-oci-limit).

// limitBlob is one blob to upload: where its bytes are and its digest.
type limitBlob struct {
	file   string
	off    int64
	size   int64
	digest string
}

// limitImage is an image's blobs and its manifest.
type limitImage struct {
	blobs     []limitBlob
	manifest  []byte
	mediaType string
}

func cmdLimit(args []string) error {
	fs := flag.NewFlagSet("limit", flag.ExitOnError)
	src := fs.String("source", "", "an OCI layout directory, or a docker-archive written by go-containerregistry (layers named by their digests)")
	dest := fs.String("destination", "", "REGISTRY/REPOSITORY:TAG, over plain HTTP")
	jobs := fs.Int("jobs", 4, "blobs uploaded at once (hoist's --jobs default)")
	tags := fs.Int("tags", 1, "the manifest's tags: with more than 1, t1 … tN instead of the destination's, 16 written at once (as hoist writes them)")
	fs.Parse(args)
	if *src == "" || *dest == "" || *jobs < 1 || *tags < 1 {
		return errors.New("limit: want -source, -destination, -jobs ≥ 1 and -tags ≥ 1")
	}
	var img *limitImage
	var err error
	if st, serr := os.Stat(*src); serr == nil && st.IsDir() {
		img, err = limitLayout(*src)
	} else {
		img, err = limitArchive(*src)
	}
	if err != nil {
		return fmt.Errorf("limit: %s: %w", *src, err)
	}
	host, rest, ok := strings.Cut(*dest, "/")
	repo, tag, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return fmt.Errorf("limit: destination %q: want REGISTRY/REPOSITORY:TAG", *dest)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *jobs}, Timeout: cmdTimeout}
	base := "http://" + host + "/v2/" + repo
	// The blobs, jobs at a time.
	work := make(chan limitBlob)
	errs := make(chan error, len(img.blobs))
	var wg sync.WaitGroup
	for range *jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				errs <- limitUpload(ctx, c, base, b)
			}
		}()
	}
	for _, b := range img.blobs {
		work <- b
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return fmt.Errorf("limit: %w", err)
		}
	}
	names := []string{tag}
	if *tags > 1 {
		names = names[:0]
		for i := 1; i <= *tags; i++ {
			names = append(names, fmt.Sprintf("t%d", i))
		}
	}
	var g errgroup.Group
	g.SetLimit(16)
	for _, t := range names {
		g.Go(func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/manifests/"+t, strings.NewReader(string(img.manifest)))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", img.mediaType)
			return limitDo(c, req, http.StatusCreated)
		})
	}
	return g.Wait()
}

// limitUpload is one blob in one monolithic upload: POST for a session,
// PUT of the whole blob with its digest.
func limitUpload(ctx context.Context, c *http.Client, base string, b limitBlob) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/blobs/uploads/", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("start upload of %s: %s", b.digest, resp.Status)
	}
	loc, err := url.Parse(base)
	if err != nil {
		return err
	}
	if loc, err = loc.Parse(resp.Header.Get("Location")); err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", b.digest)
	loc.RawQuery = q.Encode()
	f, err := os.Open(b.file)
	if err != nil {
		return err
	}
	defer f.Close()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), io.NewSectionReader(f, b.off, b.size))
	if err != nil {
		return err
	}
	req.ContentLength = b.size
	req.Header.Set("Content-Type", "application/octet-stream")
	return limitDo(c, req, http.StatusCreated)
}

func limitDo(c *http.Client, req *http.Request, want int) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// limitLayout reads an OCI layout's only image: its manifest's blobs are
// files named by their digests.
func limitLayout(dir string) (*limitImage, error) {
	var index struct {
		Manifests []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
		} `json:"manifests"`
	}
	if err := readJSONFile(filepath.Join(dir, "index.json"), &index); err != nil {
		return nil, err
	}
	if len(index.Manifests) != 1 {
		return nil, fmt.Errorf("index.json lists %d manifests, want 1", len(index.Manifests))
	}
	blob := func(d string) string { return filepath.Join(dir, "blobs", strings.Replace(d, ":", "/", 1)) }
	m := index.Manifests[0]
	raw, err := os.ReadFile(blob(m.Digest))
	if err != nil {
		return nil, err
	}
	var man struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	if err := json.Unmarshal(raw, &man); err != nil {
		return nil, err
	}
	img := &limitImage{manifest: raw, mediaType: m.MediaType}
	for _, d := range append([]descriptor{man.Config}, man.Layers...) {
		img.blobs = append(img.blobs, limitBlob{file: blob(d.Digest), size: d.Size, digest: d.Digest})
	}
	return img, nil
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// limitArchive reads a docker-archive whose config and layers are named
// by their digests (go-containerregistry's tarball writer: the config
// sha256:HEX, each compressed layer HEX.tar.gz), and makes its Docker
// manifest.
func limitArchive(path string) (*limitImage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type entry struct{ off, size int64 }
	entries := map[string]entry{}
	var manifest []byte
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		entries[h.Name] = entry{off, h.Size}
		if h.Name == "manifest.json" {
			if manifest, err = io.ReadAll(io.LimitReader(tr, 1<<20)); err != nil {
				return nil, err
			}
		}
	}
	var dm []struct {
		Config string   `json:"Config"`
		Layers []string `json:"Layers"`
	}
	if err := json.Unmarshal(manifest, &dm); err != nil || len(dm) != 1 {
		return nil, fmt.Errorf("manifest.json: want one image (%v)", err)
	}
	named := func(file string) (limitBlob, error) {
		e, ok := entries[file]
		hex := strings.TrimSuffix(strings.TrimPrefix(file, "sha256:"), ".tar.gz")
		if !ok || len(hex) != 64 {
			return limitBlob{}, fmt.Errorf("%s is not a blob named by its digest", file)
		}
		return limitBlob{file: path, off: e.off, size: e.size, digest: "sha256:" + hex}, nil
	}
	cfg, err := named(dm[0].Config)
	if err != nil {
		return nil, err
	}
	img := &limitImage{blobs: []limitBlob{cfg}, mediaType: "application/vnd.docker.distribution.manifest.v2+json"}
	man := map[string]any{"schemaVersion": 2, "mediaType": img.mediaType,
		"config": descriptor{MediaType: "application/vnd.docker.container.image.v1+json", Digest: cfg.digest, Size: cfg.size}}
	var layers []descriptor
	for _, l := range dm[0].Layers {
		b, err := named(l)
		if err != nil {
			return nil, err
		}
		img.blobs = append(img.blobs, b)
		layers = append(layers, descriptor{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Digest: b.digest, Size: b.size})
	}
	man["layers"] = layers
	if img.manifest, err = json.Marshal(man); err != nil {
		return nil, err
	}
	return img, nil
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// limitRun is the limit's run of a push scenario: this program's limit
// command, timed as every tool is, recorded as the command that
// reproduces it.
func limitRun(src, app string, tags int) func(m *meas) error {
	return func(m *meas) error {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		args := []string{"limit", "-source", src, "-destination", m.regs[0] + app, "-jobs", "4"}
		if tags > 1 {
			args = append(args, "-tags", fmt.Sprint(tags))
		}
		s, stderr, err := runCmd(append([]string{self}, args...)...)
		m.record(s, "go run ./bench "+shellLine(args))
		m.stderr = stderr
		return err
	}
}
