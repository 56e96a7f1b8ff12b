package source

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// walk visits an artifact depth first: child for every manifest an index
// lists, image for every image. A child that cannot be opened is skipped
// and its error returned at the end, after the others were visited.
func walk(a Artifact, child func(v1.Descriptor), image func(v1.Image) error) error {
	switch x := a.(type) {
	case v1.Image:
		return image(x)
	case v1.ImageIndex:
		im, err := x.IndexManifest()
		if err != nil {
			return err
		}
		var first error
		for _, d := range im.Manifests {
			if child != nil {
				child(d)
			}
			var c Artifact
			switch {
			case d.MediaType.IsIndex():
				c, err = x.ImageIndex(d.Digest)
			case d.MediaType.IsImage():
				c, err = x.Image(d.Digest)
			default:
				continue
			}
			if err == nil {
				err = walk(c, child, image)
			}
			if first == nil {
				first = err
			}
		}
		return first
	}
	return nil
}

// walkImages calls fn for every image of an artifact.
func walkImages(a Artifact, fn func(v1.Image) error) error { return walk(a, nil, fn) }

// walkDescriptors calls fn for every blob and child manifest an artifact
// references, as far as they can be read.
func walkDescriptors(a Artifact, fn func(v1.Descriptor)) {
	walk(a, fn, func(img v1.Image) error {
		if m, err := img.Manifest(); err == nil {
			fn(m.Config)
			for _, l := range m.Layers {
				if l.MediaType.IsDistributable() {
					fn(l)
				}
			}
		}
		return nil
	})
}

// Blobs returns every distinct blob of the artifact with its size, for
// progress totals.
func Blobs(a Artifact) map[v1.Hash]int64 {
	out := map[v1.Hash]int64{}
	walkDescriptors(a, func(d v1.Descriptor) {
		if !d.MediaType.IsImage() && !d.MediaType.IsIndex() {
			out[d.Digest] = d.Size
		}
	})
	return out
}
