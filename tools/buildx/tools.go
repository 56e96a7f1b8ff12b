//go:build tools

// Package tools records the buildx CLI plugin as a dependency of this
// module; build it with `go build github.com/docker/buildx/cmd/buildx`.
package tools

import _ "github.com/docker/buildx/cmd/buildx"
