package webhook

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Valid specs of each scope, for tests to break one field at a time.
func orgSpec() Spec {
	return Spec{Scope: Scope{Org: "acme"}, DisplayName: "Org hook", PayloadURL: "https://example.com/hook", Active: true}
}

func stackSpec() Spec {
	s := orgSpec()
	s.Project, s.Stack, s.DisplayName = "website", "prod", "Stack hook"
	return s
}

func envSpec() Spec {
	s := orgSpec()
	s.Project, s.Environment, s.DisplayName = "platform", "production", "Environment hook"
	return s
}

// fieldErrors runs Validate, which must fail with FieldErrors.
func fieldErrors(t *testing.T, s Spec) FieldErrors {
	t.Helper()
	err := s.Validate()
	if err == nil {
		t.Fatalf("Validate(%+v) = nil, want errors", s)
	}
	var fe FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("Validate error %T, want FieldErrors", err)
	}
	return fe
}

// hasError fails unless errs has exactly one error for field and it contains every part.
func hasError(t *testing.T, errs FieldErrors, field string, parts ...string) {
	t.Helper()
	var found []FieldError
	for _, e := range errs {
		if e.Field == field {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Errorf("want one error for %s, got %d in %v", field, len(found), errs)
		return
	}
	for _, p := range parts {
		if !strings.Contains(found[0].Message, p) {
			t.Errorf("%s: message %q does not contain %q", field, found[0].Message, p)
		}
	}
}

func TestScopeKindAndString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    Scope
		kind ScopeKind
		str  string
	}{
		{Scope{Org: "acme"}, ScopeOrganization, "acme"},
		{Scope{Org: "acme", Project: "website", Stack: "prod"}, ScopeStack, "acme/website/prod"},
		{Scope{Org: "acme", Project: "platform", Environment: "production"}, ScopeEnvironment, "acme/platform/production"},
	} {
		if tc.s.Kind() != tc.kind || tc.s.String() != tc.str {
			t.Errorf("%+v: kind %q string %q, want %q %q", tc.s, tc.s.Kind(), tc.s.String(), tc.kind, tc.str)
		}
		if err := tc.s.Validate(); err != nil {
			t.Errorf("%+v: %v", tc.s, err)
		}
	}
}

func TestScopeValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		s     Scope
		field string
		parts []string
	}{
		{"no organization", Scope{}, "organizationName", []string{"is required"}},
		{"no organization for a stack", Scope{Project: "p", Stack: "s"}, "organizationName", []string{"is required"}},
		{"stack and environment", Scope{Org: "acme", Project: "p", Stack: "s", Environment: "e"}, "environmentName", []string{"cannot be set together with stackName"}},
		{"stack without project", Scope{Org: "acme", Stack: "s"}, "projectName", []string{"required for a stack webhook"}},
		{"environment without project", Scope{Org: "acme", Environment: "e"}, "projectName", []string{"required for an environment webhook"}},
		{"project alone", Scope{Org: "acme", Project: "p"}, "projectName", []string{"neither stackName nor environmentName", "remove projectName"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.s.Validate()
			var fe FieldErrors
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want FieldErrors", err)
			}
			hasError(t, fe, tc.field, tc.parts...)
		})
	}
	// Slashes and white space are refused in every name, one error per field.
	fields := []struct {
		name string
		set  func(*Scope, string)
	}{
		{"organizationName", func(s *Scope, v string) { s.Org = v }},
		{"projectName", func(s *Scope, v string) { s.Project = v }},
		{"stackName", func(s *Scope, v string) { s.Stack = v }},
		{"environmentName", func(s *Scope, v string) { s.Environment = v }},
	}
	for _, f := range fields {
		for _, bad := range []string{"a/b", "a b", "a\tb", "a\nb", "a\rb", "/", " "} {
			s := Scope{Org: "acme", Project: "p", Stack: "s"}
			if f.name == "environmentName" {
				s.Stack, s.Environment = "", "e"
			}
			f.set(&s, bad)
			err := s.Validate()
			var fe FieldErrors
			if !errors.As(err, &fe) {
				t.Errorf("%s=%q: Validate = %v", f.name, bad, err)
				continue
			}
			hasError(t, fe, f.name, fmt.Sprintf("%q", bad), "slash or white space")
		}
	}
}

