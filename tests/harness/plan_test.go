package harness

import (
	"fmt"
	"slices"
	"strings"
)

// The organizations, stacks and environments the harness's hooks watch and its events name.
// None of them has to exist anywhere: events are fired for them through the API and the CLI.
const (
	org1     = "organization" // the organization of every stack on a file backend
	org2     = "other-org"
	project  = "app"
	stackA   = "prod"
	stackB   = "staging"
	envE     = "dev"
	goneName = "gone" // the stack of the hook whose receiver answers 410 Gone
)

// subject is a webhook's scope or an event's subject: an organization, a stack (Project and
// Stack) or an environment (Project and Env).
type subject struct {
	Org, Project, Stack, Env string
}

var (
	subjA  = subject{Org: org1, Project: project, Stack: stackA}
	subjB  = subject{Org: org1, Project: project, Stack: stackB}
	subjE  = subject{Org: org1, Project: project, Env: envE}
	subjX  = subject{Org: org2, Project: project, Stack: stackA}
	subjXE = subject{Org: org2, Project: project, Env: envE}
)

// roundSubjects are the subjects every round fires all filters for: the organization's two
// stacks and its environment, and a stack and an environment of a second organization.
var roundSubjects = []subject{subjA, subjB, subjE, subjX, subjXE}

func (s subject) isStack() bool { return s.Stack != "" }
func (s subject) isEnv() bool   { return s.Env != "" }
func (s subject) isOrg() bool   { return s.Project == "" && s.Stack == "" && s.Env == "" }

func (s subject) String() string {
	switch {
	case s.isStack():
		return s.Org + "/" + s.Project + "/" + s.Stack
	case s.isEnv():
		return s.Org + "/" + s.Project + "/" + s.Env
	}
	return s.Org
}

// The vocabulary, written out here from the Pulumi Cloud documentation and the pulumiservice
// v1.3.0 schema rather than taken from provider/webhook, so that the expectations do not share
// code with what they check.
var filterKinds = map[string]string{
	"stack_created":                    "stack",
	"stack_deleted":                    "stack",
	"update_succeeded":                 "stack_update",
	"update_failed":                    "stack_update",
	"preview_succeeded":                "stack_preview",
	"preview_failed":                   "stack_preview",
	"destroy_succeeded":                "stack_update",
	"destroy_failed":                   "stack_update",
	"refresh_succeeded":                "stack_update",
	"refresh_failed":                   "stack_update",
	"deployment_queued":                "deployment",
	"deployment_started":               "deployment",
	"deployment_succeeded":             "deployment",
	"deployment_failed":                "deployment",
	"drift_detected":                   "drift_detection",
	"drift_detection_succeeded":        "drift_detection",
	"drift_detection_failed":           "drift_detection",
	"drift_remediation_succeeded":      "drift_remediation",
	"drift_remediation_failed":         "drift_remediation",
	"environment_created":              "environment",
	"environment_deleted":              "environment",
	"environment_revision_created":     "environment_revision",
	"environment_revision_retracted":   "environment_revision",
	"environment_revision_tag_created": "environment_revision_tag",
	"environment_revision_tag_deleted": "environment_revision_tag",
	"environment_revision_tag_updated": "environment_revision_tag",
	"environment_tag_created":          "environment_tag",
	"environment_tag_deleted":          "environment_tag",
	"environment_tag_updated":          "environment_tag",
	"imported_environment_changed":     "imported_environment_changed",
	"environment_rotation_succeeded":   "environment_rotation",
	"environment_rotation_failed":      "environment_rotation",
}

// allFilters lists the 32 filters in the schema's order.
var allFilters = []string{
	"stack_created", "stack_deleted", "update_succeeded", "update_failed", "preview_succeeded",
	"preview_failed", "destroy_succeeded", "destroy_failed", "refresh_succeeded", "refresh_failed",
	"deployment_queued", "deployment_started", "deployment_succeeded", "deployment_failed",
	"drift_detected", "drift_detection_succeeded", "drift_detection_failed",
	"drift_remediation_succeeded", "drift_remediation_failed", "environment_created",
	"environment_deleted", "environment_revision_created", "environment_revision_retracted",
	"environment_revision_tag_created", "environment_revision_tag_deleted",
	"environment_revision_tag_updated", "environment_tag_created", "environment_tag_deleted",
	"environment_tag_updated", "imported_environment_changed", "environment_rotation_succeeded",
	"environment_rotation_failed",
}

// orgOnlyFilters reach organization webhooks only.
var orgOnlyFilters = []string{"stack_created", "stack_deleted", "environment_created", "environment_deleted"}

var groupKinds = map[string][]string{
	"stacks":      {"stack", "stack_preview", "stack_update"},
	"deployments": {"deployment", "drift_detection", "drift_remediation"},
	"environments": {"environment", "environment_revision", "environment_revision_tag", "environment_tag",
		"imported_environment_changed", "environment_rotation"},
}

