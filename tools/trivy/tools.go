//go:build tools

// Package tools pins the Trivy scanner that hoist's scan gate runs, its
// images carry and its tests use. A module of its own, so that Trivy's
// dependencies do not touch hoist's.
package tools

import _ "github.com/aquasecurity/trivy/cmd/trivy"
