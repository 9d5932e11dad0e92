package resource

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func TestIDRoundTrip(t *testing.T) {
	t.Parallel()
	cases := map[string]store.HookRef{
		"acme/h1":                           {Scope: webhook.Scope{Org: "acme"}, Name: "h1"},
		"acme/web/prod/h2":                  {Scope: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Name: "h2"},
		"acme/environment/shared/aws/h3":    {Scope: webhook.Scope{Org: "acme", Project: "shared", Environment: "aws"}, Name: "h3"},
		"acme/environment/prod/h4":          {Scope: webhook.Scope{Org: "acme", Project: "environment", Stack: "prod"}, Name: "h4"},
		"acme/environment/environment/e/h5": {Scope: webhook.Scope{Org: "acme", Project: "environment", Environment: "e"}, Name: "h5"},
	}
	for id, ref := range cases {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			got, err := ParseID(id)
			require.NoError(t, err)
			assert.Equal(t, ref, got)
			assert.Equal(t, id, FormatID(ref))
		})
	}
}

func TestParseIDErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"":                         "empty segment",
		"acme":                     "it has 1 segment, not 2, 4 or 5",
		"acme/web/h":               "it has 3 segments",
		"acme/env/shared/aws/h":    `needs "environment" as its second segment`,
		"a/environment/p/e/h/more": "it has 6 segments",
		"acme//h":                  "empty segment",
		"acme/h ":                  "white space",
		"acme/\th":                 "white space",
	}
	for id, why := range cases {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			_, err := ParseID(id)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "malformed webhook ID")
			assert.Contains(t, err.Error(), why)
			assert.Contains(t, err.Error(), idForms)
		})
	}
}
