package webhook

// The JSON payloads of each event kind, as raw-format hooks receive them. Field names follow
// the Pulumi Cloud reference payloads: camelCase, `user` and `organization` first. Kinds the
// reference shows no example for (drift, environments, ping) follow the same style: the
// subject's names, a console link, then the facts of the event.

// User is who caused an event.
type User struct {
	Name        string `json:"name"`
	GithubLogin string `json:"githubLogin"`
	AvatarURL   string `json:"avatarUrl"`
}

// Organization is the organization an event happened in.
type Organization struct {
	Name        string `json:"name"`
	GithubLogin string `json:"githubLogin"`
	AvatarURL   string `json:"avatarUrl"`
}

// SystemUserName is the name and login of the user of events no person caused, such as
// synthetic, scheduled or chained ones.
const SystemUserName = "pulumi-webhooks"

// SystemUser returns the user of events no person caused.
func SystemUser() User { return User{Name: SystemUserName, GithubLogin: SystemUserName} }

// Values of the string fields of payloads.
const (
	// StackPayload.Action, EnvironmentPayload.Action and friends.
	ActionCreated   = "created"
	ActionDeleted   = "deleted"
	ActionUpdated   = "updated"
	ActionRetracted = "retracted"
	ActionChanged   = "changed"
	ActionRotated   = "rotated"

	// StackUpdatePayload.Kind.
	UpdateKindUpdate  = "update"
	UpdateKindDestroy = "destroy"
	UpdateKindRefresh = "refresh"

	// StackUpdatePayload.Result and EnvironmentRotationPayload.Result.
	ResultSucceeded = "succeeded"
	ResultFailed    = "failed"

	// DeploymentPayload.Status; drift payloads use StatusSucceeded and StatusFailed.
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"

	// DeploymentPayload.Operation: the operations of Pulumi Deployments.
	OperationUpdate         = "update"
	OperationPreview        = "preview"
	OperationRefresh        = "refresh"
	OperationDestroy        = "destroy"
	OperationDetectDrift    = "detect-drift"
	OperationRemediateDrift = "remediate-drift"
)

// StackPayload is the payload of the stack kind: stack_created and stack_deleted.
type StackPayload struct {
	User         User         `json:"user"`
	Organization Organization `json:"organization"`
	Action       string       `json:"action"` // created | deleted
	ProjectName  string       `json:"projectName"`
	StackName    string       `json:"stackName"`
}

// StackUpdatePayload is the payload of the stack_update kind (update, destroy and refresh
// results) and, with IsPreview set and UpdateURL pointing at the preview, of stack_preview.
type StackUpdatePayload struct {
	User         User         `json:"user"`
	Organization Organization `json:"organization"`
	ProjectName  string       `json:"projectName"`
	StackName    string       `json:"stackName"`
	UpdateURL    string       `json:"updateUrl"`
	Kind         string       `json:"kind"`   // update | destroy | refresh
	Result       string       `json:"result"` // succeeded | failed
	// ResourceChanges counts the resources per operation, e.g. {"update": 3, "delete": 1}.
	ResourceChanges map[string]int `json:"resourceChanges"`
	IsPreview       bool           `json:"isPreview"`
}

// StackPreviewPayload is the payload of the stack_preview kind; it has the stack_update shape.
type StackPreviewPayload = StackUpdatePayload

// DeploymentPayload is the payload of the deployment kind.
type DeploymentPayload struct {
	User          User         `json:"user"`
	Organization  Organization `json:"organization"`
	ProjectName   string       `json:"projectName"`
	StackName     string       `json:"stackName"`
	DeploymentURL string       `json:"deploymentUrl"`
	Version       int          `json:"version"`
	Operation     string       `json:"operation"` // update, preview, refresh, destroy...
	Status        string       `json:"status"`    // queued | running | succeeded | failed
}

// DriftDetectionPayload is the payload of the drift_detection kind (drift_detected,
// drift_detection_succeeded, drift_detection_failed), as Pulumi's webhook documentation gives
// it: whether the run found drift, the run's id, its status, the resource changes the
// preview-only refresh found (operation -> count) and a link to the run.
type DriftDetectionPayload struct {
	User            User           `json:"user"`
	Organization    Organization   `json:"organization"`
	ProjectName     string         `json:"projectName"`
	StackName       string         `json:"stackName"`
	DriftDetected   bool           `json:"driftDetected"`
	DriftRunID      string         `json:"driftRunId"`
	Status          string         `json:"status"` // succeeded | failed
	ResourceChanges map[string]int `json:"resourceChanges"`
	ReferenceURL    string         `json:"referenceUrl"`
}

// DriftRemediationPayload is the payload of the drift_remediation kind
// (drift_remediation_succeeded, drift_remediation_failed): the status of the remediating
// update, the resource changes it made and a link to the run.
type DriftRemediationPayload struct {
	User            User           `json:"user"`
	Organization    Organization   `json:"organization"`
	ProjectName     string         `json:"projectName"`
	StackName       string         `json:"stackName"`
	Status          string         `json:"status"` // succeeded | failed
	ResourceChanges map[string]int `json:"resourceChanges"`
	ReferenceURL    string         `json:"referenceUrl"`
}

