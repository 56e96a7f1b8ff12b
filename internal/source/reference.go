package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/hoist-build/hoist/internal/daemon"
	"github.com/hoist-build/hoist/internal/registry"
)

// Daemon is the Docker daemon a source may be found in.
type Daemon = daemon.Daemon

// ParseReference parses a source image reference the way the peers do:
// a missing tag, or an empty one ("image:"), means latest;
// "registry:5000/image" has no tag (the colon belongs to the port);
// name@sha256:... is a digest reference.
func ParseReference(s string, insecure bool) (name.Reference, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, ":")
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(s, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid image reference %q: %w", ErrBadInput, s, err)
	}
	return ref, nil
}

// openReference looks for ref in the daemon, then in its registry.
func openReference(ctx context.Context, r Request, s string) (*Image, error) {
	ref, err := ParseReference(s, r.Insecure)
	if err != nil {
		return nil, err
	}
	var notes []string
	if img, note, err := fromStore(ctx, r, ref); img != nil || err != nil {
		return img, err
	} else if note != "" {
		notes = append(notes, note)
	}
	if r.Daemon != nil {
		img, note, err := fromDaemon(ctx, r, ref)
		if img != nil || err != nil {
			return img, err
		}
		notes = append(notes, note)
	} else {
		notes = append(notes, "the docker daemon was not consulted")
	}
	return fromRegistry(ctx, r, ref, notes)
}

// OpenRemote opens r.Image in its registry only: not the workspace image
// store nor the Docker daemon (hoist promote copies registry to registry).
func OpenRemote(ctx context.Context, r Request) (*Image, error) {
	ref, err := ParseReference(r.Image, r.Insecure)
	if err != nil {
		return nil, err
	}
	return fromRegistry(ctx, r, ref, nil)
}

// fromRegistry opens ref in its registry; notes say where it was looked
// for before.
func fromRegistry(ctx context.Context, r Request, ref name.Reference, notes []string) (*Image, error) {
	desc, err := remote.Get(ref, r.Access.Options(ctx)...)
	if err == nil {
		img := &Image{From: "registry image " + ref.Name()}
		if desc.MediaType.IsIndex() {
			img.Artifact, err = desc.ImageIndex()
		} else {
			img.Artifact, err = desc.Image()
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", ref.Name(), err)
		}
		img.Digest = desc.Digest
		return img, nil
	}
	if registry.Unavailable(err) {
		// Not "not found": the registry could not say.
		notes = append(notes, "registry "+ref.Context().RegistryStr()+" "+registry.HowUnavailable(err)+": "+shortRemoteError(err))
		return nil, failure(err, ErrUnavailable, "source image %s was found nowhere: %s", ref.Name(), strings.Join(notes, "; "))
	}
	notes = append(notes, "registry "+ref.Context().RegistryStr()+": "+shortRemoteError(err))
	return nil, failure(err, ErrNotFound, "source image %s was found nowhere: %s", ref.Name(), strings.Join(notes, "; "))
}

// fromStore looks in the workspace image store.
func fromStore(ctx context.Context, r Request, ref name.Reference) (*Image, string, error) {
	if r.Store == "" {
		return nil, "", nil
	}
	img, note, err := openStore(ctx, r, ref.Name())
	if err != nil || img != nil {
		return img, "", err
	}
	if note != "" {
		return nil, note, nil
	}
	return nil, "the workspace image store " + r.Store + " has no " + ref.Name(), nil
}

// fromDaemon returns the image, or a note saying why it is not there.
func fromDaemon(ctx context.Context, r Request, ref name.Reference) (*Image, string, error) {
	d := r.Daemon
	want := daemonName(ref)
	has, err := d.Has(ctx, want)
	if err != nil {
		return nil, err.Error(), nil
	}
	if !has {
		note := d.String() + " has no image " + want
		if tags := d.TagsOf(ctx, daemonRepo(ref)); len(tags) > 0 {
			note += " (it has " + strings.Join(tags, ", ") + ")"
		}
		return nil, note, nil
	}
	path, err := d.SaveToFile(ctx, []string{want}, r.TempDir)
	if err != nil {
		return nil, "", err
	}
	rr := r
	rr.TarPath, rr.Image = path, want
	img, err := openPath(ctx, rr)
	if err != nil {
		os.Remove(path)
		return nil, "", err
	}
	img.closers = append([]func() error{func() error { return os.Remove(path) }}, img.closers...)
	img.From = d.String() + " (" + want + ")"
	return img, "", nil
}

// daemonName is how the Docker daemon names a reference: Docker Hub
// images without their registry.
func daemonName(ref name.Reference) string {
	s := ref.Name()
	if ref.Context().RegistryStr() == name.DefaultRegistry {
		s = strings.TrimPrefix(s, name.DefaultRegistry+"/")
		s = strings.TrimPrefix(s, "library/")
	}
	return s
}

func daemonRepo(ref name.Reference) string {
	s := daemonName(ref)
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return s[:i]
	}
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		return s[:i]
	}
	return s
}

// openFallbacks is push-only with neither a tarball nor a source image: the
// image must be in the daemon under the destination's own name.
func openFallbacks(ctx context.Context, r Request) (*Image, error) {
	var notes []string
	for _, f := range r.Fallbacks {
		ref, err := ParseReference(f, r.Insecure)
		if err != nil {
			return nil, err
		}
		if img, note, err := fromStore(ctx, r, ref); img != nil || err != nil {
			return img, err
		} else if note != "" && len(notes) == 0 {
			notes = append(notes, note)
		}
	}
	img, note, err := openStoreSingle(ctx, r)
	if img != nil || err != nil {
		return img, err
	}
	if note != "" {
		notes = append(notes, note)
	}
	if len(r.Fallbacks) == 0 {
		if len(notes) > 0 {
			return nil, fmt.Errorf("%w: nothing to push: no PLUGIN_SOURCE_TAR_PATH or PLUGIN_SOURCE_IMAGE is set and %s", ErrNotFound, strings.Join(notes, "; "))
		}
		return nil, fmt.Errorf("%w: nothing to push: set PLUGIN_SOURCE_TAR_PATH (--source-tar-path) or PLUGIN_SOURCE_IMAGE (--source-image)", ErrNotFound)
	}
	if r.Daemon == nil {
		notes = append(notes, "the docker daemon was not consulted")
		return nil, fmt.Errorf("%w: nothing to push: no PLUGIN_SOURCE_TAR_PATH or PLUGIN_SOURCE_IMAGE is set and %s", ErrNotFound, strings.Join(notes, "; "))
	}
	for _, f := range r.Fallbacks {
		ref, err := ParseReference(f, r.Insecure)
		if err != nil {
			return nil, err
		}
		img, note, err := fromDaemon(ctx, r, ref)
		if img != nil || err != nil {
			return img, err
		}
		notes = append(notes, note)
		if strings.Contains(note, "not reachable") {
			break
		}
	}
	return nil, fmt.Errorf("%w: nothing to push: no PLUGIN_SOURCE_TAR_PATH or PLUGIN_SOURCE_IMAGE is set and %s", ErrNotFound, strings.Join(notes, "; "))
}

func shortRemoteError(err error) string {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return "not found"
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Sprintf("access denied (%d); check the credentials for this registry", terr.StatusCode)
		}
	}
	return registry.TLSAdvice(err).Error()
}
