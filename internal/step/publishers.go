package step

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/daemon"
	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/publish"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/runid"
	"github.com/hoist-build/hoist/internal/source"
	"github.com/hoist-build/hoist/internal/tarball"
)

// Publisher is one place a step's image goes: the registries, a tarball,
// the Docker daemon, the workspace image store (as ko's
// publish.Interface). A new destination is a new Publisher, composed in
// runner.publishers; the step's flow does not change.
type Publisher interface {
	// Publish puts img where the publisher puts images and says what it
	// did.
	Publish(ctx context.Context, img *Image) (Published, error)
	// Close releases what the publisher holds; one that has not
	// published leaves nothing behind (no partial tarball).
	Close() error
}

// Streamer is a Publisher the build itself writes as it exports (a
// tarball, the daemon's load stream): one build serves every output, and
// no layer is read again. Stream, called before the build, adds the
// publisher's sink to out; Publish then completes it.
type Streamer interface {
	Publisher
	Stream(ctx context.Context, out *build.Outputs) error
}

// Image is what a publisher publishes: an image in an OCI layout
// directory, or in the daemon, or opened as a source (for the
// registries).
type Image struct {
	// Digest is the image's digest (the daemon's image id for a build in
	// the daemon).
	Digest string
	// Names are the references it goes under (repo:tag).
	Names []string
	// Layout is the OCI layout directory that holds it ("" when the
	// daemon does).
	Layout string
	// Daemon, when set, holds the image under Names.
	Daemon *daemon.Daemon
	// Source is the image opened for the registries; Check, when set,
	// runs alongside their uploads, before any manifest is written.
	Source *source.Image
	Check  func(context.Context) error
}

// Published is what a publisher did.
type Published struct {
	// Message says it, for the step's log ("" for none).
	Message string
	// Outputs are DRONE_OUTPUT keys it adds (IMAGE_TAR_PATH).
	Outputs map[string]string
	// Results are the registries' results, one per destination.
	Results []publish.Result
}

// publishers are the step's publishers, composed from its configuration:
// the build's own outputs (the daemon, the tarball, the image store, in
// that order), and the registries.
type publishers struct {
	side       []Publisher
	registries *registries
}

// publishers composes the step's publishers. This is the one place that
// knows which configuration makes which publisher. The daemon a build
// loads into is reached now: one that does not answer is known before the
// build.
func (r *runner) publishers(ctx context.Context) (*publishers, error) {
	p := &publishers{}
	if r.st.Mode.Pushes() {
		p.registries = &registries{dests: r.unskipped(), skip: r.loginFailed, opts: publish.Options{
			Access:      registry.Access{Transport: r.tr, Keychain: r.kc},
			Events:      r.pr.Push,
			Jobs:        r.st.Push.Jobs,
			MaxParallel: r.st.Push.MaxParallel,
			Retries:     r.st.Push.Retries,
			FailFast:    r.st.Push.FailFast,
			Progress:    r.pr,
		}}
		if r.st.Debug {
			p.registries.opts.Debugf = r.pr.Printf
		}
	}
	b := r.st.Build
	if b == nil || !r.st.Mode.Builds() {
		return p, nil
	}
	if b.Load {
		if r.daemon == nil {
			return nil, fmt.Errorf("%w: PLUGIN_BUILDX_LOAD needs the Docker daemon, and this step may not use one", ErrInvalid)
		}
		if _, err := r.daemon.Client(ctx); err != nil {
			return nil, fmt.Errorf("%w: PLUGIN_BUILDX_LOAD loads into the Docker daemon at DOCKER_HOST: %w", engine.ErrEngine, err)
		}
		if !b.InDaemon {
			// A build in the daemon is there already.
			p.side = append(p.side, &daemonLoad{d: r.daemon})
		}
	}
	if b.TarPath != "" {
		p.side = append(p.side, &tarFile{ws: r.st.Workspace, path: b.TarPath, format: b.TarFormat, shown: r.st.Outputs.TarPath})
	}
	if b.Store != "" {
		p.side = append(p.side, &imageStore{ws: r.st.Workspace, dir: b.Store, run: r.st.Run})
	}
	if b.FSType != "" {
		p.side = append(p.side, &fsExport{ws: r.st.Workspace, typ: b.FSType, dest: b.FSDest})
	}
	return p, nil
}

