package server

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func (s *Server) emit(w http.ResponseWriter, r *http.Request, c *call) error {
	var body api.EmitRequest
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	p, err := ParseEmit(c.scope.Org, body, r.Header.Get(api.HeaderIdempotencyKey))
	if err != nil {
		return err
	}
	p.Actor = TokenUser(c.token)
	res, err := s.engine.Emit(r.Context(), p)
	if err != nil {
		return emitError(err)
	}
	if res.Replayed {
		w.Header().Set(api.HeaderIdempotentReplay, "true")
	}
	writeJSON(w, http.StatusAccepted, api.EmitResponse{
		EventID: res.EventID, Deliveries: res.Deliveries, DeploymentRequests: res.DeploymentRequests,
	})
	return nil
}

// ParseEmit checks an event request of organization org and returns the engine's parameters.
// Problems come back as webhook.FieldErrors naming the request field: an unknown filter, a
// stack event without its stack (or with an environment), a payload that is not an object,
// a malformed idempotency key. The CLI's emit command uses it too, so both accept the same
// requests.
func ParseEmit(org string, req api.EmitRequest, idempotencyKey string) (engine.EmitParams, error) {
	var errs webhook.FieldErrors
	subject := webhook.Scope{Org: org, Project: req.ProjectName, Stack: req.StackName, Environment: req.EnvironmentName}
	for _, f := range []struct{ name, v string }{
		{"organizationName", org}, {"projectName", req.ProjectName}, {"stackName", req.StackName}, {"environmentName", req.EnvironmentName},
	} {
		if f.v == "" {
			continue
		}
		if err := webhook.CheckScopeName(f.v); err != nil {
			errs.Add(f.name, err.Error())
		}
	}
	filter, err := webhook.ParseFilter(req.Filter)
	switch {
	case req.Filter == "":
		errs.Add("filter", "is required: name the event that happened, e.g. \"update_succeeded\"")
	case err != nil:
		errs.Add("filter", err.Error())
	case filter.Subject() == webhook.ScopeStack:
		if req.ProjectName == "" {
			errs.Add("projectName", fmt.Sprintf("is required for %q, a stack event: give the stack's project", filter))
		}
		if req.StackName == "" {
			errs.Add("stackName", fmt.Sprintf("is required for %q, a stack event: give the stack's name", filter))
		}
		if req.EnvironmentName != "" {
			errs.Add("environmentName", fmt.Sprintf("cannot be set for %q, a stack event: give projectName and stackName instead", filter))
		}
	case filter.Subject() == webhook.ScopeEnvironment:
		if req.ProjectName == "" {
			errs.Add("projectName", fmt.Sprintf("is required for %q, an environment event: give the environment's project", filter))
		}
		if req.EnvironmentName == "" {
			errs.Add("environmentName", fmt.Sprintf("is required for %q, an environment event: give the environment's name", filter))
		}
		if req.StackName != "" {
			errs.Add("stackName", fmt.Sprintf("cannot be set for %q, an environment event: give projectName and environmentName instead", filter))
		}
	}
	overrides := bytes.TrimSpace(req.Payload)
	if bytes.Equal(overrides, []byte("null")) {
		overrides = nil
	}
	if len(overrides) > 0 && overrides[0] != '{' {
		errs.Add("payload", "must be a JSON object whose fields replace the generated payload's, e.g. {\"user\": {\"name\": \"ci\"}}")
	}
	if len(idempotencyKey) > engine.IdempotencyKeyMaxLen {
		errs.Add(api.HeaderIdempotencyKey, fmt.Sprintf("is %d characters long: use at most %d", len(idempotencyKey), engine.IdempotencyKeyMaxLen))
	}
	for _, r := range idempotencyKey {
		if r < 0x21 || r > 0x7e {
			errs.Add(api.HeaderIdempotencyKey, "contains white space or a non-ASCII character: use printable ASCII, e.g. a UUID")
			break
		}
	}
	if err := errs.Err(); err != nil {
		return engine.EmitParams{}, err
	}
	return engine.EmitParams{Filter: filter, Subject: subject, Overrides: overrides, IdempotencyKey: idempotencyKey}, nil
}
