// Package api holds the wire types of the pulumi-webhooks REST API: the Pulumi Cloud webhook
// endpoints (organization, stack and ESC environment scopes) and the event ingestion
// extension. The server encodes them and the remote client decodes them, so both sides agree
// on every JSON name by construction; the server's tests check them against the OpenAPI
// document of the Pulumi Cloud API.
package api

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Webhook is the request body of the create and update endpoints (the Webhook schema). Every
// field is a pointer so the server can tell a field that was left out from one set to its zero
// value: create requires some fields, and update (PATCH) changes only the fields it is given.
// Filters and Groups, when set, are sent even when empty, so an update can clear them.
type Webhook struct {
	OrganizationName *string `json:"organizationName,omitempty"`
	ProjectName      *string `json:"projectName,omitempty"`
	StackName        *string `json:"stackName,omitempty"`
	// EnvName is the ESC environment; the Pulumi Cloud API calls it envName on the wire.
	EnvName     *string   `json:"envName,omitempty"`
	Name        *string   `json:"name,omitempty"`
	DisplayName *string   `json:"displayName,omitempty"`
	PayloadURL  *string   `json:"payloadUrl,omitempty"`
	Secret      *string   `json:"secret,omitempty"`
	Active      *bool     `json:"active,omitempty"`
	Format      *string   `json:"format,omitempty"`
	Filters     *[]string `json:"filters,omitempty"`
	Groups      *[]string `json:"groups,omitempty"`

	// HasSecret and SecretCiphertext are response fields. A client that sends back a webhook it
	// read may leave them in; the server ignores them.
	HasSecret        *bool   `json:"hasSecret,omitempty"`
	SecretCiphertext *string `json:"secretCiphertext,omitempty"`
}

// SecretUpdate returns what the secret of an update (PATCH) body asks, in the terms of
// engine.HookUpdateParams.Secret: left out or "" keeps the stored secret (nil), as Pulumi Cloud
// takes it; webhook.RemoveSecret removes it (a pointer to ""); anything else replaces it.
func SecretUpdate(wire *string) *string {
	switch {
	case wire == nil || *wire == "":
		return nil
	case *wire == webhook.RemoveSecret:
		empty := ""
		return &empty
	default:
		return wire
	}
}

// SecretUpdateWire is SecretUpdate's inverse: the "secret" of an update body that keeps (nil),
// removes (a pointer to "") or replaces the stored secret.
func SecretUpdateWire(secret *string) *string {
	if secret != nil && *secret == "" {
		remove := webhook.RemoveSecret
		return &remove
	}
	return secret
}

// WebhookFromSpec returns the request body that creates (or fully updates) a hook with spec:
// every field is set, so an update through it means what HookUpdate means in embedded mode.
// The secret is included only when secret is non-nil.
func WebhookFromSpec(spec webhook.Spec, secret *string) Webhook {
	filters := make([]string, len(spec.Filters))
	for i, f := range spec.Filters {
		filters[i] = string(f)
	}
	groups := make([]string, len(spec.Groups))
	for i, g := range spec.Groups {
		groups[i] = string(g)
	}
	w := Webhook{
		OrganizationName: &spec.Org,
		DisplayName:      &spec.DisplayName,
		PayloadURL:       &spec.PayloadURL,
		Active:           &spec.Active,
		Filters:          &filters,
		Groups:           &groups,
		Secret:           secret,
	}
	if spec.Project != "" {
		w.ProjectName = &spec.Project
	}
	if spec.Stack != "" {
		w.StackName = &spec.Stack
	}
	if spec.Environment != "" {
		w.EnvName = &spec.Environment
	}
	if spec.Name != "" {
		w.Name = &spec.Name
	}
	// The format is always sent: a spec without one means the default, as in embedded mode,
	// not "keep the current format".
	format := string(spec.Format)
	if format == "" {
		format = string(webhook.FormatDefault)
	}
	w.Format = &format
	return w
}

