package console_test

import (
	"net/http"
	"testing"
)

// The console offers the policy violation filters the API accepts (they are not in the
// provider schema), so that editing a webhook subscribed to one shows it checked and keeps it,
// and the delivery log can be filtered by them.
func TestPolicyViolationFiltersInForms(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.Tokens["acme"]
	b.createHook(t, "acme", "policy", hookBody("acme", "policy", b.recv.URL(), `,"filters":["policy_violation_mandatory"]`))
	edit := b.do(t, req{path: "/-/orgs/acme/hooks/policy/edit", token: tok})
	wantStatus(t, edit, http.StatusOK)
	wantBody(t, edit, `value="policy_violation_mandatory" checked`, `value="policy_violation_advisory">`)
	page := b.do(t, req{path: "/-/orgs/acme/hooks/policy?event=policy_violation_advisory", token: tok})
	wantStatus(t, page, http.StatusOK)
}
