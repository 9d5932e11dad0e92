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
		if !s.IsStack() { // what it names is formatted only for an error
			checkStackFields(s, fmt.Sprintf("%q, a stack event", f), errs)
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
	checkNames(s, errs)
}

// IsStack reports whether s has the shape of one stack: an organization, a project and a
// stack, and no environment. CheckStack also checks the names.
func (s Scope) IsStack() bool {
	return s.Org != "" && s.Project != "" && s.Stack != "" && s.Environment == ""
}

// CheckStack checks that s names one stack, for what (e.g. "a deployment"): organizationName,
// projectName and stackName are set, bare names (CheckScopeName), and environmentName is not.
// Stack events follow the same rule (Filter.CheckSubject). Problems come back as FieldErrors
// naming the Scope's JSON fields.
func (s Scope) CheckStack(what string) error {
	var errs FieldErrors
	if s.Org == "" {
		errs.Add("organizationName", fmt.Sprintf("is required for %s: name the organization of the stack", what))
	}
	checkStackFields(s, what, &errs)
	checkNames(s, &errs)
	return errs.Err()
}

// checkStackFields checks that s has a project and a stack and no environment, as what needs.
func checkStackFields(s Scope, what string, errs *FieldErrors) {
	if s.Project == "" {
		errs.Add("projectName", fmt.Sprintf("is required for %s: give the stack's project", what))
	}
	if s.Stack == "" {
		errs.Add("stackName", fmt.Sprintf("is required for %s: give the stack's name", what))
	}
	if s.Environment != "" {
		errs.Add("environmentName", fmt.Sprintf("cannot be set for %s: give projectName and stackName instead", what))
	}
}

// checkNames checks every name s has with CheckScopeName.
func checkNames(s Scope, errs *FieldErrors) {
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