// defaultGroups are what the provider fills in when a hook names neither filters nor groups,
// as the official provider does.
func defaultGroups(s subject) []string {
	switch {
	case s.isStack():
		return []string{"deployments", "stacks"}
	case s.isEnv():
		return []string{"environments"}
	}
	return []string{"deployments", "environments", "stacks"}
}

// isEnvFilter reports whether events of f are about an environment (else a stack).
func isEnvFilter(f string) bool { return slices.Contains(groupKinds["environments"], filterKinds[f]) }

// Formats.
const (
	formatRaw         = "raw"
	formatSlack       = "slack"
	formatTeams       = "ms_teams"
	formatDeployments = "pulumi_deployments"
)

// Receivers.
const (
	recvJSON  = "json"  // raw-format hooks
	recvChat  = "chat"  // Slack and Teams hooks
	recvGone  = "gone"  // answers 410 Gone
	recvFlaky = "flaky" // answers 500 for a while, then 200
	recvSlow  = "slow"  // answers 200 slowly (the crash case)
)

// Providers a hook can be managed through.
const (
	provEmbedded = "embedded"
	provRemote   = "remote"
)

// hook is one webhook of the plan.
type hook struct {
	// Lang is the program that declares it (yaml, nodejs, python, go), or "api" for hooks the
	// harness creates through the REST API.
	Lang string
	// Key is the resource name and the last segment of the payload URL's path.
	Key      string
	Provider string
	Scope    subject
	// Format is empty for the default (raw).
	Format  string
	Active  bool
	Filters []string
	Groups  []string
	// SecretName names the hook's secret among the harness's secrets; empty for none.
	SecretName string
	Receiver   string
	// Target is the "project/stack" of a pulumi_deployments hook.
	Target string
	// Want is the number of HTTP deliveries the hook gets in each round (1, 2, 3), counted by
	// hand from the rules; TestExpectationTable checks the model against it.
	Want [3]int
	// WantRequests is the number of deployment requests a pulumi_deployments hook makes in
	// each round.
	WantRequests [3]int
}

func (h hook) name() string        { return h.Lang + "/" + h.Key }
func (h hook) displayName() string { return "harness " + h.Lang + " " + h.Key }
func (h hook) path() string        { return "/" + h.Lang + "/" + h.Key }

func (h hook) format() string {
	if h.Format == "" {
		return formatRaw
	}
	return h.Format
}

// groups returns the groups the hook is stored with: its own, or the defaults when it names
// neither filters nor groups.
func (h hook) groups() []string {
	if len(h.Filters) == 0 && len(h.Groups) == 0 {
		return defaultGroups(h.Scope)
	}
	return h.Groups
}

// receives reports whether the hook receives an event of filter about s (for a
// pulumi_deployments hook: whether the event makes it queue a deployment). This is the
// documented rule, written independently of the engine's.
func (h hook) receives(filter string, s subject) bool {
	if !h.Active || h.Scope.Org != s.Org {
		return false
	}
	switch {
	case h.Scope.isOrg():
	case slices.Contains(orgOnlyFilters, filter):
		return false
	default:
		if h.Scope != s {
			return false
		}
	}
	if len(h.Filters) == 0 && len(h.Groups) == 0 {
		return true
	}
	if slices.Contains(h.Filters, filter) {
		return true
	}
	for _, g := range h.Groups {
		if slices.Contains(groupKinds[g], filterKinds[filter]) {
			return true
		}
	}
	return false
}

