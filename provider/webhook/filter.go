package webhook

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Filter is one event a webhook can subscribe to, e.g. "update_succeeded".
type Filter string

// Kind is the family an event belongs to; it is sent as the Pulumi-Webhook-Kind header.
type Kind string

// Group names a set of kinds a webhook can subscribe to at once.
type Group string

// The event filters, in the order of the Pulumi Service provider's WebhookFilters enum.
const (
	StackCreated                  Filter = "stack_created"
	StackDeleted                  Filter = "stack_deleted"
	UpdateSucceeded               Filter = "update_succeeded"
	UpdateFailed                  Filter = "update_failed"
	PreviewSucceeded              Filter = "preview_succeeded"
	PreviewFailed                 Filter = "preview_failed"
	DestroySucceeded              Filter = "destroy_succeeded"
	DestroyFailed                 Filter = "destroy_failed"
	RefreshSucceeded              Filter = "refresh_succeeded"
	RefreshFailed                 Filter = "refresh_failed"
	DeploymentQueued              Filter = "deployment_queued"
	DeploymentStarted             Filter = "deployment_started"
	DeploymentSucceeded           Filter = "deployment_succeeded"
	DeploymentFailed              Filter = "deployment_failed"
	DriftDetected                 Filter = "drift_detected"
	DriftDetectionSucceeded       Filter = "drift_detection_succeeded"
	DriftDetectionFailed          Filter = "drift_detection_failed"
	DriftRemediationSucceeded     Filter = "drift_remediation_succeeded"
	DriftRemediationFailed        Filter = "drift_remediation_failed"
	EnvironmentCreated            Filter = "environment_created"
	EnvironmentDeleted            Filter = "environment_deleted"
	EnvironmentRevisionCreated    Filter = "environment_revision_created"
	EnvironmentRevisionRetracted  Filter = "environment_revision_retracted"
	EnvironmentRevisionTagCreated Filter = "environment_revision_tag_created"
	EnvironmentRevisionTagDeleted Filter = "environment_revision_tag_deleted"
	EnvironmentRevisionTagUpdated Filter = "environment_revision_tag_updated"
	EnvironmentTagCreated         Filter = "environment_tag_created"
	EnvironmentTagDeleted         Filter = "environment_tag_deleted"
	EnvironmentTagUpdated         Filter = "environment_tag_updated"
	ImportedEnvironmentChanged    Filter = "imported_environment_changed"
	EnvironmentRotationSucceeded  Filter = "environment_rotation_succeeded"
	EnvironmentRotationFailed     Filter = "environment_rotation_failed"

	// The policy violation filters are accepted by the REST API, as Pulumi Cloud's are, but are
	// not members of the provider schema's WebhookFilters enum (APIOnly).
	PolicyViolationMandatory Filter = "policy_violation_mandatory"
	PolicyViolationAdvisory  Filter = "policy_violation_advisory"

	// Ping is not a subscribable filter: it is the event a ping request sends to one hook.
	Ping Filter = "ping"
)

// The event kinds.
const (
	KindStack                      Kind = "stack"
	KindStackPreview               Kind = "stack_preview"
	KindStackUpdate                Kind = "stack_update"
	KindDeployment                 Kind = "deployment"
	KindDriftDetection             Kind = "drift_detection"
	KindDriftRemediation           Kind = "drift_remediation"
	KindEnvironment                Kind = "environment"
	KindEnvironmentRevision        Kind = "environment_revision"
	KindEnvironmentRevisionTag     Kind = "environment_revision_tag"
	KindEnvironmentTag             Kind = "environment_tag"
	KindImportedEnvironmentChanged Kind = "imported_environment_changed"
	KindEnvironmentRotation        Kind = "environment_rotation"
	KindPolicyViolation            Kind = "policy_violation"
	KindPing                       Kind = "ping"
)

// The filter groups.
const (
	GroupStacks       Group = "stacks"
	GroupDeployments  Group = "deployments"
	GroupEnvironments Group = "environments"
)

type filterInfo struct {
	name    string // enum member name in the provider schema
	kind    Kind
	orgOnly bool // reaches organization hooks only
	apiOnly bool // accepted by the REST API, not a member of the schema's enum
}

