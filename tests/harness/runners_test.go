package harness

import (
	"path/filepath"

	"github.com/pulumi-webhooks/pulumi-webhooks/tests/internal/pulumitest"
)

// The TypeScript, Python and Go programs of programs/ run as Automation API inline programs
// through the runners of tests/provider/testdata, which pulumitest builds.
type (
	runnerParams = pulumitest.RunnerParams
	configValue  = pulumitest.ConfigValue
	runnerResult = pulumitest.RunnerResult
	sdkRunner    = pulumitest.Runner
)

func harnessProgram(parts ...string) string {
	return filepath.Join(append([]string{suite.root, "tests", "harness", "programs"}, parts...)...)
}

// copyTree copies the regular files of src into dst, leaving out build output.
func copyTree(src, dst string) error { return pulumitest.CopyTree(src, dst) }
