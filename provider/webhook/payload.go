package webhook

// The JSON payloads of each event kind, as raw-format hooks receive them. Fields and their
// order follow Pulumi's documented examples: the stack and deployment payloads of the Pulumi
// Cloud webhooks page, the environment payloads of the ESC webhooks page, the ping of the REST
// API reference. Kinds with no documented example (drift, environment rotation, policy
// violations) follow the same style: user and organization, the subject's names, then the
// facts of the event.

// User is who caused an event: the name of the API token that emitted it, the author of the
// backend history entry a watcher read, or SystemUser when no person caused it.
type User struct {
	Name        string `json:"name"`
	GithubLogin string `json:"githubLogin"`
	AvatarURL   string `json:"avatarUrl"`
}

// Organization is the organization an event happened in: Name is its display name (the
// configured one, else its name), GithubLogin its name as it appears in URLs.
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

	// PolicyViolationPayload.EnforcementLevel.
	EnforcementMandatory = "mandatory"
	EnforcementAdvisory  = "advisory"

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

// The environment payloads follow the examples of Pulumi's ESC webhook documentation: the
// environment's names, then the facts of the event. They carry no console link (the
// documentation shows none); chat formats link the environment from its names.

// EnvironmentPayload is the payload of the environment kind: environment_created and
// environment_deleted.
type EnvironmentPayload struct {
	User            User         `json:"user"`
	Organization    Organization `json:"organization"`
	ProjectName     string       `json:"projectName"`
	EnvironmentName string       `json:"environmentName"`
	Action          string       `json:"action"` // created | deleted
}

// EnvironmentRevisionPayload is the payload of the environment_revision kind.
type EnvironmentRevisionPayload struct {
	User            User         `json:"user"`
	Organization    Organization `json:"organization"`
	ProjectName     string       `json:"projectName"`
	EnvironmentName string       `json:"environmentName"`
	Action          string       `json:"action"` // created | retracted
	Revision        int          `json:"revision"`
}

// EnvironmentRevisionTagPayload is the payload of the environment_revision_tag kind: a named
// tag (such as "stable") pointing at a revision.
type EnvironmentRevisionTagPayload struct {
	User            User         `json:"user"`
	Organization    Organization `json:"organization"`
	ProjectName     string       `json:"projectName"`
	EnvironmentName string       `json:"environmentName"`
	TagName         string       `json:"tagName"`
	Action          string       `json:"action"` // created | deleted | updated
	Revision        int          `json:"revision"`
}

// EnvironmentTagPayload is the payload of the environment_tag kind: a key/value tag on the
// environment itself. As in Pulumi's documentation, it names the tag only.
type EnvironmentTagPayload struct {
	User            User         `json:"user"`
	Organization    Organization `json:"organization"`
	ProjectName     string       `json:"projectName"`
	EnvironmentName string       `json:"environmentName"`
	TagName         string       `json:"tagName"`
	Action          string       `json:"action"` // created | deleted | updated
}

// EnvironmentReference names one revision of an environment.
type EnvironmentReference struct {
	ProjectName     string `json:"projectName"`
	EnvironmentName string `json:"environmentName"`
	Revision        int    `json:"revision"`
}

// ImportedEnvironmentChangedPayload is the payload of the imported_environment_changed kind:
// an environment this one imports got a new revision (ImportedEnvironmentReference), which
// changes the revisions of this environment listed in AffectedRevisions.
type ImportedEnvironmentChangedPayload struct {
	User                         User                 `json:"user"`
	Organization                 Organization         `json:"organization"`
	ProjectName                  string               `json:"projectName"`
	EnvironmentName              string               `json:"environmentName"`
	AffectedRevisions            []int                `json:"affectedRevisions"`
	ImportedEnvironmentReference EnvironmentReference `json:"importedEnvironmentReference"`
}

// EnvironmentRotationPayload is the payload of the environment_rotation kind: a secret
// rotation ran. Pulumi's documentation shows no example of it; it has the shape of the other
// environment payloads, with the rotation's result and, when it succeeded, the revision it
// wrote.
type EnvironmentRotationPayload struct {
	User            User         `json:"user"`
	Organization    Organization `json:"organization"`
	ProjectName     string       `json:"projectName"`
	EnvironmentName string       `json:"environmentName"`
	Action          string       `json:"action"` // rotated
	Result          string       `json:"result"` // succeeded | failed
	Revision        *int         `json:"revision,omitempty"`
}

// PolicyViolationPayload is the payload of the policy_violation kind
// (policy_violation_mandatory, policy_violation_advisory): a policy of a policy pack found a
// violation in a stack's operation. Pulumi's documentation shows no example of it; it has the
// shape of the other stack payloads and the facts of the violation, which the emitter gives.
type PolicyViolationPayload struct {
	User             User         `json:"user"`
	Organization     Organization `json:"organization"`
	ProjectName      string       `json:"projectName"`
	StackName        string       `json:"stackName"`
	EnforcementLevel string       `json:"enforcementLevel"` // mandatory | advisory
	PolicyPack       string       `json:"policyPack"`
	PolicyName       string       `json:"policyName"`
	ResourceURN      string       `json:"resourceUrn"`
	Message          string       `json:"message"`
}

// PingMessage is the message of every ping, as Pulumi Cloud sends it.
const PingMessage = "🍹 Just a friendly ping from Pulumi 🍹"

// PingPayload is the payload of a ping, exactly as Pulumi Cloud sends it: when it was sent, in
// Unix seconds, and PingMessage.
type PingPayload struct {
	Timestamp int64  `json:"timestamp"`
	Message   string `json:"message"`
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
	case KindPolicyViolation:
		return &PolicyViolationPayload{}
	case KindPing:
		return &PingPayload{}
	}
	return nil
}
