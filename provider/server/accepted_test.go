package server_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
)

// TestCreateAcceptsWhatPulumiCloudAccepts: a filter that never fires for the hook's scope and a
// filter or group listed twice are accepted, as Pulumi Cloud accepts them (the provider warns
// about them, webhook.Spec.Advise), and stored and read back as written.
func TestCreateAcceptsWhatPulumiCloudAccepts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := servertest.NewReceiver(t)
	for _, c := range []struct {
		name, path string
		filters    []string
		groups     []string
	}{
		{"organization-only filter on a stack hook", "/api/stacks/acme/web/prod/hooks", []string{"stack_created"}, nil},
		{"environment filter on a stack hook", "/api/stacks/acme/web/prod/hooks", []string{"environment_created", "update_failed"}, nil},
		{"stack filter on an environment hook", "/api/esc/environments/acme/app/dev/hooks", []string{"update_failed"}, nil},
		{"filter listed twice", "/api/orgs/acme/hooks", []string{"update_failed", "update_failed"}, nil},
		{"group listed twice", "/api/orgs/acme/hooks", nil, []string{"stacks", "deployments", "stacks"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := hookBody("acme", rcv.URL())
			if c.filters != nil {
				body["filters"] = c.filters
			}
			if c.groups != nil {
				body["groups"] = c.groups
			}
			var created api.WebhookResponse
			b.on(t).do("acme", "POST", c.path, body).want(http.StatusCreated).decode(&created)
			var got api.WebhookResponse
			b.on(t).do("acme", "GET", c.path+"/"+created.Name, nil).want(http.StatusOK).decode(&got)
			if !slices.Equal(got.Filters, c.filters) || !slices.Equal(got.Groups, c.groups) {
				t.Errorf("read back filters %v, groups %v; want %v, %v", got.Filters, got.Groups, c.filters, c.groups)
			}
		})
	}
}
