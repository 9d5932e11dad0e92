package webhook

import (
	"errors"
	"slices"
	"testing"
)

func TestEventValidate(t *testing.T) {
	t.Parallel()
	stack := Scope{Org: "acme", Project: "web", Stack: "prod"}
	env := Scope{Org: "acme", Project: "app", Environment: "dev"}
	for _, f := range Filters() {
		subject := stack
		if f.Subject() == ScopeEnvironment {
			subject = env
		}
		if err := (Event{Filter: f, Subject: subject}).Validate(); err != nil {
			t.Errorf("%s about %s: %v", f, subject.String(), err)
		}
	}
	cases := []struct {
		name  string
		e     Event
		field string
		parts []string
	}{
		{"no filter", Event{Subject: stack}, "filter", []string{"is required", "update_succeeded"}},
		{"unknown filter", Event{Filter: "update_exploded", Subject: stack}, "filter", []string{`"update_exploded"`, "valid filters are"}},
		{"ping is not emitted", Event{Filter: Ping, Subject: stack}, "filter", []string{`"ping"`}},
		{"no organization", Event{Filter: UpdateSucceeded, Subject: Scope{Project: "web", Stack: "prod"}}, "organizationName", []string{"is required"}},
		{"stack event without project", Event{Filter: StackCreated, Subject: Scope{Org: "acme", Stack: "prod"}}, "projectName", []string{"stack event", "stack's project"}},
		{"stack event without stack", Event{Filter: UpdateSucceeded, Subject: Scope{Org: "acme", Project: "web"}}, "stackName", []string{"stack event", "stack's name"}},
		{"stack event with environment", Event{Filter: UpdateSucceeded, Subject: Scope{Org: "acme", Project: "web", Stack: "prod", Environment: "dev"}}, "environmentName", []string{"cannot be set", "stackName instead"}},
		{"environment event without project", Event{Filter: EnvironmentCreated, Subject: Scope{Org: "acme", Environment: "dev"}}, "projectName", []string{"environment event", "environment's project"}},
		{"environment event without environment", Event{Filter: EnvironmentTagCreated, Subject: Scope{Org: "acme", Project: "app"}}, "environmentName", []string{"environment event", "environment's name"}},
		{"environment event with stack", Event{Filter: EnvironmentCreated, Subject: Scope{Org: "acme", Project: "app", Stack: "prod", Environment: "dev"}}, "stackName", []string{"cannot be set", "environmentName instead"}},
		{"slash in a name", Event{Filter: UpdateSucceeded, Subject: Scope{Org: "acme", Project: "web", Stack: "a/b"}}, "stackName", []string{`"a/b"`, "bare name"}},
		{"white space in the organization", Event{Filter: UpdateSucceeded, Subject: Scope{Org: "ac me", Project: "web", Stack: "prod"}}, "organizationName", []string{"bare name"}},
		{"path as a project", Event{Filter: EnvironmentCreated, Subject: Scope{Org: "acme", Project: "..", Environment: "dev"}}, "projectName", []string{"is a path"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var fe FieldErrors
			if !errors.As(c.e.Validate(), &fe) {
				t.Fatalf("Validate(%+v) = %v, want FieldErrors", c.e, c.e.Validate())
			}
			hasError(t, fe, c.field, c.parts...)
		})
	}
}

func TestFilterCheckSubject(t *testing.T) {
	t.Parallel()
	// A ping is about the scope of the webhook it is sent to: any valid scope.
	for _, s := range []Scope{{Org: "acme"}, {Org: "acme", Project: "web", Stack: "prod"}, {Org: "acme", Project: "app", Environment: "dev"}} {
		if err := Ping.CheckSubject(s); err != nil {
			t.Errorf("ping about %s: %v", s.String(), err)
		}
	}
	var fe FieldErrors
	if !errors.As(Ping.CheckSubject(Scope{Org: "acme", Project: "web"}), &fe) {
		t.Fatalf("ping about a project alone was accepted")
	}
	hasError(t, fe, "projectName", "neither stackName nor environmentName")
	// An unknown filter is the caller's to report; the names are still checked.
	if err := Filter("nope").CheckSubject(Scope{Org: "acme"}); err != nil {
		t.Errorf("unknown filter about an organization: %v", err)
	}
	fe = nil
	if !errors.As(Filter("nope").CheckSubject(Scope{Org: "a\tb"}), &fe) {
		t.Fatalf("a tab in the organization was accepted")
	}
	hasError(t, fe, "organizationName", "bare name")
}

