package resource

import (
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// idForms lists the accepted resource IDs, for error messages and the docs.
const idForms = webhook.HookIDForms

// FormatID returns the resource ID of the hook ref names (webhook.FormatHookID).
func FormatID(ref store.HookRef) string { return webhook.FormatHookID(ref.Scope, ref.Name) }

// ParseID reads a resource ID written by FormatID (or typed for `pulumi import`). A malformed ID
// is an error that quotes it and lists the accepted forms.
func ParseID(id string) (store.HookRef, error) {
	scope, name, err := webhook.ParseHookID(id)
	if err != nil {
		return store.HookRef{}, err
	}
	return store.HookRef{Scope: scope, Name: name}, nil
}
