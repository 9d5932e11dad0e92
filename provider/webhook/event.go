package webhook

import "fmt"

// Event is something that happened, as it is emitted: which event (Filter) and what it
// happened to (Subject, a stack or an ESC environment of an organization). It carries no
// payload; the engine renders one from it.
type Event struct {
	Filter  Filter
	Subject Scope
}

// Validate checks an event as the REST API, the CLI and the engine accept it: Filter is one of
// the subscribable filters (Ping is not emitted: it is sent to one webhook by a ping request),
// and Subject is what an event of that filter is about (Filter.CheckSubject). Problems come
// back as FieldErrors naming the fields of an event request: "filter", "organizationName",
// "projectName", "stackName", "environmentName".
func (e Event) Validate() error {
	var errs FieldErrors
	switch {
	case e.Filter == "":
		errs.Add("filter", "is required: name the event that happened, e.g. \"update_succeeded\"")
	case !e.Filter.Valid():
		_, err := ParseFilter(string(e.Filter))
		errs.Add("filter", err.Error())
	}
	if e.Filter != Ping {
		e.Filter.checkSubject(e.Subject, &errs)
	}
	return errs.Err()
}

// CheckSubject checks that s can be what an event of f is about. A stack event (Subject
// ScopeStack) is about a stack: organizationName, projectName and stackName, and no
// environmentName. An environment event is about an ESC environment: organizationName,
// projectName and environmentName, and no stackName. A ping is about the scope of the webhook
// it is sent to, any valid Scope. Every name is a bare name (CheckScopeName). Problems come
// back as FieldErrors naming the Scope's JSON fields; an unknown filter is the caller's to
// report, and only the organization and the names are checked for it.
func (f Filter) CheckSubject(s Scope) error {
	if f == Ping {
		return s.Validate()
	}
	var errs FieldErrors
	f.checkSubject(s, &errs)
	return errs.Err()
}

func (f Filter) checkSubject(s Scope, errs *FieldErrors) {
	if s.Org == "" {
		errs.Add("organizationName", "is required: name the organization the event happened in")
	}
	switch f.Subject() {
	case ScopeStack:
		if s.Project == "" {
			errs.Add("projectName", fmt.Sprintf("is required for %q, a stack event: give the stack's project", f))
		}
		if s.Stack == "" {
			errs.Add("stackName", fmt.Sprintf("is required for %q, a stack event: give the stack's name", f))
		}
		if s.Environment != "" {
			errs.Add("environmentName", fmt.Sprintf("cannot be set for %q, a stack event: give projectName and stackName instead", f))
		}
	case ScopeEnvironment:
		if s.Project == "" {
			errs.Add("projectName", fmt.Sprintf("is required for %q, an environment event: give the environment's project", f))
		}
		if s.Environment == "" {
			errs.Add("environmentName", fmt.Sprintf("is required for %q, an environment event: give the environment's name", f))
		}
		if s.Stack != "" {
			errs.Add("stackName", fmt.Sprintf("cannot be set for %q, an environment event: give projectName and environmentName instead", f))
		}
	}
	for _, n := range []struct{ field, v string }{
		{"organizationName", s.Org}, {"projectName", s.Project}, {"stackName", s.Stack}, {"environmentName", s.Environment},
	} {
		if n.v == "" {
			continue
		}
		if err := CheckScopeName(n.v); err != nil {
			errs.Add(n.field, err.Error())
		}
	}
}