func TestCheckHookRefName(t *testing.T) {
	t.Parallel()
	// Names CheckHookName refuses but an older webhook may have stay reachable.
	for _, v := range []string{"ok", "with:colon", "ünïcode"} {
		if err := CheckHookRefName(v); err != nil {
			t.Errorf("CheckHookRefName(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"", "..", "a/b", "a b", "a\u200bb"} {
		if err := CheckHookRefName(v); err == nil {
			t.Errorf("CheckHookRefName(%q) accepted it", v)
		}
	}
}

func TestScopeCheckStack(t *testing.T) {
	t.Parallel()
	ok := Scope{Org: "acme", Project: "web", Stack: "prod"}
	if err := ok.CheckStack("a deployment"); err != nil || !ok.IsStack() {
		t.Fatalf("CheckStack(%s) = %v, IsStack %t", ok.String(), err, ok.IsStack())
	}
	cases := []struct {
		name  string
		s     Scope
		field string
		parts []string
	}{
		{"no organization", Scope{Project: "web", Stack: "prod"}, "organizationName", []string{"is required for a deployment", "organization of the stack"}},
		{"no project", Scope{Org: "acme", Stack: "prod"}, "projectName", []string{"is required for a deployment", "stack's project"}},
		{"no stack", Scope{Org: "acme", Project: "web"}, "stackName", []string{"is required for a deployment", "stack's name"}},
		{"an environment", Scope{Org: "acme", Project: "web", Environment: "dev"}, "environmentName", []string{"cannot be set for a deployment", "projectName and stackName"}},
		{"a slash in the stack", Scope{Org: "acme", Project: "web", Stack: "a/b"}, "stackName", []string{"bare name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// IsStack checks the shape only: a bad name still has it.
			if want := c.name == "a slash in the stack"; c.s.IsStack() != want {
				t.Errorf("IsStack(%+v) = %t, want %t", c.s, c.s.IsStack(), want)
			}
			var fe FieldErrors
			if !errors.As(c.s.CheckStack("a deployment"), &fe) {
				t.Fatalf("CheckStack(%+v) accepted it", c.s)
			}
			hasError(t, fe, c.field, c.parts...)
		})
	}
}

// FuzzEventValidate checks arbitrary events with the rules every front end hands to the
// engine. An event is either refused with short field errors naming request fields, or is a
// subscribable filter about the kind of subject it needs, every name a bare name.
//
//	go test ./provider/webhook -run '^$' -fuzz FuzzEventValidate -fuzztime 30s
func FuzzEventValidate(f *testing.F) {
	for _, seed := range []Event{
		{Filter: UpdateSucceeded, Subject: Scope{Org: "acme", Project: "web", Stack: "prod"}},
		{Filter: EnvironmentCreated, Subject: Scope{Org: "acme", Project: "app", Environment: "dev"}},
		{Filter: Ping, Subject: Scope{Org: "acme"}},
		{Filter: StackCreated, Subject: Scope{Org: "acme", Project: "web", Stack: "a/b", Environment: "x"}},
		{Filter: "", Subject: Scope{Org: "..", Project: "\u202e", Stack: "\xff"}},
	} {
		f.Add(string(seed.Filter), seed.Subject.Org, seed.Subject.Project, seed.Subject.Stack, seed.Subject.Environment)
	}
	fields := []string{"filter", "organizationName", "projectName", "stackName", "environmentName"}
	f.Fuzz(func(t *testing.T, filter, org, project, stack, env string) {
		e := Event{Filter: Filter(filter), Subject: Scope{Org: org, Project: project, Stack: stack, Environment: env}}
		err := e.Validate()
		if err != nil {
			var fe FieldErrors
			if !errors.As(err, &fe) || len(fe) == 0 {
				t.Fatalf("Validate(%+v) = %T %v, want FieldErrors", e, err, err)
			}
			for _, x := range fe {
				if !slices.Contains(fields, x.Field) {
					t.Fatalf("error names %q, not a field of an event request", x.Field)
				}
			}
			if n := len(err.Error()); n > 4000 {
				t.Fatalf("an error of %d bytes", n)
			}
			return
		}
		want := e.Filter.Subject()
		if !e.Filter.Valid() || want == "" || e.Subject.Kind() != want || e.Subject.Validate() != nil {
			t.Fatalf("Validate accepted %q about %+v", e.Filter, e.Subject)
		}
	})
}
