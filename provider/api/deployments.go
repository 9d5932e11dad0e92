package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// SecretValue is a value in deployment settings that may be secret, as Pulumi Cloud's
// Deployments API writes it: a plain JSON string, or {"secret": "value"} on input. A secret's
// value is never encoded: it goes out as {"ciphertext": "<keyed digest>"}, and sending that
// back unchanged keeps the stored secret.
type SecretValue struct {
	Value  string
	Secret bool
	// Ciphertext is the keyed digest of a stored secret (never the secret itself).
	Ciphertext string
	// Remove is set when the value was given as null: PATCH removes the entry.
	Remove bool
}

// MarshalJSON writes a plain value as a string and a secret as {"ciphertext": ...}.
func (v SecretValue) MarshalJSON() ([]byte, error) {
	if !v.Secret {
		return json.Marshal(v.Value)
	}
	return json.Marshal(map[string]string{"ciphertext": v.Ciphertext})
}

// UnmarshalJSON reads "value", {"secret": "value"} or {"ciphertext": "..."}; a ciphertext
// equal to the one already held keeps the value held (PATCH leaves the secret alone).
func (v *SecretValue) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*v = SecretValue{Remove: true}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = SecretValue{Value: s}
		return nil
	}
	var o struct {
		Secret     *string `json:"secret"`
		Ciphertext *string `json:"ciphertext"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return errors.New(`give a string, {"secret": "value"} for a secret, or {"ciphertext": "..."} as read back to keep a stored secret`)
	}
	switch {
	case o.Secret != nil:
		*v = SecretValue{Value: *o.Secret, Secret: true}
	case o.Ciphertext != nil:
		if v.Secret && v.Ciphertext == *o.Ciphertext {
			return nil
		}
		*v = SecretValue{Secret: true, Ciphertext: *o.Ciphertext}
	default:
		return errors.New(`give {"secret": "value"} for a secret, or {"ciphertext": "..."} as read back to keep a stored secret`)
	}
	return nil
}

// DeploymentSettings is the body of the deployment settings endpoints
// (/api/stacks/{org}/{project}/{stack}/deployments/settings): Pulumi Cloud's shape, with a
// local directory source and a backend section that a self-managed runner needs.
type DeploymentSettings struct {
	SourceContext    *SourceContext    `json:"sourceContext,omitempty"`
	OperationContext *OperationContext `json:"operationContext,omitempty"`
	// Backend is where the stack's state lives and how its secrets are encrypted.
	Backend *Backend `json:"backend,omitempty"`
}

// SourceContext says where the program comes from: a local directory or a git repository.
type SourceContext struct {
	Local *LocalSource `json:"local,omitempty"`
	Git   *GitSource   `json:"git,omitempty"`
}

// LocalSource is a program in a directory of the runner's machine.
type LocalSource struct {
	Path string `json:"path"`
}

// GitSource is a program in a git repository, cloned for each deployment.
type GitSource struct {
	RepoURL string   `json:"repoUrl"`
	Branch  string   `json:"branch,omitempty"`
	RepoDir string   `json:"repoDir,omitempty"`
	Commit  string   `json:"commit,omitempty"`
	GitAuth *GitAuth `json:"gitAuth,omitempty"`
}

// GitAuth authenticates the clone of an HTTPS repository.
type GitAuth struct {
	AccessToken *SecretValue  `json:"accessToken,omitempty"`
	BasicAuth   *GitBasicAuth `json:"basicAuth,omitempty"`
}

// GitBasicAuth is a user name and password.
type GitBasicAuth struct {
	UserName SecretValue `json:"userName"`
	Password SecretValue `json:"password"`
}

// OperationContext is how operations run.
type OperationContext struct {
	PreRunCommands       []string               `json:"preRunCommands,omitempty"`
	EnvironmentVariables map[string]SecretValue `json:"environmentVariables,omitempty"`
	Options              *OperationOptions      `json:"options,omitempty"`
}

// OperationOptions are the options of Pulumi Deployments that this runner honours.
type OperationOptions struct {
	SkipInstallDependencies  bool `json:"skipInstallDependencies,omitempty"`
	RemediateIfDriftDetected bool `json:"remediateIfDriftDetected,omitempty"`
	DeleteAfterDestroy       bool `json:"deleteAfterDestroy,omitempty"`
}

// Backend is the stack's state backend and secrets provider.
type Backend struct {
	// URL is the backend URL (file://, s3://, gs://, azblob://, postgres://).
	URL string `json:"url"`
	// SecretsProvider is passed to stack creation ("passphrase" when empty).
	SecretsProvider string `json:"secretsProvider,omitempty"`
	// Passphrase is PULUMI_CONFIG_PASSPHRASE for the passphrase secrets provider.
	Passphrase *SecretValue `json:"passphrase,omitempty"`
}

// SecretRef is one secret value of the settings and its path.
type SecretRef struct {
	Path  string
	Value *SecretValue
}

// Secrets returns every secret value of s (and every value that could be one) with its path,
// in a stable order.
func (s *DeploymentSettings) Secrets() []SecretRef {
	var out []SecretRef
	add := func(path string, v *SecretValue) {
		if v != nil && v.Secret {
			out = append(out, SecretRef{Path: path, Value: v})
		}
	}
	if s.OperationContext != nil {
		names := make([]string, 0, len(s.OperationContext.EnvironmentVariables))
		for k := range s.OperationContext.EnvironmentVariables {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			v := s.OperationContext.EnvironmentVariables[k]
			add("operationContext.environmentVariables."+k, &v)
			s.OperationContext.EnvironmentVariables[k] = v
		}
	}
	if s.SourceContext != nil && s.SourceContext.Git != nil && s.SourceContext.Git.GitAuth != nil {
		a := s.SourceContext.Git.GitAuth
		add("sourceContext.git.gitAuth.accessToken", a.AccessToken)
		if a.BasicAuth != nil {
			add("sourceContext.git.gitAuth.basicAuth.userName", &a.BasicAuth.UserName)
			add("sourceContext.git.gitAuth.basicAuth.password", &a.BasicAuth.Password)
		}
	}
	if s.Backend != nil {
		add("backend.passphrase", s.Backend.Passphrase)
	}
	return out
}

// setSecret writes v back at path (map entries are copies).
func (s *DeploymentSettings) setSecret(path string, v SecretValue) {
	const env = "operationContext.environmentVariables."
	if len(path) > len(env) && path[:len(env)] == env && s.OperationContext != nil {
		s.OperationContext.EnvironmentVariables[path[len(env):]] = v
	}
}

// SettingsFromStore decodes stored settings, with the secrets' values and digests filled in.
func SettingsFromStore(ds *store.DeploymentSettings) (*DeploymentSettings, error) {
	var s DeploymentSettings
	if err := json.Unmarshal(ds.Settings, &s); err != nil {
		return nil, fmt.Errorf("decode the deployment settings of %s: %w", ds.Stack, err)
	}
	for _, ref := range s.Secrets() {
		v := *ref.Value
		v.Value, v.Ciphertext = ds.Secrets[ref.Path], ds.SecretDigests[ref.Path]
		*ref.Value = v
		s.setSecret(ref.Path, v)
	}
	return &s, nil
}

// ToStore splits s into the document to store (no secret values) and the secrets by path.
// A secret given only by a ciphertext must match the one in prev (the stored settings, or
// nil); otherwise the error names its path.
func (s *DeploymentSettings) ToStore(prev *store.DeploymentSettings) ([]byte, map[string]string, error) {
	secrets := map[string]string{}
	for _, ref := range s.Secrets() {
		v := *ref.Value
		if v.Value == "" && v.Ciphertext != "" {
			if prev == nil || prev.SecretDigests[ref.Path] != v.Ciphertext {
				return nil, nil, fmt.Errorf("%s: the ciphertext does not match the stored secret: give the value as {\"secret\": \"...\"}", ref.Path)
			}
			v.Value = prev.Secrets[ref.Path]
		}
		secrets[ref.Path] = v.Value
		// The stored document keeps only the mark that the value is secret.
		cleared := SecretValue{Secret: true}
		*ref.Value = cleared
		s.setSecret(ref.Path, cleared)
	}
	doc, err := json.Marshal(s)
	if err != nil {
		return nil, nil, err
	}
	return doc, secrets, nil
}

// Deployment is a deployment as the API returns it.
type Deployment struct {
	ID              string         `json:"id"`
	Version         int            `json:"version"`
	OrgName         string         `json:"orgName"`
	ProjectName     string         `json:"projectName"`
	StackName       string         `json:"stackName"`
	Operation       string         `json:"operation"`
	Status          string         `json:"status"`
	Reason          string         `json:"reason,omitempty"`
	Source          string         `json:"source,omitempty"`
	Cause           []string       `json:"cause,omitempty"`
	DriftDetected   bool           `json:"driftDetected,omitempty"`
	ResourceChanges map[string]int `json:"resourceChanges,omitempty"`
	Created         string         `json:"created"`
	Started         string         `json:"started,omitempty"`
	Finished        string         `json:"finished,omitempty"`
}

// FromDeployment converts a stored deployment (its log is served apart).
func FromDeployment(d *store.Deployment) Deployment {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return Deployment{
		ID: d.ID, Version: d.Version, OrgName: d.Stack.Org, ProjectName: d.Stack.Project, StackName: d.Stack.Stack,
		Operation: d.Operation, Status: d.Status, Reason: d.Reason, Source: d.Source, Cause: d.Cause,
		DriftDetected: d.DriftDetected, ResourceChanges: d.ResourceChanges,
		Created: ts(d.CreatedAt), Started: ts(d.StartedAt), Finished: ts(d.FinishedAt),
	}
}

// CreateDeploymentRequest is the body of POST .../deployments.
type CreateDeploymentRequest struct {
	Operation string `json:"operation"`
	// InheritSettings is accepted for Pulumi Cloud compatibility: the stack's settings are
	// always used.
	InheritSettings *bool `json:"inheritSettings,omitempty"`
}

// CreateDeploymentResponse answers POST .../deployments.
type CreateDeploymentResponse struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Status  string `json:"status"`
}

// DeploymentList answers GET .../deployments.
type DeploymentList struct {
	Deployments []Deployment `json:"deployments"`
}

// DeploymentLogs answers GET .../deployments/{id}/logs.
type DeploymentLogs struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Log    string `json:"log"`
}

// DriftSchedule is the body and answer of the drift schedule endpoints.
type DriftSchedule struct {
	ID            string `json:"id,omitempty"`
	ScheduleCron  string `json:"scheduleCron"`
	AutoRemediate bool   `json:"autoRemediate"`
	NextExecution string `json:"nextExecution,omitempty"`
}

// FromDriftSchedule converts a stored drift schedule.
func FromDriftSchedule(s *store.DriftSchedule) DriftSchedule {
	return DriftSchedule{ID: s.ID, ScheduleCron: s.ScheduleCron, AutoRemediate: s.AutoRemediate,
		NextExecution: s.NextRunAt.UTC().Format(time.RFC3339Nano)}
}

// DriftScheduleList answers GET .../deployments/drift/schedules.
type DriftScheduleList struct {
	Schedules []DriftSchedule `json:"schedules"`
}

// envNameOK reports whether name can be an environment variable's name.
func envNameOK(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// BackendSchemes are the backend URL schemes a stack's settings may name.
var BackendSchemes = []string{"file", "s3", "gs", "azblob", "postgres"}

// DropRemoved removes the environment variables given as null.
func (s *DeploymentSettings) DropRemoved() {
	if s.OperationContext == nil {
		return
	}
	for k, v := range s.OperationContext.EnvironmentVariables {
		if v.Remove {
			delete(s.OperationContext.EnvironmentVariables, k)
		}
	}
}

// Validate checks the settings and names each offending field with the fix.
func (s *DeploymentSettings) Validate() error {
	var errs webhook.FieldErrors
	if sc := s.SourceContext; sc != nil {
		switch {
		case sc.Local != nil && sc.Git != nil:
			errs.Add("sourceContext", "give either local or git, not both")
		case sc.Local != nil:
			if !filepath.IsAbs(sc.Local.Path) {
				errs.Add("sourceContext.local.path", fmt.Sprintf("%q must be an absolute path of a directory on the runner's machine", sc.Local.Path))
			}
		case sc.Git != nil:
			if sc.Git.RepoURL == "" {
				errs.Add("sourceContext.git.repoUrl", "is required: give the repository to clone (https://..., ssh://..., or a path)")
			}
			if strings.HasPrefix(sc.Git.RepoDir, "/") || slices.Contains(strings.Split(sc.Git.RepoDir, "/"), "..") {
				errs.Add("sourceContext.git.repoDir", fmt.Sprintf("%q must be a relative path inside the repository", sc.Git.RepoDir))
			}
		}
	}
	if oc := s.OperationContext; oc != nil {
		for name := range oc.EnvironmentVariables {
			if !envNameOK(name) {
				errs.Add("operationContext.environmentVariables", fmt.Sprintf("%q is not a variable name: use letters, digits and _ , not starting with a digit", name))
			}
		}
		for i, c := range oc.PreRunCommands {
			if strings.TrimSpace(c) == "" {
				errs.Add(fmt.Sprintf("operationContext.preRunCommands[%d]", i), "is empty: give a shell command or remove it")
			}
		}
	}
	if b := s.Backend; b != nil {
		scheme, _, ok := strings.Cut(b.URL, "://")
		if !ok || !slices.Contains(BackendSchemes, scheme) {
			errs.Add("backend.url", fmt.Sprintf("%q is not a backend URL: use one of %s, e.g. file:///var/lib/pulumi-state", b.URL,
				strings.Join(BackendSchemes, ":// "))+"://")
		}
	}
	return errs.Err()
}
