package webhook

import (
	"fmt"
	"strings"
)

// A webhook's ID names its scope and its name in one string, the same in the provider's
// resource IDs (and so in `pulumi import`) and on the CLI's command line:
//
//	{org}/{name}                                      organization webhook
//	{org}/{project}/{stack}/{name}                    stack webhook
//	{org}/environment/{project}/{environment}/{name}  environment webhook
//
// These are the official Pulumi Service provider's forms, so IDs from its state import as they
// are. An environment's ID always names its project; an environment created before ESC had
// projects is in the project "default" ({org}/environment/default/{environment}/{name}). Four
// segments are always a stack, also when the project is called "environment", as with the
// official provider; HookIDHint says so when such a webhook is not found.

// hookIDEnvironment is the literal second segment of an environment webhook's ID.
const hookIDEnvironment = "environment"

// HookIDForms lists the accepted webhook IDs, for error messages and help texts.
const HookIDForms = "{org}/{name} for an organization webhook, {org}/{project}/{stack}/{name} for a stack " +
	"webhook, or {org}/environment/{project}/{environment}/{name} for an environment webhook"

// FormatHookID returns the ID of the webhook called name in scope.
func FormatHookID(scope Scope, name string) string {
	switch scope.Kind() {
	case ScopeStack:
		return strings.Join([]string{scope.Org, scope.Project, scope.Stack, name}, "/")
	case ScopeEnvironment:
		return strings.Join([]string{scope.Org, hookIDEnvironment, scope.Project, scope.Environment, name}, "/")
	default:
		return scope.Org + "/" + name
	}
}

// ParseHookID reads an ID written by FormatHookID. A malformed ID is an error that quotes it,
// says what is wrong and lists the accepted forms.
func ParseHookID(id string) (Scope, string, error) {
	parts := strings.Split(id, "/")
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, " \t\r\n") {
			return Scope{}, "", malformedHookID(id, "it has an empty segment or white space")
		}
	}
	switch len(parts) {
	case 2:
		return Scope{Org: parts[0]}, parts[1], nil
	case 4:
		return Scope{Org: parts[0], Project: parts[1], Stack: parts[2]}, parts[3], nil
	case 5:
		if parts[1] != hookIDEnvironment {
			return Scope{}, "", malformedHookID(id, fmt.Sprintf("a five-segment ID needs %q as its second segment", hookIDEnvironment))
		}
		return Scope{Org: parts[0], Project: parts[2], Environment: parts[3]}, parts[4], nil
	case 1:
		return Scope{}, "", malformedHookID(id, "it has 1 segment, not 2, 4 or 5")
	default:
		return Scope{}, "", malformedHookID(id, fmt.Sprintf("it has %d segments, not 2, 4 or 5", len(parts)))
	}
}

func malformedHookID(id, why string) error {
	return fmt.Errorf("malformed webhook ID %q: %s; use %s", id, why, HookIDForms)
}

// hookIDDefaultProject is the ESC project of environments created without one.
const hookIDDefaultProject = "default"

// HookIDHint returns advice for an ID that named no webhook, when the ID may have been meant
// another way: a four-segment ID whose project is "environment" names a stack, but may have
// been written for an environment webhook without its project. Otherwise it returns "".
func HookIDHint(scope Scope, name string) string {
	if scope.Kind() != ScopeStack || scope.Project != hookIDEnvironment {
		return ""
	}
	return fmt.Sprintf("%s names a webhook of the stack %q in the project %q; for an environment webhook, name the "+
		"environment's project too: %s (an environment created without a project is in the project %q: %s)",
		FormatHookID(scope, name), scope.Stack, scope.Project,
		FormatHookID(Scope{Org: scope.Org, Project: "{project}", Environment: scope.Stack}, name), hookIDDefaultProject,
		FormatHookID(Scope{Org: scope.Org, Project: hookIDDefaultProject, Environment: scope.Stack}, name))
}
