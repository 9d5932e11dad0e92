package engine

import (
	"slices"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Matches reports whether a hook with spec receives an event of filter about subject. It is
// the whole matching rule, with no store behind it:
//
//   - an inactive hook receives nothing, and nothing matches an unknown filter (or ping, which
//     is only ever sent to one hook on request);
//   - the hook must be in the subject's organization; an organization hook hears about every
//     stack and environment of it, a stack hook only about exactly its stack, an environment
//     hook only about exactly its environment; stack_created, stack_deleted,
//     environment_created and environment_deleted reach organization hooks only;
//   - a hook naming neither filters nor groups receives every event that reaches its scope;
//     otherwise it receives the event when the filter is one of its filters or the filter's
//     kind belongs to one of its groups.
//
// Emit asks the store for the candidate hooks of the subject (an indexed query) and keeps
// those for which Matches is true.
func Matches(spec webhook.Spec, filter webhook.Filter, subject webhook.Scope) bool {
	if !spec.Active || !filter.Valid() || !reaches(spec.Scope, filter, subject) {
		return false
	}
	if len(spec.Filters) == 0 && len(spec.Groups) == 0 {
		return true
	}
	if slices.Contains(spec.Filters, filter) {
		return true
	}
	kind := filter.Kind()
	for _, g := range spec.Groups {
		if kind.InGroup(g) {
			return true
		}
	}
	return false
}

// reaches applies the scope rules: whether an event of filter about subject can reach a hook
// attached to hook at all, whatever the hook subscribes to.
func reaches(hook webhook.Scope, filter webhook.Filter, subject webhook.Scope) bool {
	if hook.Org == "" || hook.Org != subject.Org || !subjectFits(filter, subject) {
		return false
	}
	switch {
	case hook.Project == "" && hook.Stack == "" && hook.Environment == "":
		return true // organization hook
	case filter.OrgOnly():
		return false
	default:
		// A stack hook and an environment hook can share project and name: comparing every
		// field keeps a stack hook from hearing about an environment of the same name.
		return hook == subject
	}
}

// subjectFits reports whether subject is the kind of thing filter's events are about: a stack
// (project and stack, no environment) or an environment (project and environment, no stack).
func subjectFits(filter webhook.Filter, subject webhook.Scope) bool {
	if subject.Org == "" || subject.Project == "" {
		return false
	}
	switch filter.Subject() {
	case webhook.ScopeStack:
		return subject.Stack != "" && subject.Environment == ""
	case webhook.ScopeEnvironment:
		return subject.Environment != "" && subject.Stack == ""
	}
	return false
}
