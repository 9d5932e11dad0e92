package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/tests/internal/pulumitest"
)

// suite is what every test shares: the toolchain and the freshly built CLI.
var suite struct {
	root    string
	toolBin string
	cli     string
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// The in-process S3 server takes any key; nothing may look for credentials or regions
	// anywhere else (no instance metadata service: only 127.0.0.1 is ever contacted).
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "watch-test", "AWS_SECRET_ACCESS_KEY": "watch-test-secret", "AWS_REGION": "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		os.Setenv(k, v)
	}
	root, err := pulumitest.FindRoot("provider/watch")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "watch-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	suite.root = root
	suite.cli = filepath.Join(tmp, "pulumi-webhooks")
	ctx := context.Background()
	steps := pulumitest.NewSteps(nil)
	steps.Go("toolchain", func() (err error) {
		suite.toolBin, err = pulumitest.RunScript(ctx, filepath.Join(root, "provider", "scripts", "toolchain.sh"))
		return err
	})
	steps.Go("build pulumi-webhooks", func() error {
		return pulumitest.GoBuild(ctx, root, suite.cli, "./provider/cmd/pulumi-webhooks")
	})
	if err := steps.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
