package publish

import (
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// mountable wraps an artifact so that every blob is offered for a
// cross-repository mount from another repository of the same registry,
// which already holds it: the registry links the blob instead of receiving
// it again.
func mountable(a any, from name.Reference) any {
	switch x := a.(type) {
	case v1.Image:
		return &mountImage{Image: x, from: from}
	case v1.ImageIndex:
		return &mountIndex{inner: x, from: from}
	}
	return a
}

type mountImage struct {
	v1.Image
	from name.Reference
}

func (m *mountImage) wrap(l v1.Layer) v1.Layer {
	return &remote.MountableLayer{Layer: l, Reference: m.from}
}

func (m *mountImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = m.wrap(l)
	}
	return out, nil
}

func (m *mountImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := m.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return m.wrap(l), nil
}

func (m *mountImage) ConfigLayer() (v1.Layer, error) {
	l, err := partial.ConfigLayer(m.Image)
	if err != nil {
		return nil, err
	}
	return m.wrap(l), nil
}

func (m *mountImage) Descriptor() (*v1.Descriptor, error) { return partial.Descriptor(m.Image) }

// mountIndex cannot embed v1.ImageIndex: its ImageIndex method would clash
// with the embedded field's name.
type mountIndex struct {
	inner v1.ImageIndex
	from  name.Reference
}

func (m *mountIndex) MediaType() (types.MediaType, error)       { return m.inner.MediaType() }
func (m *mountIndex) Digest() (v1.Hash, error)                  { return m.inner.Digest() }
func (m *mountIndex) Size() (int64, error)                      { return m.inner.Size() }
func (m *mountIndex) IndexManifest() (*v1.IndexManifest, error) { return m.inner.IndexManifest() }
func (m *mountIndex) RawManifest() ([]byte, error)              { return m.inner.RawManifest() }
func (m *mountIndex) Descriptor() (*v1.Descriptor, error)       { return partial.Descriptor(m.inner) }

func (m *mountIndex) Image(h v1.Hash) (v1.Image, error) {
	img, err := m.inner.Image(h)
	if err != nil {
		return nil, err
	}
	return &mountImage{Image: img, from: m.from}, nil
}

func (m *mountIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	idx, err := m.inner.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	return &mountIndex{inner: idx, from: m.from}, nil
}