var filters = []Filter{
	StackCreated, StackDeleted, UpdateSucceeded, UpdateFailed, PreviewSucceeded, PreviewFailed,
	DestroySucceeded, DestroyFailed, RefreshSucceeded, RefreshFailed, DeploymentQueued,
	DeploymentStarted, DeploymentSucceeded, DeploymentFailed, DriftDetected,
	DriftDetectionSucceeded, DriftDetectionFailed, DriftRemediationSucceeded,
	DriftRemediationFailed, EnvironmentCreated, EnvironmentDeleted, EnvironmentRevisionCreated,
	EnvironmentRevisionRetracted, EnvironmentRevisionTagCreated, EnvironmentRevisionTagDeleted,
	EnvironmentRevisionTagUpdated, EnvironmentTagCreated, EnvironmentTagDeleted,
	EnvironmentTagUpdated, ImportedEnvironmentChanged, EnvironmentRotationSucceeded,
	EnvironmentRotationFailed,
}

// apiFilters are the subscribable filters beyond the schema's enum.
var apiFilters = []Filter{PolicyViolationMandatory, PolicyViolationAdvisory}

var filterTable = map[Filter]filterInfo{
	StackCreated:                  {"StackCreated", KindStack, true, false},
	StackDeleted:                  {"StackDeleted", KindStack, true, false},
	UpdateSucceeded:               {"UpdateSucceeded", KindStackUpdate, false, false},
	UpdateFailed:                  {"UpdateFailed", KindStackUpdate, false, false},
	PreviewSucceeded:              {"PreviewSucceeded", KindStackPreview, false, false},
	PreviewFailed:                 {"PreviewFailed", KindStackPreview, false, false},
	DestroySucceeded:              {"DestroySucceeded", KindStackUpdate, false, false},
	DestroyFailed:                 {"DestroyFailed", KindStackUpdate, false, false},
	RefreshSucceeded:              {"RefreshSucceeded", KindStackUpdate, false, false},
	RefreshFailed:                 {"RefreshFailed", KindStackUpdate, false, false},
	DeploymentQueued:              {"DeploymentQueued", KindDeployment, false, false},
	DeploymentStarted:             {"DeploymentStarted", KindDeployment, false, false},
	DeploymentSucceeded:           {"DeploymentSucceeded", KindDeployment, false, false},
	DeploymentFailed:              {"DeploymentFailed", KindDeployment, false, false},
	DriftDetected:                 {"DriftDetected", KindDriftDetection, false, false},
	DriftDetectionSucceeded:       {"DriftDetectionSucceeded", KindDriftDetection, false, false},
	DriftDetectionFailed:          {"DriftDetectionFailed", KindDriftDetection, false, false},
	DriftRemediationSucceeded:     {"DriftRemediationSucceeded", KindDriftRemediation, false, false},
	DriftRemediationFailed:        {"DriftRemediationFailed", KindDriftRemediation, false, false},
	EnvironmentCreated:            {"EnvironmentCreated", KindEnvironment, true, false},
	EnvironmentDeleted:            {"EnvironmentDeleted", KindEnvironment, true, false},
	EnvironmentRevisionCreated:    {"EnvironmentRevisionCreated", KindEnvironmentRevision, false, false},
	EnvironmentRevisionRetracted:  {"EnvironmentRevisionRetracted", KindEnvironmentRevision, false, false},
	EnvironmentRevisionTagCreated: {"EnvironmentRevisionTagCreated", KindEnvironmentRevisionTag, false, false},
	EnvironmentRevisionTagDeleted: {"EnvironmentRevisionTagDeleted", KindEnvironmentRevisionTag, false, false},
	EnvironmentRevisionTagUpdated: {"EnvironmentRevisionTagUpdated", KindEnvironmentRevisionTag, false, false},
	EnvironmentTagCreated:         {"EnvironmentTagCreated", KindEnvironmentTag, false, false},
	EnvironmentTagDeleted:         {"EnvironmentTagDeleted", KindEnvironmentTag, false, false},
	EnvironmentTagUpdated:         {"EnvironmentTagUpdated", KindEnvironmentTag, false, false},
	ImportedEnvironmentChanged:    {"ImportedEnvironmentChanged", KindImportedEnvironmentChanged, false, false},
	EnvironmentRotationSucceeded:  {"EnvironmentRotationSucceeded", KindEnvironmentRotation, false, false},
	EnvironmentRotationFailed:     {"EnvironmentRotationFailed", KindEnvironmentRotation, false, false},
	PolicyViolationMandatory:      {"PolicyViolationMandatory", KindPolicyViolation, false, true},
	PolicyViolationAdvisory:       {"PolicyViolationAdvisory", KindPolicyViolation, false, true},
	Ping:                          {"Ping", KindPing, false, false},
}

