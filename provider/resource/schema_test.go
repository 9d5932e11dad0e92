package resource

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/refdocs"
)

// generatedSchema returns the schema the provider serves, decoded.
func generatedSchema(t *testing.T) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, WriteSchema(context.Background(), &buf, Version))
	var s map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &s))
	return s
}

// referenceSchema returns the official Pulumi Service provider's schema (v1.3.0), reduced to
// the Webhook resource, its enums and the provider configuration, without descriptions. It is
// read from the reference facts generated into the repository (package refdocs).
func referenceSchema(t *testing.T) map[string]any {
	t.Helper()
	b, err := refdocs.Read(refdocs.ProviderSchema)
	require.NoError(t, err, "the schema comparison needs the reference schema %s", refdocs.ProviderSchema)
	var s map[string]any
	require.NoError(t, json.Unmarshal(b, &s))
	return s
}

// schemaDifferences lists every difference between the reference schema and ours, except the
// deliberate ones:
//   - descriptions are ours, written fresh, at every level;
//   - storePath is our extra configuration (the embedded store's file);
//   - apiUrl has no default and no environment defaults: the official default
//     https://api.pulumi.com (or PULUMI_BACKEND_URL) would be filled in by the generated SDKs
//     and select remote mode, whereas no configuration must mean the embedded store;
//   - top-level metadata the reference does not carry (version, displayName, keywords...).
func schemaDifferences(reference, ours map[string]any) []string {
	ref := stripDescriptions(reference, false).(map[string]any)
	got := stripDescriptions(ours, false).(map[string]any)
	for _, path := range [][]string{{"config", "variables"}, {"provider", "properties"}, {"provider", "inputProperties"}} {
		if m, ok := lookup(got, path...).(map[string]any); ok {
			delete(m, "storePath")
		}
		if apiURL, ok := lookup(ref, append(path, "apiUrl")...).(map[string]any); ok {
			delete(apiURL, "default")
			delete(apiURL, "defaultInfo")
		}
	}
	var diffs []string
	keys := make([]string, 0, len(ref))
	for k := range ref {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		diffs = append(diffs, jsonDifferences(k, ref[k], got[k])...)
	}
	return diffs
}

// stripDescriptions removes "description" fields. inNames is true for maps keyed by property
// names, where "description" would be a property and is kept.
func stripDescriptions(v any, inNames bool) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if k == "description" && !inNames {
				continue
			}
			names := !inNames && (k == "properties" || k == "inputProperties" || k == "variables" ||
				k == "resources" || k == "types")
			out[k] = stripDescriptions(x, names)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = stripDescriptions(x, false)
		}
		return out
	default:
		return v
	}
}

func lookup(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// jsonDifferences compares two decoded JSON values and names each difference by its path.
func jsonDifferences(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, got %v", path, got)}
		}
		var diffs []string
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			wv, inW := w[k]
			gv, inG := g[k]
			switch {
			case !inG:
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing (want %v)", path, k, wv))
			case !inW:
				diffs = append(diffs, fmt.Sprintf("%s.%s: unexpected (got %v)", path, k, gv))
			default:
				diffs = append(diffs, jsonDifferences(path+"."+k, wv, gv)...)
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: want %v, got %v", path, want, got)}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, jsonDifferences(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: want %v, got %v", path, want, got)}
		}
		return nil
	}
}

func TestSchemaMatchesReference(t *testing.T) {
	t.Parallel()
	diffs := schemaDifferences(referenceSchema(t), generatedSchema(t))
	require.Empty(t, diffs, "the schema differs from the official provider's")
}

// TestSchemaDifferencesAreFound makes sure the comparison above can fail: each change to our
// schema that would break compatibility is reported.
func TestSchemaDifferencesAreFound(t *testing.T) {
	t.Parallel()
	res := func(s map[string]any) map[string]any {
		return lookup(s, "resources", "pulumiservice:index:Webhook").(map[string]any)
	}
	prop := func(s map[string]any, kind, name string) map[string]any {
		return res(s)[kind].(map[string]any)[name].(map[string]any)
	}
	enum := func(s map[string]any, typ string) []any {
		return lookup(s, "types", typ, "enum").([]any)
	}
	cases := map[string]func(s map[string]any){
		"type":             func(s map[string]any) { prop(s, "properties", "active")["type"] = "string" },
		"secret":           func(s map[string]any) { delete(prop(s, "inputProperties", "secret"), "secret") },
		"replaceOnChanges": func(s map[string]any) { delete(prop(s, "inputProperties", "stackName"), "replaceOnChanges") },
		"format default":   func(s map[string]any) { prop(s, "inputProperties", "format")["default"] = "slack" },
		"required":         func(s map[string]any) { res(s)["required"] = res(s)["required"].([]any)[1:] },
		"requiredInputs":   func(s map[string]any) { res(s)["requiredInputs"] = append(res(s)["requiredInputs"].([]any), "format") },
		"extra property": func(s map[string]any) {
			res(s)["properties"].(map[string]any)["extra"] = map[string]any{"type": "string"}
		},
		"missing input": func(s map[string]any) { delete(res(s)["inputProperties"].(map[string]any), "groups") },
		"enum member name": func(s map[string]any) {
			enum(s, "pulumiservice:index:WebhookGroup")[0].(map[string]any)["name"] = "Stack"
		},
		"enum name added": func(s map[string]any) {
			enum(s, "pulumiservice:index:WebhookFormat")[0].(map[string]any)["name"] = "Raw"
		},
		"enum value": func(s map[string]any) {
			enum(s, "pulumiservice:index:WebhookFilters")[3].(map[string]any)["value"] = "update_failure"
		},
		"enum member missing": func(s map[string]any) {
			l := lookup(s, "types", "pulumiservice:index:WebhookFilters").(map[string]any)
			l["enum"] = enum(s, "pulumiservice:index:WebhookFilters")[1:]
		},
		"config secret": func(s map[string]any) {
			delete(lookup(s, "config", "variables", "accessToken").(map[string]any), "secret")
		},
		"config variable extra": func(s map[string]any) {
			lookup(s, "config", "variables").(map[string]any)["region"] = map[string]any{"type": "string"}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ours := generatedSchema(t)
			mutate(ours)
			require.NotEmpty(t, schemaDifferences(referenceSchema(t), ours))
		})
	}
}

// TestSchemaFileIsCurrent fails when the checked-in schema.json is not what the provider serves:
// run `make schema`.
func TestSchemaFileIsCurrent(t *testing.T) {
	t.Parallel()
	checkedIn, err := os.ReadFile(filepath.Join("..", "..", "schema.json"))
	require.NoError(t, err, "schema.json is missing at the repository root: run `make schema`")
	var buf bytes.Buffer
	require.NoError(t, WriteSchema(context.Background(), &buf, Version))
	require.Equal(t, buf.String(), string(checkedIn), "schema.json is stale: run `make schema`")
}
