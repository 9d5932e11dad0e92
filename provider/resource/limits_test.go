package resource

import (
	"fmt"
	"strings"
	"testing"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/integration"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Check applies the input rules of package webhook (issue 9, item 11): invisible characters,
// path-like names, ports out of range and oversized strings and lists are failures on their
// property, before anything is stored.
func TestCheckBoundsAndCharacters(t *testing.T) {
	t.Parallel()
	s, err := integration.NewServer(t.Context(), Name, semverVersion(t), integration.WithProvider(Provider()))
	require.NoError(t, err)
	many := make([]string, webhook.ListMaxLen+1)
	for i := range many {
		many[i] = "update_succeeded"
	}
	for _, c := range []struct {
		name, property, reason string
		change                 func(map[string]property.Value)
	}{
		{"escape in display name", "displayName", "U+001B", func(in map[string]property.Value) { in["displayName"] = str("a\x1b[2Jb") }},
		{"newline in display name", "displayName", "U+000A", func(in map[string]property.Value) { in["displayName"] = str("a\nb") }},
		{"bidi override in display name", "displayName", "U+202E", func(in map[string]property.Value) { in["displayName"] = str("\u202eexe.gnp") }},
		{"zero-width in display name", "displayName", "U+200B", func(in map[string]property.Value) { in["displayName"] = str("ad\u200bmin") }},
		{"long display name", "displayName", "at most 256", func(in map[string]property.Value) { in["displayName"] = str(strings.Repeat("d", 257)) }},
		{"port 0", "payloadUrl", `port "0"`, func(in map[string]property.Value) { in["payloadUrl"] = str("https://example.com:0/h") }},
		{"port 65536", "payloadUrl", `port "65536"`, func(in map[string]property.Value) { in["payloadUrl"] = str("https://example.com:65536/h") }},
		{"long URL", "payloadUrl", "at most 2048", func(in map[string]property.Value) {
			in["payloadUrl"] = str("https://example.com/" + strings.Repeat("u", 2100))
		}},
		{"long secret", "secret", "at most 1024", func(in map[string]property.Value) { in["secret"] = str(strings.Repeat("s", 1025)) }},
		{"dot-dot organization", "organizationName", "path", func(in map[string]property.Value) { in["organizationName"] = str("..") }},
		{"control character in a stack name", "stackName", "U+0000", func(in map[string]property.Value) {
			in["projectName"], in["stackName"] = str("web"), str("prod\x00")
		}},
		{"too many filters", "filters", fmt.Sprintf("%d entries", webhook.ListMaxLen+1), func(in map[string]property.Value) { in["filters"] = strs(many...) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in := orgHook()
			c.change(in)
			resp, err := s.Check(p.CheckRequest{Urn: webhookURN, Inputs: property.NewMap(in)})
			require.NoError(t, err)
			require.NotEmpty(t, resp.Failures)
			found := false
			for _, f := range resp.Failures {
				if f.Property == c.property && strings.Contains(f.Reason, c.reason) {
					found = true
				}
				assert.NotContains(t, f.Reason, "ssssssssss", "a failure repeats the secret")
			}
			assert.True(t, found, "failures %v lack %s: %s", resp.Failures, c.property, c.reason)
		})
	}
}