// stream has every streaming publisher add its sink to the build's
// outputs.
func (p *publishers) stream(ctx context.Context, out *build.Outputs) error {
	for _, s := range p.side {
		if s, ok := s.(Streamer); ok {
			if err := s.Stream(ctx, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// publishSide publishes img to the build's own outputs, in order, and
// returns the DRONE_OUTPUT keys they add; logf says what each did.
func (p *publishers) publishSide(ctx context.Context, img *Image, logf func(string, ...any)) (map[string]string, error) {
	extra := map[string]string{}
	for _, s := range p.side {
		res, err := s.Publish(ctx, img)
		if err != nil {
			return extra, err
		}
		if res.Message != "" {
			logf("%s", res.Message)
		}
		for k, v := range res.Outputs {
			extra[k] = v
		}
	}
	return extra, nil
}

// close closes every publisher (those that did not publish leave nothing)
// and returns the first error.
func (p *publishers) close() error {
	var first error
	for _, s := range p.side {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// registries publishes to every destination at once (publish.Push):
// blobs once per repository, tags last, digests read back. A destination
// whose registry's credentials could not be had (skip, with
// PLUGIN_PARTIAL_LOGIN) fails without a request.
type registries struct {
	dests []name.Tag
	skip  map[string]error
	opts  publish.Options
}

// pushed are the destinations that are pushed to.
func (p *registries) pushed() []name.Tag {
	var out []name.Tag
	for _, d := range p.dests {
		if p.skip[d.RegistryStr()] == nil {
			out = append(out, d)
		}
	}
	return out
}

func (p *registries) Publish(ctx context.Context, img *Image) (Published, error) {
	if img.Source == nil {
		return Published{}, fmt.Errorf("publish to the registries: no image opened")
	}
	o := p.opts
	o.ContentCheck = img.Check
	results := publish.Push(ctx, img.Source.Artifact, p.pushed(), o)
	for _, d := range p.dests {
		if err := p.skip[d.RegistryStr()]; err != nil {
			results = append(results, publish.Result{Ref: d.Name(), Status: "failed", Err: fmt.Errorf("%w: %w", publish.ErrPush, err)})
		}
	}
	return Published{Results: results}, nil
}

func (p *registries) Close() error { return nil }

// tarFile writes the image as a tarball (docker or OCI format) at path,
// atomically: the build streams it (Stream), or it is written from the
// image's layout, or saved from the daemon. shown is the path as the user
// gave it, for IMAGE_TAR_PATH.
type tarFile struct {
	ws                  files.Workspace
	path, format, shown string
	tar                 *files.Atomic
	streamed            bool
}

func (p *tarFile) Stream(ctx context.Context, out *build.Outputs) error {
	tar, err := createTar(p.ws, p.path)
	if err != nil {
		return err
	}
	p.tar, p.streamed = tar, true
	out.Tar, out.TarFormat = tar, p.format
	return nil
}

func (p *tarFile) Publish(ctx context.Context, img *Image) (Published, error) {
	what := fmt.Sprintf("wrote %s tarball %s", p.format, p.path)
	if !p.streamed {
		tar, err := createTar(p.ws, p.path)
		if err != nil {
			return Published{}, err
		}
		p.tar = tar
		switch {
		case img.Layout != "":
			err = tarball.Write(ctx, tar, img.Layout, tarball.Format(p.format), img.Names)
		case img.Daemon != nil && p.format == "docker":
			err, what = img.Daemon.Save(ctx, img.Names, tar), "saved docker tarball "+p.path
		case img.Daemon != nil:
			err = fmt.Errorf("%w: the Docker daemon saves docker tarballs only, not %s", ErrInvalid, p.format)
		default:
			err = fmt.Errorf("tarball %s: no image to write", p.path)
		}
		if err != nil {
			return Published{}, err
		}
	}
	if err := p.tar.Commit(); err != nil {
		return Published{}, err
	}
	return Published{Message: what, Outputs: map[string]string{"IMAGE_TAR_PATH": p.shown}}, nil
}

func (p *tarFile) Close() error {
	if p.tar != nil {
		p.tar.Abort()
	}
	return nil
}

// createTar starts the atomic write of the tarball at path; its directory
// is made first, with the peers' message when that fails. In the
// workspace no link that leads out of it is followed.
func createTar(ws files.Workspace, path string) (*files.Atomic, error) {
	if err := ws.MkdirAll(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("%w: failed to create directory for tar path %s: %w", ErrInvalid, filepath.Dir(path), err)
	}
	tar, err := ws.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%w: tar path: %w", ErrInvalid, err)
	}
	return tar, nil
}

// daemonLoad loads the image into the Docker daemon under its names: the
// build streams a docker tarball into the daemon's load (Stream), or it is
// written from the image's layout. Nothing is held in memory or on disk
// on the way.
type daemonLoad struct {
	d    *daemon.Daemon
	pw   *io.PipeWriter
	done chan error
}

// start starts the daemon's load of what is written to p.pw.
func (p *daemonLoad) start(ctx context.Context) {
	pr, pw := io.Pipe()
	p.pw, p.done = pw, make(chan error, 1)
	go func() {
		err := p.d.Load(ctx, pr)
		pr.CloseWithError(err)
		p.done <- err
	}()
}

func (p *daemonLoad) Stream(ctx context.Context, out *build.Outputs) error {
	p.start(ctx)
	out.Load = p.pw
	return nil
}

func (p *daemonLoad) Publish(ctx context.Context, img *Image) (Published, error) {
	if p.pw == nil {
		if img.Layout == "" {
			return Published{}, fmt.Errorf("load into %s: no image layout to load", p.d)
		}
		p.start(ctx)
		err := tarball.Write(ctx, p.pw, img.Layout, tarball.Docker, img.Names)
		p.pw.CloseWithError(err)
	} else {
		p.pw.Close()
	}
	err := <-p.done
	p.pw = nil
	if err != nil {
		return Published{}, fmt.Errorf("%w: %w", build.ErrBuild, err)
	}
	return Published{Message: fmt.Sprintf("loaded into %s as %s", p.d, strings.Join(img.Names, ", "))}, nil
}

// errNotPublished ends a daemon load whose image was not published (the
// build failed).
var errNotPublished = fmt.Errorf("the image was not built")

func (p *daemonLoad) Close() error {
	if p.pw != nil {
		p.pw.CloseWithError(errNotPublished)
		<-p.done
		p.pw = nil
	}
	return nil
}

// imageStore records the image (an OCI layout) in the workspace image
// store under its names, for a push-only step of the same run: blobs are
// hard-linked when both are on one filesystem (the step builds into a
// directory of the store for that).
type imageStore struct {
	ws  files.Workspace
	dir string
	run runid.Run
}

func (p *imageStore) Publish(ctx context.Context, img *Image) (Published, error) {
	if img.Layout == "" {
		return Published{}, fmt.Errorf("image store %s: no image layout to record", p.dir)
	}
	if _, err := source.StoreImage(ctx, p.ws, p.dir, img.Layout, img.Names, p.run); err != nil {
		return Published{}, err
	}
	return Published{Message: fmt.Sprintf("recorded in the workspace image store %s as %s", p.dir, strings.Join(img.Names, ", "))}, nil
}

func (p *imageStore) Close() error { return nil }
