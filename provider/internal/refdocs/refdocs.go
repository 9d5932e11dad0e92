// Package refdocs holds the facts our compatibility tests compare with: the official Pulumi
// Service provider's Webhook schema, the Pulumi Cloud webhook REST API (paths, methods, status
// codes, body fields) and the example payloads of Pulumi's webhook documentation.
//
// The facts live in the repository (testdata/, embedded in this package), so the tests need
// nothing outside the tree. They are generated from Pulumi's reference documents by Generate
// (`make reference REFERENCE=DIR`), which keeps names, types, shapes and example values and
// leaves every description and summary out. `make check-reference REFERENCE=DIR` fails when
// the checked-in facts no longer agree with the documents. Only tests and the generator import
// this package.
package refdocs

import (
	"embed"
	"encoding/json"
	"fmt"
)

// The fact files, by name.
const (
	// ProviderSchema is the official provider's schema, reduced to the Webhook resource, its
	// enums and the provider configuration, without descriptions.
	ProviderSchema = "pulumiservice-webhook-schema.json"
	// OpenAPI is the Pulumi Cloud webhook REST API as an OpenAPI 3 document, without
	// descriptions or summaries.
	OpenAPI = "pulumi-cloud-webhooks-openapi.json"
	// Payloads holds the documented example payloads, keyed by the heading they stand under
	// ("Stack Creation", "Stack Update", "Stack Preview", "Deployment"), key order kept.
	Payloads = "payload-examples.json"
)

// Names lists every fact file.
func Names() []string { return []string{ProviderSchema, OpenAPI, Payloads} }

//go:embed testdata/*.json
var facts embed.FS

// Read returns one fact file.
func Read(name string) ([]byte, error) {
	b, err := facts.ReadFile("testdata/" + name)
	if err != nil {
		return nil, fmt.Errorf("reference facts %s: %w (regenerate them with `make reference REFERENCE=DIR`)", name, err)
	}
	return b, nil
}

// PayloadExamples returns the documented example payloads keyed by their heading, each as the
// JSON it was documented with (field order kept).
func PayloadExamples() (map[string][]byte, error) {
	b, err := Read(Payloads)
	if err != nil {
		return nil, err
	}
	return decodeExamples(b)
}

func decodeExamples(b []byte) (map[string][]byte, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("reference facts %s: %w", Payloads, err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("reference facts %s: no examples", Payloads)
	}
	out := make(map[string][]byte, len(raw))
	for k, v := range raw {
		out[k] = []byte(v)
	}
	return out, nil
}