var groupKinds = map[Group][]Kind{
	GroupStacks:      {KindStack, KindStackPreview, KindStackUpdate},
	GroupDeployments: {KindDeployment, KindDriftDetection, KindDriftRemediation},
	GroupEnvironments: {KindEnvironment, KindEnvironmentRevision, KindEnvironmentRevisionTag,
		KindEnvironmentTag, KindImportedEnvironmentChanged, KindEnvironmentRotation},
}

// Filters returns the 32 filters of the provider schema's WebhookFilters enum, in its order.
// Ping and the API-only filters are not among them.
func Filters() []Filter { return slices.Clone(filters) }

// AllFilters returns every subscribable filter: the schema's 32, then the API-only ones.
func AllFilters() []Filter { return append(slices.Clone(filters), apiFilters...) }

// APIOnly reports whether f is a filter the REST API accepts that the provider schema's enum
// does not have (policy_violation_mandatory and policy_violation_advisory).
func (f Filter) APIOnly() bool { return filterTable[f].apiOnly }

// Groups returns every group, in the schema's enum order.
func Groups() []Group { return []Group{GroupStacks, GroupDeployments, GroupEnvironments} }

// Valid reports whether f is a subscribable filter: one of the schema's 32 or an API-only one.
func (f Filter) Valid() bool {
	_, ok := filterTable[f]
	return ok && f != Ping
}

// Kind returns the event kind of f, or "" for an unknown filter.
func (f Filter) Kind() Kind { return filterTable[f].kind }

// EnumName returns the member name the provider schema gives f, e.g. "UpdateSucceeded".
func (f Filter) EnumName() string { return filterTable[f].name }

// OrgOnly reports whether events of f reach organization hooks only (stack and environment
// creation and deletion).
func (f Filter) OrgOnly() bool { return filterTable[f].orgOnly }

// Subject tells what an event of f is about: a stack or an environment. Ping has neither.
func (f Filter) Subject() ScopeKind {
	switch {
	case f == Ping || !f.Valid():
		return ""
	case f.Kind().InGroup(GroupEnvironments):
		return ScopeEnvironment
	default:
		return ScopeStack
	}
}

// ReachesScope reports whether an event of f can ever be delivered to a hook of scope s.
func (f Filter) ReachesScope(s ScopeKind) bool {
	switch s {
	case ScopeOrganization:
		return f.Valid()
	case ScopeStack, ScopeEnvironment:
		return f.Valid() && !f.OrgOnly() && f.Subject() == s
	}
	return false
}

// ParseFilter returns the filter named s or an error listing the valid values.
func ParseFilter(s string) (Filter, error) {
	f := Filter(s)
	if !f.Valid() {
		return "", fmt.Errorf("unknown filter %s; valid filters are %s", Quote(s), joinQuoted(AllFilters()))
	}
	return f, nil
}

// Valid reports whether g is a known group.
func (g Group) Valid() bool { _, ok := groupKinds[g]; return ok }

// Kinds returns the event kinds g stands for.
func (g Group) Kinds() []Kind { return slices.Clone(groupKinds[g]) }

// ParseGroup returns the group named s or an error listing the valid values.
func ParseGroup(s string) (Group, error) {
	g := Group(s)
	if !g.Valid() {
		return "", fmt.Errorf("unknown group %s; valid groups are %s", Quote(s), joinQuoted(Groups()))
	}
	return g, nil
}

// InGroup reports whether kind k belongs to group g.
func (k Kind) InGroup(g Group) bool { return slices.Contains(groupKinds[g], k) }

// Kinds returns every event kind except ping, sorted.
func Kinds() []Kind {
	seen := map[Kind]bool{}
	var out []Kind
	for _, f := range AllFilters() {
		if k := f.Kind(); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func joinQuoted[T ~string](vs []T) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", string(v))
	}
	return strings.Join(q, ", ")
}
