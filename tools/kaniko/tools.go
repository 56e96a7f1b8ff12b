//go:build tools

// Package tools pins github.com/GoogleContainerTools/kaniko for
// scripts/setup.sh, which builds its executor statically into bin/.
package tools

import _ "github.com/GoogleContainerTools/kaniko/cmd/executor"
