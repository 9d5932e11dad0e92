package resource

import (
	"fmt"
	"strings"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// environmentSegment is the literal second segment of an environment webhook's ID.
const environmentSegment = "environment"

// idForms lists the accepted resource IDs, for error messages and the docs.
const idForms = "{org}/{name} for an organization webhook, {org}/{project}/{stack}/{name} for a stack " +
	"webhook, or {org}/environment/{project}/{environment}/{name} for an environment webhook"

// FormatID returns the resource ID of the hook ref names: {org}/{name},
// {org}/{project}/{stack}/{name} or {org}/environment/{project}/{environment}/{name}.
func FormatID(ref store.HookRef) string {
	s := ref.Scope
	switch s.Kind() {
	case webhook.ScopeStack:
		return strings.Join([]string{s.Org, s.Project, s.Stack, ref.Name}, "/")
	case webhook.ScopeEnvironment:
		return strings.Join([]string{s.Org, environmentSegment, s.Project, s.Environment, ref.Name}, "/")
	default:
		return s.Org + "/" + ref.Name
	}
}

// ParseID reads a resource ID written by FormatID (or typed for `pulumi import`). A malformed ID
// is an error that quotes it and lists the accepted forms.
func ParseID(id string) (store.HookRef, error) {
	parts := strings.Split(id, "/")
	for _, p := range parts {
		if p == "" || strings.TrimSpace(p) != p || strings.ContainsAny(p, " \t\r\n") {
			return store.HookRef{}, malformedID(id, "it has an empty segment or white space")
		}
	}
	var ref store.HookRef
	switch len(parts) {
	case 2:
		ref = store.HookRef{Scope: webhook.Scope{Org: parts[0]}, Name: parts[1]}
	case 4:
		ref = store.HookRef{Scope: webhook.Scope{Org: parts[0], Project: parts[1], Stack: parts[2]}, Name: parts[3]}
	case 5:
		if parts[1] != environmentSegment {
			return store.HookRef{}, malformedID(id, fmt.Sprintf("a five-segment ID needs %q as its second segment", environmentSegment))
		}
		ref = store.HookRef{Scope: webhook.Scope{Org: parts[0], Project: parts[2], Environment: parts[3]}, Name: parts[4]}
	default:
		n := fmt.Sprintf("%d segments", len(parts))
		if len(parts) == 1 {
			n = "1 segment"
		}
		return store.HookRef{}, malformedID(id, "it has "+n+", not 2, 4 or 5")
	}
	return ref, nil
}

func malformedID(id, why string) error {
	return fmt.Errorf("malformed webhook ID %q: %s; use %s", id, why, idForms)
}