// languagePlan is the hooks of the TypeScript, Python and Go programs (the same for each, so
// the three SDKs are held to identical results) in a phase (1: first up, 2: after the change).
func languagePlan(lang string, phase int) []hook {
	orgFilters := []string{"stack_created", "update_failed", "deployment_queued", "environment_created",
		"environment_revision_created", "drift_detected"}
	orgNeitherActive := true
	stackFiltersScope := subjA
	if phase >= 2 {
		orgFilters = []string{"update_failed"} // narrowed
		orgNeitherActive = false               // deactivated
		stackFiltersScope = subjB              // scope changed: a replacement
	}
	hs := []hook{
		// Through the embedded store (but org-neither, through the API, so that an update in
		// place goes through PATCH too).
		{Key: "org-filters", Provider: provEmbedded, Scope: subject{Org: org1}, Active: true, Filters: orgFilters,
			SecretName: "org-filters", Receiver: recvJSON, Want: [3]int{21, 2}},
		{Key: "org-groups", Provider: provEmbedded, Scope: subject{Org: org1}, Format: formatSlack, Active: true,
			Groups: []string{"deployments"}, Receiver: recvChat, Want: [3]int{29, 29}},
		{Key: "org-neither", Provider: provRemote, Scope: subject{Org: org1}, Format: formatTeams, Active: orgNeitherActive,
			SecretName: "org-neither", Receiver: recvChat, Want: [3]int{62, 0}},
		{Key: "stack-both", Provider: provEmbedded, Scope: subjA, Format: formatRaw, Active: true,
			Filters: []string{"update_succeeded", "preview_failed"}, Groups: []string{"deployments"},
			SecretName: "stack-both", Receiver: recvJSON, Want: [3]int{19, 19}},
		{Key: "env-groups", Provider: provEmbedded, Scope: subjE, Active: true, Groups: []string{"environments"},
			SecretName: "env-groups-whsec", Receiver: recvJSON, Want: [3]int{11, 11}},
		{Key: "inactive", Provider: provEmbedded, Scope: subject{Org: org1}, Active: false, Receiver: recvJSON},
		{Key: "deployer", Provider: provEmbedded, Scope: subjA, Format: formatDeployments, Active: true,
			Filters: []string{"update_succeeded"}, Target: project + "/" + stackB, WantRequests: [3]int{1, 1}},
		{Key: "org2-neither", Provider: provEmbedded, Scope: subject{Org: org2}, Active: true,
			SecretName: "org2-neither", Receiver: recvJSON, Want: [3]int{32, 32}},
		// Through the server's REST API.
		{Key: "org-both", Provider: provRemote, Scope: subject{Org: org1}, Active: true,
			Filters: []string{"stack_deleted", "refresh_failed", "environment_tag_updated"}, Groups: []string{"deployments"},
			SecretName: "org-both", Receiver: recvJSON, Want: [3]int{34, 34}},
		{Key: "stack-neither", Provider: provRemote, Scope: subjB, Format: formatSlack, Active: true,
			Receiver: recvChat, Want: [3]int{20, 20}},
		{Key: "stack-filters", Provider: provRemote, Scope: stackFiltersScope, Format: formatTeams, Active: true,
			Filters: []string{"destroy_succeeded", "deployment_failed"}, Receiver: recvChat, Want: [3]int{2, 2}},
		{Key: "env-filters", Provider: provRemote, Scope: subjE, Format: formatRaw, Active: true,
			Filters:    []string{"environment_rotation_failed", "imported_environment_changed"},
			SecretName: "env-filters", Receiver: recvJSON, Want: [3]int{2, 2}},
		{Key: "env-neither", Provider: provRemote, Scope: subjE, Format: formatTeams, Active: true,
			Receiver: recvChat, Want: [3]int{11, 11}},
		{Key: "env-deployer", Provider: provRemote, Scope: subjE, Format: formatDeployments, Active: true,
			Filters: []string{"environment_revision_created"}, Target: project + "/" + stackA, WantRequests: [3]int{1, 1}},
		{Key: "inactive-stack", Provider: provRemote, Scope: subjA, Active: false, Groups: []string{"stacks"}, Receiver: recvJSON},
	}
	for i := range hs {
		hs[i].Lang = lang
		if hs[i].SecretName != "" {
			hs[i].SecretName = lang + "/" + hs[i].SecretName
		}
	}
	return hs
}

// yamlPlan is the hooks of programs/yaml/Pulumi.yaml in a phase; the program fixes everything
// but what its configuration (yamlConfig) changes.
func yamlPlan(phase int) []hook {
	orgFilters := []string{"stack_created", "update_failed", "environment_deleted"}
	teamsActive := true
	slackScope := subjA
	if phase >= 2 {
		orgFilters = []string{"update_failed"}
		teamsActive = false
		slackScope = subjB
	}
	return []hook{
		{Lang: "yaml", Key: "org-filters", Provider: provEmbedded, Scope: subject{Org: org1}, Active: true,
			Filters: orgFilters, SecretName: "yaml/org", Receiver: recvJSON, Want: [3]int{5, 2}},
		{Lang: "yaml", Key: "stack-groups", Provider: provRemote, Scope: slackScope, Format: formatSlack, Active: true,
			Groups: []string{"stacks"}, Receiver: recvChat, Want: [3]int{8, 8}},
		{Lang: "yaml", Key: "env-both", Provider: provRemote, Scope: subjE, Active: true,
			Filters: []string{"environment_revision_tag_created"}, Groups: []string{"environments"},
			SecretName: "yaml/env-whsec", Receiver: recvJSON, Want: [3]int{11, 11}},
		{Lang: "yaml", Key: "teams-all", Provider: provEmbedded, Scope: subject{Org: org1}, Format: formatTeams,
			Active: teamsActive, Receiver: recvChat, Want: [3]int{62, 0}},
		{Lang: "yaml", Key: "deployer", Provider: provRemote, Scope: subjB, Format: formatDeployments, Active: true,
			Filters: []string{"deployment_succeeded", "deployment_queued"}, Target: project + "/" + stackA,
			WantRequests: [3]int{5, 5}},
		{Lang: "yaml", Key: "gone", Provider: provRemote, Scope: subject{Org: org1, Project: project, Stack: goneName},
			Active: true, Filters: []string{"update_failed"}, Receiver: recvGone},
		{Lang: "yaml", Key: "inactive", Provider: provEmbedded, Scope: subjE, Active: false,
			Groups: []string{"environments"}, Receiver: recvJSON},
	}
}

