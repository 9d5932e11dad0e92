package server

import (
	"net/http"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
)

// hookSecretCheck answers whether the secret in the body is the webhook's (see
// api.SecretCheckRequest). Neither secret is logged or echoed.
func (s *Server) hookSecretCheck(w http.ResponseWriter, r *http.Request, c *call) error {
	ref := c.ref(r)
	var body api.SecretCheckRequest
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	ok, err := s.engine.HookSecretMatches(r.Context(), ref, body.Secret)
	if err != nil {
		return hookError(ref, err)
	}
	writeJSON(w, http.StatusOK, api.SecretCheckResponse{Matches: ok})
	return nil
}
