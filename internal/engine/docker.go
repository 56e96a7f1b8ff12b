package engine

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/hoist-build/hoist/internal/daemon"
)

// OpenDocker connects to the BuildKit built into the Docker daemon, through
// the daemon's /grpc and /session endpoints (what buildx's docker driver
// does). Its images land in the daemon's image store.
func OpenDocker(ctx context.Context, d *daemon.Daemon, wait time.Duration) (*Engine, error) {
	dc, err := d.Client(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEngine, err)
	}
	c, err := client.New(ctx, "",
		client.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return dc.DialHijack(ctx, "/grpc", "h2c", nil)
		}),
		client.WithSessionDialer(func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return dc.DialHijack(ctx, "/session", proto, meta)
		}))
	if err != nil {
		return nil, fmt.Errorf("%w: BuildKit of %s: %w", ErrEngine, d, err)
	}
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if _, err := c.ListWorkers(pctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: the BuildKit of %s does not answer: %w", ErrEngine, d, err)
	}
	return &Engine{Client: c, Addr: "docker:" + d.Host, Docker: true}, nil
}
