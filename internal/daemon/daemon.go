// Package daemon talks to a Docker daemon through the Docker client
// library: finding an image, saving it as a stream, listing near misses.
package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// Daemon is a lazily connected Docker daemon.
type Daemon struct {
	Host string

	once sync.Once
	cli  *client.Client
	err  error
}

// New returns a daemon at host (for example unix:///var/run/docker.sock);
// nothing is contacted until it is used.
func New(host string) *Daemon { return &Daemon{Host: host} }

// Client connects and pings the daemon once, within a few seconds.
func (d *Daemon) Client(ctx context.Context) (*client.Client, error) {
	d.once.Do(func() {
		opts := []client.Opt{client.WithAPIVersionNegotiation()}
		if d.Host != "" {
			opts = append(opts, client.WithHost(d.Host))
		}
		c, err := client.NewClientWithOpts(opts...)
		if err != nil {
			d.err = fmt.Errorf("docker daemon %s: %w", d.Host, err)
			return
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := c.Ping(pctx); err != nil {
			c.Close()
			d.err = fmt.Errorf("docker daemon %s is not reachable: %w", d.Host, err)
			return
		}
		d.cli = c
	})
	return d.cli, d.err
}

// Has reports whether the daemon has an image by this reference.
func (d *Daemon) Has(ctx context.Context, ref string) (bool, error) {
	c, err := d.Client(ctx)
	if err != nil {
		return false, err
	}
	_, err = c.ImageInspect(ctx, ref)
	if client.IsErrNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect %s in docker daemon %s: %w", ref, d.Host, err)
	}
	return true, nil
}

// Save streams `docker save refs...` into w.
func (d *Daemon) Save(ctx context.Context, refs []string, w io.Writer) error {
	c, err := d.Client(ctx)
	if err != nil {
		return err
	}
	rc, err := c.ImageSave(ctx, refs)
	if err == nil {
		_, err = io.Copy(w, rc)
		rc.Close()
	}
	if err != nil {
		return fmt.Errorf("save %s from docker daemon %s: %w", strings.Join(refs, " "), d.Host, err)
	}
	return nil
}

// SaveToFile saves refs into a new file in dir and returns its path; the
// caller removes or renames it.
func (d *Daemon) SaveToFile(ctx context.Context, refs []string, dir string) (string, error) {
	f, err := os.CreateTemp(dir, "hoist-daemon-*.tar")
	if err != nil {
		return "", err
	}
	err = d.Save(ctx, refs, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// TagsOf lists the daemon's repo:tag names of one repository, for the
// "did you mean" part of an error.
func (d *Daemon) TagsOf(ctx context.Context, repo string) []string {
	c, err := d.Client(ctx)
	if err != nil {
		return nil
	}
	imgs, err := c.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", repo))})
	if err != nil {
		return nil
	}
	var out []string
	for _, im := range imgs {
		out = append(out, im.RepoTags...)
	}
	sort.Strings(out)
	return out
}

// String names the daemon for messages.
func (d *Daemon) String() string {
	return "docker daemon at " + d.Host
}

// Load streams a docker-format tarball into the daemon (docker load).
func (d *Daemon) Load(ctx context.Context, r io.Reader) error {
	c, err := d.Client(ctx)
	if err != nil {
		return err
	}
	resp, err := c.ImageLoad(ctx, r, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("load into %s: %w", d, err)
	}
	defer resp.Body.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil); err != nil {
		return fmt.Errorf("load into %s: %w", d, err)
	}
	return nil
}
