// Command hoist builds container images once and pushes the same bytes to
// any number of registries. With no arguments it runs as a CI plugin
// configured by PLUGIN_* variables; see docs/settings.md.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/hoist-build/hoist/internal/cli"
)

func main() {
	// The process's own settings, made here and nowhere below: BuildKit's
	// client logs through logrus, and its warnings are not for users; in
	// the Kaniko image TMPDIR points into /kaniko, which may not exist yet.
	logrus.SetOutput(io.Discard)
	os.MkdirAll(os.TempDir(), 0o1777)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.OSEnv())
	stop()
	os.Exit(code)
}
