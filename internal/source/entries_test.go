package source

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hoist-build/hoist/internal/runid"
)

// entries reads a tar's headers and contents, in order.
func entries(t *testing.T, b []byte) (hdrs []*tar.Header, data [][]byte) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		d, _ := io.ReadAll(tr)
		hdrs, data = append(hdrs, h), append(data, d)
	}
}

// retar writes the entries again, each passed through edit first (which
// may add entries before it).
func retar(t *testing.T, b []byte, edit func(h *tar.Header, d []byte, add func(*tar.Header, []byte))) string {
	t.Helper()
	hdrs, data := entries(t, b)
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	add := func(h *tar.Header, d []byte) {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(d))
		} else {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(d)
	}
	for i, h := range hdrs {
		edit(h, data[i], add)
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "image.tar")
	os.WriteFile(p, out.Bytes(), 0o644)
	return p
}

// An archive's entries are named relative to its root, and its links
// name its own entries: an entry ../x or /x, and a symbolic or hard link
// that points out of the archive (absolute, or up past its root), are
// refused with an error that names the entry. Links between the
// archive's own entries (docker save writes them for repeated layers)
// still work, and a manifest.json that names a file outside the archive
// finds nothing: nothing outside the archive is ever read.
func TestArchiveEntriesStayInTheArchive(t *testing.T) {
	t.Parallel()
	docker, _ := seedArchives()
	hdrs, _ := entries(t, docker)
	cfgName, layerName := hdrs[0].Name, hdrs[1].Name
	open := func(p string) (*Image, error) {
		return Open(context.Background(), Request{TarPath: p, TempDir: t.TempDir(), KeepUncompressed: true})
	}
	refused := map[string]struct {
		edit func(h *tar.Header, d []byte, add func(*tar.Header, []byte))
		want string
	}{
		"../manifest.json": {func(h *tar.Header, d []byte, add func(*tar.Header, []byte)) {
			if h.Name == "manifest.json" {
				h.Name = "../manifest.json"
			}
			add(h, d)
		}, "the archive has an entry named ../manifest.json; an image archive names its files relative to its root, without .. or a leading /"},
		"/manifest.json": {func(h *tar.Header, d []byte, add func(*tar.Header, []byte)) {
			if h.Name == "manifest.json" {
				h.Name = "/manifest.json"
			}
			add(h, d)
		}, "the archive has an entry named /manifest.json"},
		"x/../../layer": {func(h *tar.Header, d []byte, add func(*tar.Header, []byte)) {
			if h.Name == layerName {
				h.Name = "x/../../" + layerName
			}
			add(h, d)
		}, "the archive has an entry named x/../../" + layerName},
		"symlink to an absolute path": {func(h *tar.Header, d []byte, add func(*tar.Header, []byte)) {
			if h.Name == cfgName {
				h.Typeflag, h.Linkname = tar.TypeSymlink, "/etc/passwd"
			}
			add(h, d)
		}, "entry " + cfgName + " is a link to /etc/passwd, outside the archive"},
		"symlink up past the root": {func(h *tar.Header, d []byte, add func(*tar.Header, []byte)) {
			if h.Name == layerName {
				h.Typeflag, h.Linkname = tar.TypeSymlink, "../../etc/passwd"
			}
			add(h, d)
		}, "entry " + layerName + " is a link to ../../etc/passwd, outside the archive"},
		"hard link to an absolute path": {func(h *tar.Header, d []byte, add func(*tar.Header, []byte)) {
			if h.Name == layerName {
				h.Typeflag, h.Linkname = tar.TypeLink, "/root/.docker/config.json"
			}
			add(h, d)
		}, "entry " + layerName + " is a link to /root/.docker/config.json, outside the archive"},
		"hard link up past the root": {func(h *tar.Header, d []byte, add func(*tar.Header, []byte)) {
			if h.Name == layerName {
				h.Typeflag, h.Linkname = tar.TypeLink, "../"+layerName
			}
			add(h, d)
		}, "entry " + layerName + " is a link to ../" + layerName + ", outside the archive"},
	}
	for what, c := range refused {
		img, err := open(retar(t, docker, c.edit))
		if err == nil {
			img.Close()
		}
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want ErrBadInput with %q", what, err, c.want)
		}
	}

	// Links inside the archive: the layer is a symbolic link to a copy
	// in a directory, the config a hard link to another copy.
	inside := retar(t, docker, func(h *tar.Header, d []byte, add func(*tar.Header, []byte)) {
		switch h.Name {
		case layerName:
			add(&tar.Header{Name: "copies/layer.tar.gz", Mode: 0o644, Typeflag: tar.TypeReg}, d)
			h.Typeflag, h.Linkname = tar.TypeSymlink, "copies/layer.tar.gz"
		case cfgName:
			add(&tar.Header{Name: "copies/config.json", Mode: 0o644, Typeflag: tar.TypeReg}, d)
			h.Typeflag, h.Linkname = tar.TypeLink, "./copies/config.json"
		}
		add(h, d)
	})
	img, err := open(inside)
	if err != nil {
		t.Fatalf("links inside the archive: %v", err)
	}
	defer img.Close()
	layers, err := img.Artifact.(v1.Image).Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %v, %v", layers, err)
	}
	if d, _ := layers[0].Digest(); d.Hex+".tar.gz" != layerName {
		t.Errorf("the layer read through the link is %s, want %s", d, layerName)
	}

	// manifest.json naming a file outside the archive finds nothing.
	outside := retar(t, docker, func(h *tar.Header, d []byte, add func(*tar.Header, []byte)) {
		if h.Name == "manifest.json" {
			d = []byte(strings.ReplaceAll(string(d), layerName, "../../../../etc/passwd"))
		}
		add(h, d)
	})
	img2, err := open(outside)
	if err == nil {
		_, err = img2.Artifact.(v1.Image).Layers()
		img2.Close()
	}
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "lacks the layer ../../../../etc/passwd named in manifest.json") {
		t.Errorf("a layer named outside the archive: %v", err)
	}
}