// WebhookResponse is a hook as the API returns it (the WebhookResponse schema). It never
// carries the secret: HasSecret says whether there is one, and SecretCiphertext (the store's
// keyed digest, store.Hook.SecretDigest, under the field name Pulumi Cloud uses) changes when
// it changes.
type WebhookResponse struct {
	OrganizationName string   `json:"organizationName"`
	ProjectName      string   `json:"projectName,omitempty"`
	StackName        string   `json:"stackName,omitempty"`
	EnvName          string   `json:"envName,omitempty"`
	Name             string   `json:"name"`
	DisplayName      string   `json:"displayName"`
	PayloadURL       string   `json:"payloadUrl"`
	Active           bool     `json:"active"`
	Format           string   `json:"format"`
	Filters          []string `json:"filters,omitempty"`
	Groups           []string `json:"groups,omitempty"`
	HasSecret        bool     `json:"hasSecret"`
	SecretCiphertext string   `json:"secretCiphertext"`
}

// FromHook returns the API form of a stored hook.
func FromHook(h *store.Hook) WebhookResponse {
	r := WebhookResponse{
		OrganizationName: h.Org,
		ProjectName:      h.Project,
		StackName:        h.Stack,
		EnvName:          h.Environment,
		Name:             h.Name,
		DisplayName:      h.DisplayName,
		PayloadURL:       h.PayloadURL,
		Active:           h.Active,
		Format:           string(h.Format),
		HasSecret:        h.HasSecret,
		SecretCiphertext: h.SecretDigest,
	}
	if r.Format == "" {
		r.Format = string(webhook.FormatDefault)
	}
	for _, f := range h.Filters {
		r.Filters = append(r.Filters, string(f))
	}
	for _, g := range h.Groups {
		r.Groups = append(r.Groups, string(g))
	}
	return r
}

// Hook returns the stored-hook form of a response. Fields the API does not carry (ID,
// timestamps, DisabledReason) are left zero; Spec.Secret is always empty.
func (r WebhookResponse) Hook() *store.Hook {
	h := &store.Hook{
		Spec: webhook.Spec{
			Scope: webhook.Scope{
				Org:         r.OrganizationName,
				Project:     r.ProjectName,
				Stack:       r.StackName,
				Environment: r.EnvName,
			},
			Name:        r.Name,
			DisplayName: r.DisplayName,
			PayloadURL:  r.PayloadURL,
			Active:      r.Active,
			Format:      webhook.Format(r.Format),
		},
		HasSecret:    r.HasSecret,
		SecretDigest: r.SecretCiphertext,
	}
	for _, f := range r.Filters {
		h.Filters = append(h.Filters, webhook.Filter(f))
	}
	for _, g := range r.Groups {
		h.Groups = append(h.Groups, webhook.Group(g))
	}
	return h
}

// WebhookDelivery is one recorded attempt to deliver an event (the WebhookDelivery schema).
// ID is the delivery's ID, the Pulumi-Webhook-ID header, which the redeliver endpoint takes.
type WebhookDelivery struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Payload is the request body that was sent.
	Payload string `json:"payload"`
	// Timestamp is when the attempt started, in Unix seconds.
	Timestamp int64 `json:"timestamp"`
	// Duration is how long the attempt took, in milliseconds.
	Duration       int64  `json:"duration"`
	RequestURL     string `json:"requestUrl"`
	RequestHeaders string `json:"requestHeaders"`
	// ResponseCode is 0 when no response arrived (see the engine's attempt error).
	ResponseCode    int    `json:"responseCode"`
	ResponseHeaders string `json:"responseHeaders"`
	ResponseBody    string `json:"responseBody"`
}

// FromAttempt returns the API form of a recorded attempt.
func FromAttempt(a *store.Attempt) WebhookDelivery {
	return WebhookDelivery{
		ID:              a.DeliveryID,
		Kind:            string(a.Kind),
		Payload:         string(a.RequestBody),
		Timestamp:       a.StartedAt.Unix(),
		Duration:        a.Duration.Milliseconds(),
		RequestURL:      a.RequestURL,
		RequestHeaders:  FormatHeaders(a.RequestHeaders),
		ResponseCode:    a.ResponseCode,
		ResponseHeaders: FormatHeaders(a.ResponseHeaders),
		ResponseBody:    string(a.ResponseBody),
	}
}

