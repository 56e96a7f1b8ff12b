//go:build tools

// Package tools pins the cosign CLI that hoist's tests verify signatures
// and attestations with: an independent client, not hoist's own code. A
// module of its own, so that the CLI's dependencies do not touch hoist's.
package tools

import _ "github.com/sigstore/cosign/v3/cmd/cosign"