// importedHook is created with `pulumi-webhooks hooks create`, then adopted by the YAML stack with `pulumi
// import` before round 2.
func importedHook() hook {
	return hook{Lang: "import", Key: "adopted", Provider: provRemote, Scope: subjA, Active: true,
		Filters: []string{"update_failed", "deployment_started"}, Receiver: recvJSON, Want: [3]int{0, 2}}
}

// sdkLangs are the languages whose programs run as Automation API inline programs.
var sdkLangs = []string{"nodejs", "python", "go"}

// planFor is every hook the stacks hold in a phase (and the imported one from phase 2 on).
func planFor(phase int) []hook {
	var hs []hook
	hs = append(hs, yamlPlan(phase)...)
	for _, l := range sdkLangs {
		hs = append(hs, languagePlan(l, phase)...)
	}
	if phase >= 2 {
		hs = append(hs, importedHook())
	}
	return hs
}

// event is one event of a round: fired by the harness, or queued by a pulumi_deployments hook.
type event struct {
	// Tag identifies a fired event in its payload (user.name) and so in every delivery of it.
	// Queued events carry the system user; their tag is "queued:" + subject.
	Tag     string
	Filter  string
	Subject subject
	// ViaCLI is true when the event is fired with `pulumi-webhooks emit`, else through the
	// events API.
	ViaCLI bool
}

func queuedTag(s subject) string { return "queued:" + s.String() }

// roundEvents is every event a round fires: all 32 filters, each for the stacks or the
// environments of roundSubjects, alternately through the API and the CLI.
func roundEvents(round int) []event {
	var evs []event
	for _, s := range roundSubjects {
		for _, f := range allFilters {
			if isEnvFilter(f) != s.isEnv() {
				continue
			}
			n := len(evs)
			evs = append(evs, event{Tag: fmt.Sprintf("hx-r%d-e%03d", round, n), Filter: f, Subject: s, ViaCLI: n%2 == 1})
		}
	}
	return evs
}

// outcome is what the model says one fired event leads to.
type outcome struct {
	// Deliveries counts HTTP deliveries, those of the deployment_queued events it sets off
	// included (the events API's "deliveries").
	Deliveries int
	// DeploymentRequests counts the deployment requests it and its queued events make.
	DeploymentRequests int
}

// expectation is the one table of a round: for every hook (by name) the deliveries it must get,
// counted by event tag, and what each fired event must answer.
type expectation struct {
	Deliveries map[string]map[string]int
	// Requests counts deployment requests by deployer hook name.
	Requests map[string]int
	Events   map[string]outcome
}

// total is the number of HTTP deliveries the round must produce.
func (x expectation) total() int {
	n := 0
	for _, m := range x.Deliveries {
		for _, c := range m {
			n += c
		}
	}
	return n
}

// expect runs the model: every fired event reaches the hooks that receive it; a
// pulumi_deployments hook that receives one queues a deployment of its target, which is a
// deployment_queued event about the target that in turn reaches hooks, unless the target is
// already in the chain that led to it.
func expect(hooks []hook, fired []event) expectation {
	x := expectation{Deliveries: map[string]map[string]int{}, Requests: map[string]int{}, Events: map[string]outcome{}}
	for _, h := range hooks {
		x.Deliveries[h.name()] = map[string]int{}
	}
	var deliver func(tag, filter string, s subject, cause []string, o *outcome)
	deliver = func(tag, filter string, s subject, cause []string, o *outcome) {
		for _, h := range hooks {
			if !h.receives(filter, s) {
				continue
			}
			if h.format() != formatDeployments {
				x.Deliveries[h.name()][tag]++
				o.Deliveries++
				continue
			}
			proj, stack, _ := strings.Cut(h.Target, "/")
			target := subject{Org: h.Scope.Org, Project: proj, Stack: stack}
			x.Requests[h.name()]++
			o.DeploymentRequests++
			if slices.Contains(cause, target.String()) {
				continue // a cycle: recorded, nothing queued
			}
			deliver(queuedTag(target), "deployment_queued", target, append(slices.Clone(cause), target.String()), o)
		}
	}
	for _, ev := range fired {
		var o outcome
		deliver(ev.Tag, ev.Filter, ev.Subject, nil, &o)
		x.Events[ev.Tag] = o
	}
	return x
}
