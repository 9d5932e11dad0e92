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

var filterTable = map[Filter]filterInfo{
	StackCreated:                  {"StackCreated", KindStack, true},
	StackDeleted:                  {"StackDeleted", KindStack, true},
	UpdateSucceeded:               {"UpdateSucceeded", KindStackUpdate, false},
	UpdateFailed:                  {"UpdateFailed", KindStackUpdate, false},
	PreviewSucceeded:              {"PreviewSucceeded", KindStackPreview, false},
	PreviewFailed:                 {"PreviewFailed", KindStackPreview, false},
	DestroySucceeded:              {"DestroySucceeded", KindStackUpdate, false},
	DestroyFailed:                 {"DestroyFailed", KindStackUpdate, false},
	RefreshSucceeded:              {"RefreshSucceeded", KindStackUpdate, false},
	RefreshFailed:                 {"RefreshFailed", KindStackUpdate, false},
	DeploymentQueued:              {"DeploymentQueued", KindDeployment, false},
	DeploymentStarted:             {"DeploymentStarted", KindDeployment, false},
	DeploymentSucceeded:           {"DeploymentSucceeded", KindDeployment, false},
	DeploymentFailed:              {"DeploymentFailed", KindDeployment, false},
	DriftDetected:                 {"DriftDetected", KindDriftDetection, false},
	DriftDetectionSucceeded:       {"DriftDetectionSucceeded", KindDriftDetection, false},
	DriftDetectionFailed:          {"DriftDetectionFailed", KindDriftDetection, false},
	DriftRemediationSucceeded:     {"DriftRemediationSucceeded", KindDriftRemediation, false},
	DriftRemediationFailed:        {"DriftRemediationFailed", KindDriftRemediation, false},
	EnvironmentCreated:            {"EnvironmentCreated", KindEnvironment, true},
	EnvironmentDeleted:            {"EnvironmentDeleted", KindEnvironment, true},
	EnvironmentRevisionCreated:    {"EnvironmentRevisionCreated", KindEnvironmentRevision, false},
	EnvironmentRevisionRetracted:  {"EnvironmentRevisionRetracted", KindEnvironmentRevision, false},
	EnvironmentRevisionTagCreated: {"EnvironmentRevisionTagCreated", KindEnvironmentRevisionTag, false},
	EnvironmentRevisionTagDeleted: {"EnvironmentRevisionTagDeleted", KindEnvironmentRevisionTag, false},
	EnvironmentRevisionTagUpdated: {"EnvironmentRevisionTagUpdated", KindEnvironmentRevisionTag, false},
	EnvironmentTagCreated:         {"EnvironmentTagCreated", KindEnvironmentTag, false},
	EnvironmentTagDeleted:         {"EnvironmentTagDeleted", KindEnvironmentTag, false},
	EnvironmentTagUpdated:         {"EnvironmentTagUpdated", KindEnvironmentTag, false},
	ImportedEnvironmentChanged:    {"ImportedEnvironmentChanged", KindImportedEnvironmentChanged, false},
	EnvironmentRotationSucceeded:  {"EnvironmentRotationSucceeded", KindEnvironmentRotation, false},
	EnvironmentRotationFailed:     {"EnvironmentRotationFailed", KindEnvironmentRotation, false},
	Ping:                          {"Ping", KindPing, false},
}

var groupKinds = map[Group][]Kind{
	GroupStacks:      {KindStack, KindStackPreview, KindStackUpdate},
	GroupDeployments: {KindDeployment, KindDriftDetection, KindDriftRemediation},
	GroupEnvironments: {KindEnvironment, KindEnvironmentRevision, KindEnvironmentRevisionTag,
		KindEnvironmentTag, KindImportedEnvironmentChanged, KindEnvironmentRotation},
}

// Filters returns every subscribable filter (all 32), in the schema's enum order. Ping is not
// among them.
func Filters() []Filter { return slices.Clone(filters) }

// Groups returns every group, in the schema's enum order.
func Groups() []Group { return []Group{GroupStacks, GroupDeployments, GroupEnvironments} }

// Valid reports whether f is one of the 32 subscribable filters.
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
		return "", fmt.Errorf("unknown filter %s; valid filters are %s", Quote(s), joinQuoted(filters))
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
	for _, f := range filters {
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