func TestSpecValidateAcceptsValidSpecs(t *testing.T) {
	t.Parallel()
	specs := map[string]Spec{"org": orgSpec(), "stack": stackSpec(), "env": envSpec()}
	for name, base := range specs {
		for _, format := range []Format{"", FormatRaw, FormatSlack, FormatMicrosoftTeams} {
			s := base
			s.Format = format
			s.PayloadURL = "http://127.0.0.1:8080/hook?x=1#frag"
			if err := s.Validate(); err != nil {
				t.Errorf("%s/%q: %v", name, format, err)
			}
		}
		s := base
		s.Name, s.Secret, s.Active = "my-hook_1", "shh", false
		if err := s.Validate(); err != nil {
			t.Errorf("%s with name and secret: %v", name, err)
		}
	}
	for _, name := range []string{"stack", "env"} {
		s := specs[name]
		s.Format, s.PayloadURL = FormatPulumiDeployments, "infra/prod"
		if err := s.Validate(); err != nil {
			t.Errorf("%s pulumi_deployments: %v", name, err)
		}
	}
	// Every filter valid for the scope, and every group, at once.
	for name, base := range specs {
		s := base
		for _, f := range Filters() {
			if f.ReachesScope(s.Kind()) {
				s.Filters = append(s.Filters, f)
			}
		}
		s.Groups = Groups()
		if err := s.Validate(); err != nil {
			t.Errorf("%s with all its filters and groups: %v", name, err)
		}
	}
}

func TestSpecValidateFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		spec   func() Spec
		field  string
		parts  []string
		absent []string // text the message must not contain, e.g. credentials
	}{
		{name: "scope errors carried", spec: func() Spec { s := stackSpec(); s.Project = ""; return s },
			field: "projectName", parts: []string{"required for a stack webhook"}},
		{name: "no display name", spec: func() Spec { s := orgSpec(); s.DisplayName = ""; return s },
			field: "displayName", parts: []string{"is required"}},
		{name: "blank display name", spec: func() Spec { s := orgSpec(); s.DisplayName = " \t "; return s },
			field: "displayName", parts: []string{"is required"}},
		{name: "name with slash", spec: func() Spec { s := orgSpec(); s.Name = "a/b"; return s },
			field: "name", parts: []string{`"a/b"`, "slash or white space"}},
		{name: "name with space", spec: func() Spec { s := orgSpec(); s.Name = "a b"; return s },
			field: "name", parts: []string{"slash or white space"}},
		{name: "unknown format", spec: func() Spec { s := orgSpec(); s.Format = "xml"; return s },
			field: "format", parts: []string{`unknown format "xml"`, `"raw"`, `"slack"`, `"pulumi_deployments"`, `"ms_teams"`}},
		{name: "format case", spec: func() Spec { s := orgSpec(); s.Format = "Slack"; return s },
			field: "format", parts: []string{`unknown format "Slack"`}},
		{name: "deployments on organization", spec: func() Spec { s := orgSpec(); s.Format, s.PayloadURL = FormatPulumiDeployments, "infra/prod"; return s },
			field: "format", parts: []string{"must belong to a stack or an environment"}},
		{name: "deployment target is a URL", spec: func() Spec { s := stackSpec(); s.Format = FormatPulumiDeployments; return s },
			field: "payloadUrl", parts: []string{"not a deployment target", "project/stack"}},
		{name: "deployment target empty", spec: func() Spec { s := stackSpec(); s.Format, s.PayloadURL = FormatPulumiDeployments, ""; return s },
			field: "payloadUrl", parts: []string{`"" is not a deployment target`}},
		{name: "deployment target one part", spec: func() Spec { s := envSpec(); s.Format, s.PayloadURL = FormatPulumiDeployments, "prod"; return s },
			field: "payloadUrl", parts: []string{"project/stack"}},
		{name: "deployment target three parts", spec: func() Spec {
			s := stackSpec()
			s.Format, s.PayloadURL = FormatPulumiDeployments, "acme/infra/prod"
			return s
		}, field: "payloadUrl", parts: []string{"project/stack", "webhook's organization"}},
		{name: "deployment target empty project", spec: func() Spec { s := stackSpec(); s.Format, s.PayloadURL = FormatPulumiDeployments, "/prod"; return s },
			field: "payloadUrl", parts: []string{"project/stack"}},
		{name: "deployment target empty stack", spec: func() Spec { s := stackSpec(); s.Format, s.PayloadURL = FormatPulumiDeployments, "infra/"; return s },
			field: "payloadUrl", parts: []string{"project/stack"}},
		{name: "deployment target with space", spec: func() Spec {
			s := stackSpec()
			s.Format, s.PayloadURL = FormatPulumiDeployments, "infra/pr od"
			return s
		},
			field: "payloadUrl", parts: []string{"project/stack"}},
		{name: "deployment target with newline", spec: func() Spec {
			s := stackSpec()
			s.Format, s.PayloadURL = FormatPulumiDeployments, "infra/prod\n"
			return s
		},
			field: "payloadUrl", parts: []string{"project/stack"}},
		{name: "deployment target with credentials", spec: func() Spec {
			s := stackSpec()
			s.Format, s.PayloadURL = FormatPulumiDeployments, "https://user:hunter2@example.com/x"
			return s
		}, field: "payloadUrl", parts: []string{"REDACTED@example.com"}, absent: []string{"hunter2", "user"}},
		{name: "no payload URL", spec: func() Spec { s := orgSpec(); s.PayloadURL = ""; return s },
			field: "payloadUrl", parts: []string{"is required", "http://", "https://"}},
		{name: "unparsable URL", spec: func() Spec { s := orgSpec(); s.PayloadURL = "http://[::1"; return s },
			field: "payloadUrl", parts: []string{`"http://[::1" is not a valid URL`}},
		{name: "unparsable URL with credentials", spec: func() Spec { s := orgSpec(); s.PayloadURL = "http://bob:hunter2@[::1"; return s },
			field: "payloadUrl", parts: []string{"not a valid URL", "REDACTED@[::1"}, absent: []string{"hunter2", "bob"}},
		{name: "relative URL", spec: func() Spec { s := orgSpec(); s.PayloadURL = "/hook"; return s },
			field: "payloadUrl", parts: []string{"not an absolute", "include the scheme and host"}},
		{name: "host without scheme", spec: func() Spec { s := orgSpec(); s.PayloadURL = "example.com/hook"; return s },
			field: "payloadUrl", parts: []string{"not an absolute"}},
		{name: "other scheme", spec: func() Spec { s := stackSpec(); s.PayloadURL = "ftp://example.com/hook"; return s },
			field: "payloadUrl", parts: []string{`"ftp://example.com/hook" is not an absolute`}},
		{name: "other scheme with credentials", spec: func() Spec { s := stackSpec(); s.PayloadURL = "ftp://me:hunter2@example.com/hook"; return s },
			field: "payloadUrl", parts: []string{"ftp://REDACTED@example.com/hook"}, absent: []string{"hunter2"}},
		{name: "opaque URL with credentials", spec: func() Spec { s := stackSpec(); s.PayloadURL = "me:hunter2@example.com/hook"; return s },
			field: "payloadUrl", parts: []string{"not an absolute"}, absent: []string{"hunter2"}},
		{name: "no host", spec: func() Spec { s := envSpec(); s.PayloadURL = "https://"; return s },
			field: "payloadUrl", parts: []string{"not an absolute"}},
		{name: "opaque https", spec: func() Spec { s := envSpec(); s.PayloadURL = "https:example.com"; return s },
			field: "payloadUrl", parts: []string{"not an absolute"}},
		{name: "credentials in URL", spec: func() Spec { s := orgSpec(); s.PayloadURL = "https://bob:hunter2@example.com/hook"; return s },
			field: "payloadUrl", parts: []string{"user credentials", "webhook secret"}, absent: []string{"hunter2", "bob"}},
		{name: "user name in URL", spec: func() Spec { s := orgSpec(); s.PayloadURL = "https://token123@example.com/hook"; return s },
			field: "payloadUrl", parts: []string{"user credentials"}, absent: []string{"token123"}},
		{name: "unknown filter", spec: func() Spec { s := orgSpec(); s.Filters = []Filter{StackCreated, "update_exploded"}; return s },
			field: "filters[1]", parts: []string{`unknown filter "update_exploded"`, `"update_succeeded"`}},
		{name: "ping filter", spec: func() Spec { s := orgSpec(); s.Filters = []Filter{Ping}; return s },
			field: "filters[0]", parts: []string{`unknown filter "ping"`}},
		{name: "unknown group", spec: func() Spec { s := orgSpec(); s.Groups = []Group{GroupStacks, "change_requests"}; return s },
			field: "groups[1]", parts: []string{`unknown group "change_requests"`, `"stacks"`, `"deployments"`, `"environments"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := fieldErrors(t, tc.spec())
			hasError(t, errs, tc.field, tc.parts...)
			for _, a := range tc.absent {
				if strings.Contains(errs.Error(), a) {
					t.Errorf("error %q reveals %q", errs, a)
				}
			}
		})
	}
}

// TestSpecAdvise: what Pulumi Cloud accepts but is probably a mistake is accepted by Validate
// and reported by Advise, on its field, with why and the fix.
func TestSpecAdvise(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		spec  func() Spec
		field string
		parts []string
	}{
		{name: "duplicate filter", spec: func() Spec {
			s := stackSpec()
			s.Filters = []Filter{UpdateFailed, UpdateSucceeded, UpdateFailed}
			return s
		},
			field: "filters[2]", parts: []string{`"update_failed" is listed twice`, "remove the duplicate", "changes nothing"}},
		{name: "org-only stack filter on stack hook", spec: func() Spec { s := stackSpec(); s.Filters = []Filter{StackCreated}; return s },
			field: "filters[0]", parts: []string{`"stack_created" fires for organization webhooks only`, "never receives it", "remove it"}},
		{name: "org-only stack filter on environment hook", spec: func() Spec { s := envSpec(); s.Filters = []Filter{StackDeleted}; return s },
			field: "filters[0]", parts: []string{"organization webhooks only"}},
		{name: "org-only environment filter on environment hook", spec: func() Spec { s := envSpec(); s.Filters = []Filter{EnvironmentDeleted}; return s },
			field: "filters[0]", parts: []string{`"environment_deleted" fires for organization webhooks only`}},
		{name: "environment filter on stack hook", spec: func() Spec { s := stackSpec(); s.Filters = []Filter{EnvironmentTagCreated}; return s },
			field: "filters[0]", parts: []string{"is an environment event and never reaches a stack webhook", "remove it"}},
		{name: "imported environment filter on stack hook", spec: func() Spec { s := stackSpec(); s.Filters = []Filter{ImportedEnvironmentChanged}; return s },
			field: "filters[0]", parts: []string{"never reaches a stack webhook"}},
		{name: "stack filter on environment hook", spec: func() Spec { s := envSpec(); s.Filters = []Filter{DriftDetected}; return s },
			field: "filters[0]", parts: []string{"is a stack event and never reaches an environment webhook"}},
		{name: "duplicate group", spec: func() Spec { s := orgSpec(); s.Groups = []Group{GroupStacks, GroupStacks}; return s },
			field: "groups[1]", parts: []string{`"stacks" is listed twice`, "remove the duplicate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.spec()
			if err := s.Validate(); err != nil {
				t.Fatalf("Validate refuses what Pulumi Cloud accepts: %v", err)
			}
			advice := s.Advise()
			if len(advice) != 1 {
				t.Fatalf("Advise = %v, want one entry", advice)
			}
			hasError(t, advice, tc.field, tc.parts...)
		})
	}
}

// TestSpecAdviseQuiet: a clean spec gets no advice, and neither does an entry Validate refuses
// or a scope too broken to judge filters by.
func TestSpecAdviseQuiet(t *testing.T) {
	t.Parallel()
	for name, s := range map[string]Spec{
		"clean stack hook": func() Spec {
			s := stackSpec()
			s.Filters = []Filter{UpdateFailed}
			s.Groups = []Group{GroupStacks}
			return s
		}(),
		"org hook, every filter once": func() Spec {
			s := orgSpec()
			s.Filters = append([]Filter(nil), filters...)
			return s
		}(),
		"unknown filter twice":  func() Spec { s := orgSpec(); s.Filters = []Filter{"bad", "bad"}; return s }(),
		"unknown group twice":   func() Spec { s := orgSpec(); s.Groups = []Group{"bad", "bad"}; return s }(),
		"scope with no project": func() Spec { s := stackSpec(); s.Project = ""; s.Filters = []Filter{StackCreated}; return s }(),
	} {
		if advice := s.Advise(); len(advice) != 0 {
			t.Errorf("%s: Advise = %v, want none", name, advice)
		}
	}
}

// TestSpecValidateReportsEverything checks Validate collects every problem, each naming its
// field, rather than stopping at the first.
func TestSpecValidateReportsEverything(t *testing.T) {
	t.Parallel()
	s := Spec{
		Scope:   Scope{Project: "p"},
		Name:    "x y",
		Format:  "xml",
		Filters: []Filter{"bad", "bad", UpdateFailed, UpdateFailed},
		Groups:  []Group{"bad", GroupStacks, GroupStacks},
	}
	errs := fieldErrors(t, s)
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	want := []string{"organizationName", "projectName", "displayName", "name", "format",
		"filters[0]", "filters[1]", "groups[0]"}
	if !slices.Equal(fields, want) {
		t.Errorf("fields %v, want %v", fields, want)
	}
	// The payload URL is not judged when the format is unknown: which rule applies is unclear.
	if slices.Contains(fields, "payloadUrl") {
		t.Error("payloadUrl judged under an unknown format")
	}
	// An unknown filter listed twice is reported as unknown both times.
	if !strings.Contains(errs[5].Message, "unknown filter") || !strings.Contains(errs[6].Message, "unknown filter") {
		t.Errorf("unknown filters: %v / %v", errs[5], errs[6])
	}
}

func TestFieldErrors(t *testing.T) {
	t.Parallel()
	var errs FieldErrors
	if errs.Err() != nil {
		t.Error("empty FieldErrors is an error")
	}
	errs.Add("a", "is wrong")
	errs.Add("b[0]", "is worse")
	err := errs.Err()
	if err == nil || err.Error() != "a: is wrong; b[0]: is worse" {
		t.Errorf("Err() = %v", err)
	}
	wrapped := fmt.Errorf("creating hook: %w", err)
	var got FieldErrors
	if !errors.As(wrapped, &got) || len(got) != 2 || got[1].Field != "b[0]" {
		t.Errorf("errors.As through a wrap: %v", got)
	}
	if (FieldError{Field: "x", Message: "y"}).Error() != "x: y" {
		t.Error("FieldError.Error")
	}
}

func TestFormats(t *testing.T) {
	t.Parallel()
	if got := Formats(); !slices.Equal(got, []Format{"raw", "slack", "pulumi_deployments", "ms_teams"}) {
		t.Errorf("Formats() = %v, want the schema's order", got)
	}
	for _, f := range Formats() {
		if !f.Valid() {
			t.Errorf("%s not Valid", f)
		}
	}
	for _, f := range []Format{"", "Raw", "teams", "json"} {
		if f.Valid() {
			t.Errorf("%q is Valid", f)
		}
	}
	if FormatDefault != FormatRaw {
		t.Errorf("FormatDefault = %q", FormatDefault)
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	s := orgSpec()
	s.Normalize()
	if s.Format != FormatRaw {
		t.Errorf("Normalize left format %q", s.Format)
	}
	s.Format = FormatSlack
	s.Normalize()
	if s.Format != FormatSlack {
		t.Errorf("Normalize replaced format slack with %q", s.Format)
	}
}

func TestDefaultAndEffectiveGroups(t *testing.T) {
	t.Parallel()
	want := map[ScopeKind][]Group{
		ScopeOrganization: {GroupDeployments, GroupEnvironments, GroupStacks},
		ScopeStack:        {GroupDeployments, GroupStacks},
		ScopeEnvironment:  {GroupEnvironments},
	}
	specs := map[ScopeKind]Spec{ScopeOrganization: orgSpec(), ScopeStack: stackSpec(), ScopeEnvironment: envSpec()}
	for k, groups := range want {
		if got := DefaultGroups(k); !slices.Equal(got, groups) {
			t.Errorf("DefaultGroups(%s) = %v, want %v", k, got, groups)
		}
		s := specs[k]
		if got := s.EffectiveGroups(); !slices.Equal(got, groups) {
			t.Errorf("%s spec without filters or groups: EffectiveGroups %v, want %v", k, got, groups)
		}
		// Every filter a scope's default groups admit can reach the scope, except the
		// organization-only ones, which matching drops for stack and environment hooks.
		for _, f := range Filters() {
			inDefault := slices.ContainsFunc(groups, func(g Group) bool { return f.Kind().InGroup(g) })
			if f.ReachesScope(k) && !inDefault {
				t.Errorf("%s reaches %s hooks but is not in their default groups", f, k)
			}
		}
		s.Filters = []Filter{UpdateFailed}
		if got := s.EffectiveGroups(); len(got) != 0 {
			t.Errorf("%s spec with filters only: EffectiveGroups %v, want none", k, got)
		}
		s.Groups = []Group{GroupStacks}
		if got := s.EffectiveGroups(); !slices.Equal(got, []Group{GroupStacks}) {
			t.Errorf("%s spec with groups: EffectiveGroups %v", k, got)
		}
	}
}

func TestParseDeploymentTarget(t *testing.T) {
	t.Parallel()
	p, s, err := ParseDeploymentTarget("infra/prod-1")
	if err != nil || p != "infra" || s != "prod-1" {
		t.Errorf("ParseDeploymentTarget(infra/prod-1) = %q, %q, %v", p, s, err)
	}
	for _, bad := range []string{"", "infra", "/", "infra/", "/prod", "a/b/c", "a//b", "infra/pr od",
		"infra/prod\t", "\ninfra/prod", "infra/prod\r", "infra/prod\u00a0", "https://x/y", "infra:1/prod"} {
		if p, s, err := ParseDeploymentTarget(bad); err == nil {
			t.Errorf("ParseDeploymentTarget(%q) = %q, %q, want an error", bad, p, s)
		} else if !strings.Contains(err.Error(), "project/stack") {
			t.Errorf("ParseDeploymentTarget(%q) error %q does not show the form", bad, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://example.com/a@b":             "https://example.com/a@b",
		"https://u:p@example.com/x":           "https://REDACTED@example.com/x",
		"https://u@example.com":               "https://REDACTED@example.com",
		"https://a@b@example.com?q=c@d":       "https://REDACTED@example.com?q=c@d",
		"u:p@example.com/path":                "REDACTED@example.com/path",
		"infra/prod":                          "infra/prod",
		"http://[::1":                         "http://[::1",
		"https://example.com#frag@x":          "https://example.com#frag@x",
		"https://user:pa%40ss@example.com:80": "https://REDACTED@example.com:80",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestParseHTTPURL: the rule every payload URL follows, also for webhooks stored before
// Spec.Validate's further rules; its errors never hold the URL, which may carry credentials.
func TestParseHTTPURL(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"http://127.0.0.1:9/hook", "https://bob:hunter2@example.com/x", "http://[::1]:65535/"} {
		if _, err := ParseHTTPURL(ok); err != nil {
			t.Errorf("ParseHTTPURL(%q) = %v", ok, err)
		}
	}
	for _, tc := range []struct{ url, want string }{
		{"", "is empty"},
		{"http://bob:hunter2@[::1", "is not a valid URL"},
		{"//hunter2.example.com/hook", "no scheme"},
		{"ftp://hunter2.example.com/hook", `scheme "ftp" is not supported`},
		{"http:///hunter2", "no host"},
		{"http://:8080/hunter2", "no host"},
		{"http://example.com:0/hunter2", `port "0"`},
		{"http://example.com:65536/hunter2", "from 1 to 65535"},
	} {
		_, err := ParseHTTPURL(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseHTTPURL(%q) = %v, want an error with %q", tc.url, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseHTTPURL(%q): the error %q shows the URL", tc.url, err)
		}
	}
}
