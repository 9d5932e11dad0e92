package api

import "github.com/pulumi-webhooks/pulumi-webhooks/provider/store"

// SecretCheckRequest asks whether a secret is the one a webhook holds (our extension, POST
// {hook}/secret/check). The digest the API returns (secretCiphertext) is keyed with the
// server's key, so a client cannot recompute it; the Pulumi provider asks this instead, on
// refresh, to notice a secret replaced outside Pulumi.
type SecretCheckRequest struct {
	Secret string `json:"secret"`
}

// SecretCheckResponse answers a SecretCheckRequest.
type SecretCheckResponse struct {
	Matches bool `json:"matches"`
}

// HookSecretCheckPath is the path of a webhook's secret check.
func HookSecretCheckPath(ref store.HookRef) string { return HookPath(ref) + "/secret/check" }
