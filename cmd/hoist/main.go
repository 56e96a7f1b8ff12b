// Command hoist builds container images once and pushes the same bytes to
// any number of registries. With no arguments it runs as a CI plugin
// configured by PLUGIN_* variables; see docs/settings.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hoist-build/hoist/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.OSEnv())
	stop()
	os.Exit(code)
}
