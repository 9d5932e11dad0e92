package refdocs

import (
	"encoding/json"
	"testing"
)

func TestPayloadExamples(t *testing.T) {
	ex, err := PayloadExamples()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Stack Creation", "Stack Update", "Stack Preview", "Deployment"} {
		var v map[string]any
		if err := json.Unmarshal(ex[name], &v); err != nil {
			t.Errorf("example %q does not parse: %v", name, err)
		}
		if _, ok := v["organization"]; !ok {
			t.Errorf("example %q has no organization", name)
		}
	}
}

func TestDirOverride(t *testing.T) {
	t.Setenv(EnvDir, t.TempDir())
	if _, err := Read(OpenAPI); err == nil {
		t.Fatal("reading a missing reference file succeeded")
	}
}
