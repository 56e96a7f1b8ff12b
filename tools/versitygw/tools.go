//go:build tools

// Package tools records versitygw (an S3 server over a directory, the
// real S3 the layer-cache tests use) as a dependency of this module;
// build it with `go build github.com/versity/versitygw/cmd/versitygw`.
package tools

import _ "github.com/versity/versitygw/cmd/versitygw"
