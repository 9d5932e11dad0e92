package pulumitest

import (
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

// MergeImportedYAML adds the one resource that `pulumi import --out generatedPath` wrote to the
// YAML program at programPath, and returns that resource's properties so the caller can check
// what the import filled in.
func MergeImportedYAML(programPath, generatedPath string) (map[string]any, error) {
	read := func(p string) (map[string]any, error) {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("parse %s: %w\n%s", p, err, raw)
		}
		return m, nil
	}
	program, err := read(programPath)
	if err != nil {
		return nil, err
	}
	generated, err := read(generatedPath)
	if err != nil {
		return nil, err
	}
	genResources, ok := generated["resources"].(map[string]any)
	if !ok || len(genResources) != 1 {
		return nil, fmt.Errorf("pulumi import generated no single resource:\n%v", generated)
	}
	resources, ok := program["resources"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s has no resources section", programPath)
	}
	var props map[string]any
	for name, r := range genResources {
		props, _ = r.(map[string]any)["properties"].(map[string]any)
		resources[name] = r
	}
	raw, err := yaml.Marshal(program)
	if err != nil {
		return nil, err
	}
	return props, os.WriteFile(programPath, raw, 0o644)
}