// FormatHeaders renders headers as "Name: value" lines in name order, the way they looked on
// the wire.
func FormatHeaders(h map[string][]string) string {
	if len(h) == 0 {
		return ""
	}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		for _, v := range h[k] {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteString("\n")
		}
	}
	return b.String()
}

// Error is the body of every error response: the HTTP status again and a message naming the
// offending field and the fix. Errors, our addition, lists the field problems one by one when
// the request was invalid, so a client can rebuild them.
type Error struct {
	Code    int          `json:"code"`
	Message string       `json:"message"`
	Errors  []FieldError `json:"errors,omitempty"`
}

// FieldError is one problem with one request field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// EmitRequest is the body of POST /api/orgs/{org}/events: which event happened, to which stack
// (ProjectName and StackName) or environment (ProjectName and EnvironmentName), and optional
// overrides of the generated payload's top-level fields.
type EmitRequest struct {
	Filter          string          `json:"filter"`
	ProjectName     string          `json:"projectName,omitempty"`
	StackName       string          `json:"stackName,omitempty"`
	EnvironmentName string          `json:"environmentName,omitempty"`
	Payload         json.RawMessage `json:"payload,omitempty"`
}

// EmitResponse is the 202 answer to an emitted event: the event's ID and how many deliveries
// (and deployment requests) it produced. A replay of an idempotency key returns the first
// answer unchanged.
type EmitResponse struct {
	EventID            string `json:"eventId"`
	Deliveries         int    `json:"deliveries"`
	DeploymentRequests int    `json:"deploymentRequests"`
}

// HeaderIdempotencyKey names the optional header that makes an emit idempotent for 24 hours.
const HeaderIdempotencyKey = "Idempotency-Key"

// HeaderIdempotentReplay is set to "true" on an emit answer that replays an earlier one.
const HeaderIdempotentReplay = "Idempotent-Replayed"

// Paging of the hook and delivery listings, our extension of the Pulumi Cloud API: the body
// stays the bare array, and the next page is named in headers.
const (
	// ParamContinuationToken is the query parameter that asks for the page after the one whose
	// answer carried the token (HeaderContinuationToken). Pulumi's REST prose names it.
	ParamContinuationToken = "continuationToken"
	// ParamLimit is the query parameter of the page size.
	ParamLimit = "limit"
	// ParamBefore is the delivery log's older cursor (an attempt ID), kept for existing
	// callers: ParamContinuationToken does its job for both listings.
	ParamBefore = "before"
	// HeaderContinuationToken carries the next page's token; it is absent on the last page.
	HeaderContinuationToken = "X-Continuation-Token"
	// HeaderNextBefore carries the delivery log's older cursor for ParamBefore, beside
	// HeaderContinuationToken; deprecated in favour of it.
	HeaderNextBefore = "X-Next-Before"
)

// HooksPath returns the collection path of the hooks of scope s.
func HooksPath(s webhook.Scope) string {
	e := url.PathEscape
	switch s.Kind() {
	case webhook.ScopeStack:
		return "/api/stacks/" + e(s.Org) + "/" + e(s.Project) + "/" + e(s.Stack) + "/hooks"
	case webhook.ScopeEnvironment:
		return "/api/esc/environments/" + e(s.Org) + "/" + e(s.Project) + "/" + e(s.Environment) + "/hooks"
	default:
		return "/api/orgs/" + e(s.Org) + "/hooks"
	}
}

// HookPath returns the path of one hook.
func HookPath(ref store.HookRef) string {
	return HooksPath(ref.Scope) + "/" + url.PathEscape(ref.Name)
}

// EventsPath returns the event ingestion path of an organization.
func EventsPath(org string) string { return "/api/orgs/" + url.PathEscape(org) + "/events" }
