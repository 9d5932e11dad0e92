package webhook

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHookIDRoundTrip(t *testing.T) {
	t.Parallel()
	type ref struct {
		scope Scope
		name  string
	}
	cases := map[string]ref{
		"acme/h1":                           {scope: Scope{Org: "acme"}, name: "h1"},
		"acme/web/prod/h2":                  {scope: Scope{Org: "acme", Project: "web", Stack: "prod"}, name: "h2"},
		"acme/environment/shared/aws/h3":    {scope: Scope{Org: "acme", Project: "shared", Environment: "aws"}, name: "h3"},
		"acme/environment/prod/h4":          {scope: Scope{Org: "acme", Project: "environment", Stack: "prod"}, name: "h4"},
		"acme/environment/environment/e/h5": {scope: Scope{Org: "acme", Project: "environment", Environment: "e"}, name: "h5"},
		"acme/environment/default/aws/h6":   {scope: Scope{Org: "acme", Project: "default", Environment: "aws"}, name: "h6"},
	}
	for id, want := range cases {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			scope, name, err := ParseHookID(id)
			require.NoError(t, err)
			assert.Equal(t, want, ref{scope, name})
			assert.Equal(t, id, FormatHookID(want.scope, want.name))
		})
	}
}

func TestParseHookIDErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"":                         "empty segment",
		"acme":                     "it has 1 segment, not 2, 4 or 5",
		"acme/web/h":               "it has 3 segments",
		"acme/env/shared/aws/h":    `needs "environment" as its second segment`,
		"a/environment/p/e/h/more": "it has 6 segments",
		"acme//h":                  "empty segment",
		"acme/h ":                  "white space",
		"/h":                       "empty segment",
		"acme/":                    "empty segment",
		"acme/environment//aws/h":  "empty segment",
		"acme/Environment/p/e/h":   `needs "environment" as its second segment`,
		"acme/\th":                 "white space",
	}
	for id, why := range cases {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			_, _, err := ParseHookID(id)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "malformed webhook ID")
			assert.Contains(t, err.Error(), why)
			assert.Contains(t, err.Error(), HookIDForms)
		})
	}
}

func TestHookIDHint(t *testing.T) {
	t.Parallel()
	scope, name, err := ParseHookID("acme/environment/aws/h")
	require.NoError(t, err)
	require.Equal(t, Scope{Org: "acme", Project: "environment", Stack: "aws"}, scope, "four segments are a stack, as with the official provider")
	hint := HookIDHint(scope, name)
	for _, want := range []string{`the stack "aws" in the project "environment"`, "acme/environment/{project}/aws/h",
		`in the project "default": acme/environment/default/aws/h`} {
		assert.Contains(t, hint, want)
	}
	for _, id := range []string{"acme/h", "acme/web/prod/h", "acme/environment/shared/aws/h", "acme/environment/environment/aws/h"} {
		scope, name, err := ParseHookID(id)
		require.NoError(t, err)
		assert.Empty(t, HookIDHint(scope, name), id)
	}
}
