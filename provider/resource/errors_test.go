package resource

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/client"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func TestDiagnose(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk full")
	cases := []struct {
		name string
		op   string
		err  error
		want []string
	}{
		{"validation", "create", fmt.Errorf("create: %w", webhook.FieldErrors{{Field: "payloadUrl", Message: "is required"}}),
			[]string{"cannot create webhook acme/x: the webhook service rejected it", "payloadUrl: is required", "fix the named properties"}},
		{"not found", "update", fmt.Errorf("get webhook acme/x: %w", store.ErrNotFound),
			[]string{"cannot update webhook acme/x: no such webhook exists", "pulumi refresh", idForms}},
		{"scope not found on create", "create", fmt.Errorf("create: %w", store.ErrNotFound),
			[]string{"cannot create webhook acme/x: the webhook service does not know that organization", "accessToken must belong", "organizationName"}},
		{"already exists", "create", fmt.Errorf("create webhook acme/x: %w", store.ErrAlreadyExists),
			[]string{"cannot create webhook acme/x: a webhook of that name already exists", "pulumi import pulumiservice:index:Webhook"}},
		{"token of another organization", "read", fmt.Errorf("get: %w", &client.ForeignOrgError{Org: "acme", Message: `organization "acme" not found`}),
			[]string{`cannot read webhook acme/x: get: the access token belongs to another organization than "acme"`, `organization "acme" not found`,
				"pulumi-webhooks token create --org acme", "nothing was changed", "accessToken to a token of acme"}},
		{"token of another organization on create", "create", &client.ForeignOrgError{Org: "acme", Message: "m"},
			[]string{`cannot create webhook acme/x: the access token belongs to another organization than "acme"`, "organizationName"}},
		{"anything else", "create", boom, []string{"cannot create webhook acme/x: disk full"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := diagnose(c.op, "acme/x", c.err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			require.ErrorIs(t, err, c.err, "the cause stays wrapped")
			var foreign *client.ForeignOrgError
			if errors.As(c.err, &foreign) {
				assert.NotErrorIs(t, err, store.ErrNotFound, "a hidden webhook is never reported as missing")
				assert.NotContains(t, err.Error(), "no such webhook")
			}
		})
	}
}