// A layout directory is read through os.Root: a blob that is a symbolic
// link out of the layout is refused, naming the blob, even when the file
// it points to holds exactly the blob's bytes (its digest would verify);
// a link to a file inside the layout is followed.
func TestLayoutLinksOutAreRefused(t *testing.T) {
	t.Parallel()
	_, oci := seedArchives()
	hdrs, data := entries(t, oci)
	layout := func() string {
		dir := filepath.Join(t.TempDir(), "layout")
		for i, h := range hdrs {
			p := filepath.Join(dir, h.Name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, data[i], 0o644)
		}
		return dir
	}
	// The blobs: manifest, config, layer, in the order seedArchives writes.
	manifest, cfg, layer := hdrs[2].Name, hdrs[3].Name, hdrs[4].Name
	for _, c := range []struct{ blob, what string }{{cfg, "blob"}, {layer, "blob"}, {manifest, "image manifest"}} {
		dir := layout()
		// The same bytes, outside the layout, and the blob a link to them.
		elsewhere := filepath.Join(t.TempDir(), "copy")
		b, _ := os.ReadFile(filepath.Join(dir, c.blob))
		os.WriteFile(elsewhere, b, 0o644)
		os.Remove(filepath.Join(dir, c.blob))
		os.Symlink(elsewhere, filepath.Join(dir, c.blob))
		img, err := Open(context.Background(), Request{TarPath: dir, TempDir: t.TempDir(), KeepUncompressed: true})
		if err == nil {
			img.Close()
		}
		want := c.blob + " (" + c.what + ") cannot be read"
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "a link in a layout must stay inside it") {
			t.Errorf("%s linked out of the layout: error %v, want ErrBadInput with %q", c.blob, err, want)
		}
	}

	// Inside: every blob a relative link to a copy in another directory
	// of the layout.
	dir := layout()
	for _, blob := range []string{manifest, cfg, layer} {
		os.MkdirAll(filepath.Join(dir, "copies"), 0o755)
		os.Rename(filepath.Join(dir, blob), filepath.Join(dir, "copies", filepath.Base(blob)))
		os.Symlink(filepath.Join("..", "..", "copies", filepath.Base(blob)), filepath.Join(dir, blob))
	}
	img, err := Open(context.Background(), Request{TarPath: dir, TempDir: t.TempDir(), KeepUncompressed: true})
	if err != nil {
		t.Fatalf("links inside the layout: %v", err)
	}
	defer img.Close()
	if img.Digest.Hex != filepath.Base(manifest) {
		t.Errorf("digest %s, want the layout's %s", img.Digest, manifest)
	}
}

// The workspace image store lies in the checkout, so it is read as a
// layout directory is, through os.Root: an entry whose layer blob is a
// symbolic link out of the store (even to the blob's very bytes) is
// refused, naming the blob, never read and sent as a layer.
func TestStoreLinksOutAreRefused(t *testing.T) {
	t.Parallel()
	_, oci := seedArchives()
	hdrs, data := entries(t, oci)
	layout := filepath.Join(t.TempDir(), "layout")
	for i, h := range hdrs {
		p := filepath.Join(layout, h.Name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, data[i], 0o644)
	}
	layer := hdrs[4].Name
	const ref = "registry.example.com/app:1"
	for _, single := range []bool{false, true} {
		store := filepath.Join(t.TempDir(), "images")
		if _, err := StoreImage(context.Background(), "", store, layout, []string{ref}, runid.Run{}); err != nil {
			t.Fatal(err)
		}
		elsewhere := filepath.Join(t.TempDir(), "copy")
		b, _ := os.ReadFile(filepath.Join(store, layer))
		os.WriteFile(elsewhere, b, 0o644)
		os.Remove(filepath.Join(store, layer))
		os.Symlink(elsewhere, filepath.Join(store, layer))
		req := Request{Image: ref, Store: store, TempDir: t.TempDir(), KeepUncompressed: true}
		if single {
			// The lone image a push-only step falls back to.
			req.Image, req.Fallbacks = "", []string{"other.example.com/app:1"}
		}
		img, err := Open(context.Background(), req)
		if err == nil {
			img.Close()
		}
		want := layer + " (blob) cannot be read"
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "a link in a layout must stay inside it") {
			t.Errorf("lone image %v: a layer linked out of the store: error %v, want ErrBadInput with %q", single, err, want)
		}
	}
}
