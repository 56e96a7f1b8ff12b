package build

import (
	"os"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// TestMain stops the daemons the tests share (the BuildKit engine).
func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
