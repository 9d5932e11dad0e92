package server

import (
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
	ep := emitParams(c.scope.Org, body, r.Header.Get(api.HeaderIdempotencyKey))
	ep.Actor = TokenUser(c.token)
	res, err := s.engine.Emit(r.Context(), ep)
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

// emitParams hands an event request of organization org, as decoded, to the engine, which
// checks it (engine.EmitParams.Validate): the server adds no rule of its own.
func emitParams(org string, req api.EmitRequest, idempotencyKey string) engine.EmitParams {
	return engine.EmitParams{
		Filter:         webhook.Filter(req.Filter),
		Subject:        webhook.Scope{Org: org, Project: req.ProjectName, Stack: req.StackName, Environment: req.EnvironmentName},
		Overrides:      req.Payload,
		IdempotencyKey: idempotencyKey,
	}
}