// EnvironmentPayload is the payload of the environment kind: environment_created and
// environment_deleted.
type EnvironmentPayload struct {
	User            User         `json:"user"`
	Organization    Organization `json:"organization"`
	Action          string       `json:"action"` // created | deleted
	ProjectName     string       `json:"projectName"`
	EnvironmentName string       `json:"environmentName"`
	EnvironmentURL  string       `json:"environmentUrl"`
}

// EnvironmentRevisionPayload is the payload of the environment_revision kind.
type EnvironmentRevisionPayload struct {
	User            User         `json:"user"`
	Organization    Organization `json:"organization"`
	Action          string       `json:"action"` // created | retracted
	ProjectName     string       `json:"projectName"`
	EnvironmentName string       `json:"environmentName"`
	EnvironmentURL  string       `json:"environmentUrl"`
	Revision        int          `json:"revision"`
}

// EnvironmentRevisionTagPayload is the payload of the environment_revision_tag kind: a named
// tag (such as "stable") pointing at a revision. PreviousRevision is set on updates only.
type EnvironmentRevisionTagPayload struct {
	User             User         `json:"user"`
	Organization     Organization `json:"organization"`
	Action           string       `json:"action"` // created | deleted | updated
	ProjectName      string       `json:"projectName"`
	EnvironmentName  string       `json:"environmentName"`
	EnvironmentURL   string       `json:"environmentUrl"`
	TagName          string       `json:"tagName"`
	Revision         int          `json:"revision"`
	PreviousRevision *int         `json:"previousRevision,omitempty"`
}

// EnvironmentTagPayload is the payload of the environment_tag kind: a key/value tag on the
// environment itself. PreviousTagValue is set on updates only.
type EnvironmentTagPayload struct {
	User             User         `json:"user"`
	Organization     Organization `json:"organization"`
	Action           string       `json:"action"` // created | deleted | updated
	ProjectName      string       `json:"projectName"`
	EnvironmentName  string       `json:"environmentName"`
	EnvironmentURL   string       `json:"environmentUrl"`
	TagName          string       `json:"tagName"`
	TagValue         string       `json:"tagValue"`
	PreviousTagValue *string      `json:"previousTagValue,omitempty"`
}

// ImportedEnvironmentChangedPayload is the payload of the imported_environment_changed kind:
// an environment that this one imports got a new revision.
type ImportedEnvironmentChangedPayload struct {
	User                    User         `json:"user"`
	Organization            Organization `json:"organization"`
	Action                  string       `json:"action"` // changed
	ProjectName             string       `json:"projectName"`
	EnvironmentName         string       `json:"environmentName"`
	EnvironmentURL          string       `json:"environmentUrl"`
	ImportedProjectName     string       `json:"importedProjectName"`
	ImportedEnvironmentName string       `json:"importedEnvironmentName"`
}

// EnvironmentRotationPayload is the payload of the environment_rotation kind: a secret
// rotation ran. Revision, the revision the rotation wrote, is set when it succeeded.
type EnvironmentRotationPayload struct {
	User            User         `json:"user"`
	Organization    Organization `json:"organization"`
	Action          string       `json:"action"` // rotated
	ProjectName     string       `json:"projectName"`
	EnvironmentName string       `json:"environmentName"`
	EnvironmentURL  string       `json:"environmentUrl"`
	Result          string       `json:"result"` // succeeded | failed
	Revision        *int         `json:"revision,omitempty"`
}

// PingPayload is the payload of a ping: it proves the hook is reachable. The names of the
// hook's stack or environment are set when the hook has one.
type PingPayload struct {
	User            User         `json:"user"`
	Organization    Organization `json:"organization"`
	Message         string       `json:"message"`
	ProjectName     string       `json:"projectName,omitempty"`
	StackName       string       `json:"stackName,omitempty"`
	EnvironmentName string       `json:"environmentName,omitempty"`
	// Timestamp is when the ping was sent, in Unix seconds.
	Timestamp int64 `json:"timestamp"`
}

// NewPayload returns a pointer to a zero payload of kind k, ready to unmarshal a raw body
// into, or nil for an unknown kind.
func NewPayload(k Kind) any {
	switch k {
	case KindStack:
		return &StackPayload{}
	case KindStackPreview, KindStackUpdate:
		return &StackUpdatePayload{}
	case KindDeployment:
		return &DeploymentPayload{}
	case KindDriftDetection:
		return &DriftDetectionPayload{}
	case KindDriftRemediation:
		return &DriftRemediationPayload{}
	case KindEnvironment:
		return &EnvironmentPayload{}
	case KindEnvironmentRevision:
		return &EnvironmentRevisionPayload{}
	case KindEnvironmentRevisionTag:
		return &EnvironmentRevisionTagPayload{}
	case KindEnvironmentTag:
		return &EnvironmentTagPayload{}
	case KindImportedEnvironmentChanged:
		return &ImportedEnvironmentChangedPayload{}
	case KindEnvironmentRotation:
		return &EnvironmentRotationPayload{}
	case KindPing:
		return &PingPayload{}
	}
	return nil
}
