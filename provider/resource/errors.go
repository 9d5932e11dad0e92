package resource

import (
	"errors"
	"fmt"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/client"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// diagnose turns an error from the client into the message Pulumi shows for op ("create",
// "read", "update", "delete", "import") on the webhook called what. It is the only place where
// store sentinels and validation errors become diagnostics; the cause stays wrapped.
func diagnose(op, what string, err error) error {
	var (
		fes     webhook.FieldErrors
		foreign *client.ForeignOrgError
	)
	switch {
	case errors.As(err, &fes):
		return fmt.Errorf("cannot %s webhook %s: the webhook service rejected it (%w); fix the named properties and run again", op, what, err)
	case errors.As(err, &foreign):
		// Checked before store.ErrNotFound (which it does not wrap): the server hides another
		// organization's webhooks behind 404s, so the webhook may exist and is never dropped.
		return fmt.Errorf("cannot %s webhook %s: %w; nothing was changed: the accessToken must belong to the webhook's "+
			"organizationName, so set the provider's accessToken to a token of %s, or correct organizationName", op, what, err, foreign.Org)
	case errors.Is(err, store.ErrNotFound) && op == "create":
		// Nothing is looked up by name on create: what is missing is the scope itself. A server
		// answers so for an organization the access token does not belong to.
		return fmt.Errorf("cannot create webhook %s: the webhook service does not know that organization or scope (%w); "+
			"with apiUrl, the accessToken must belong to the webhook's organizationName: check organizationName, or use a token of that organization", what, err)
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("cannot %s webhook %s: no such webhook exists (%w); it was deleted outside Pulumi or the ID is wrong: run `pulumi refresh` to drop it from the state, or check the ID (%s)", op, what, err, idForms)
	case errors.Is(err, store.ErrAlreadyExists):
		return fmt.Errorf("cannot %s webhook %s: a webhook of that name already exists in that scope (%w); adopt it with `pulumi import pulumiservice:index:Webhook <resource name> <id>` or delete it first", op, what, err)
	default:
		return fmt.Errorf("cannot %s webhook %s: %w", op, what, err)
	}
}
