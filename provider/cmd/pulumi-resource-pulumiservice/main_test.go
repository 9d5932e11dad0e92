package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// versionFlag is the -X path the Makefile uses; the linker ignores a wrong one silently, so this
// test builds the plugin with it and checks that the version really changed.
const versionFlag = "github.com/pulumi-webhooks/pulumi-webhooks/provider/resource.Version"

func TestVersionIsSetByLdflags(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "pulumi-resource-pulumiservice")
	build := exec.Command("go", "build", "-ldflags", "-X "+versionFlag+"=9.8.7", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	out, err = exec.Command(bin, "-schema").Output()
	require.NoError(t, err)
	var schema struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	require.NoError(t, json.Unmarshal(out, &schema))
	require.Equal(t, "pulumiservice", schema.Name)
	require.Equal(t, "9.8.7", schema.Version, "-X %s did not reach the binary", versionFlag)
}
