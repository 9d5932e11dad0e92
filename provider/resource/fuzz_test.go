package resource

import (
	"errors"
	"strings"
	"testing"

	"github.com/blang/semver"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/integration"
	"github.com/pulumi/pulumi/sdk/v3/go/property"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// FuzzCheck runs the Webhook's Check, through the provider as the engine calls it, on arbitrary
// inputs: strings (any bytes), lists and, chosen by a byte, values of the wrong type. Check
// never fails with an error or panics; it reports failures on known properties with short
// reasons; and it agrees with the rules' one home: inputs of the right types pass Check
// exactly when webhook.Spec.Validate accepts them.
//
//	go test ./provider/resource -run '^$' -fuzz FuzzCheck -fuzztime 30s
func FuzzCheck(f *testing.F) {
	f.Add("acme", "", "", "", "Org hook", "https://example.com/h", "", "", "", "", true, uint8(0))
	f.Add("acme", "web", "prod", "", "Stack hook", "https://example.com/h", "s", "slack", "update_succeeded,update_failed", "", false, uint8(0))
	f.Add("acme", "app", "", "dev", "Env hook", "http://127.0.0.1:1/", "", "ms_teams", "", "environments", true, uint8(0))
	f.Add("acme", "web", "prod", "", "Deploy", "web/next", "", "pulumi_deployments", "", "", true, uint8(0))
	f.Add("..", "web", "..", "dev", "a\x1b[2Jb", "http://h:65536/", strings.Repeat("s", 2000), "xml", "nope,nope", "stacks,stacks,x,y", true, uint8(0))
	f.Add("acme", "", "", "", "\u202e", "https://example.com/\u200b", "", "", "", "", true, uint8(3))
	f.Add("", "", "", "", "", "", "", "", "", "", false, uint8(7))
	v, err := semver.Parse(Version)
	if err != nil {
		f.Fatal(err)
	}
	s, err := integration.NewServer(f.Context(), Name, v, integration.WithProvider(Provider()))
	if err != nil {
		f.Fatal(err)
	}
	known := map[string]bool{}
	for k := range inputTypes {
		known[k] = true
	}
	f.Fuzz(func(t *testing.T, org, project, stack, env, display, url, secret, format, filters, groups string, active bool, wrong uint8) {
		list := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		in := map[string]property.Value{
			"organizationName": str(org), "displayName": str(display), "payloadUrl": str(url), "active": property.New(active),
		}
		for k, v := range map[string]string{"projectName": project, "stackName": stack, "environmentName": env, "secret": secret, "format": format} {
			if v != "" {
				in[k] = str(v)
			}
		}
		if fs := list(filters); fs != nil {
			in["filters"] = strs(fs...)
		}
		if gs := list(groups); gs != nil {
			in["groups"] = strs(gs...)
		}
		// Some runs give one input a value of the wrong type.
		keys := []string{"organizationName", "displayName", "payloadUrl", "active", "format", "filters", "groups", "secret"}
		wrongType := wrong&0x80 != 0
		if wrongType {
			k := keys[int(wrong)%len(keys)]
			switch wrong % 3 {
			case 0:
				in[k] = property.New(42.0)
			case 1:
				in[k] = property.New(map[string]property.Value{"x": str("y")})
			default:
				in[k] = property.New(property.Null)
			}
		}
		resp, err := s.Check(p.CheckRequest{Urn: webhookURN, Inputs: property.NewMap(in)})
		if err != nil {
			t.Fatalf("Check returned an error instead of failures: %v", err)
		}
		for _, fl := range resp.Failures {
			if !known[fl.Property] {
				t.Errorf("failure on unknown property %q: %s", fl.Property, fl.Reason)
			}
			if len(fl.Reason) > 8<<10 {
				t.Errorf("failure on %s is %d bytes long", fl.Property, len(fl.Reason))
			}
		}
		if wrongType {
			return
		}
		spec := webhook.Spec{
			Scope:       webhook.Scope{Org: org, Project: project, Stack: stack, Environment: env},
			DisplayName: display, PayloadURL: url, Secret: secret, Active: active, Format: webhook.Format(format),
		}
		for _, f := range list(filters) {
			spec.Filters = append(spec.Filters, webhook.Filter(f))
		}
		for _, g := range list(groups) {
			spec.Groups = append(spec.Groups, webhook.Group(g))
		}
		verr := spec.Validate()
		var fe webhook.FieldErrors
		if verr != nil && !errors.As(verr, &fe) {
			t.Fatalf("Validate: %T %v", verr, verr)
		}
		switch {
		case verr == nil && len(resp.Failures) > 0:
			t.Errorf("Check refused what Validate accepts: %+v", resp.Failures)
		case verr != nil && len(resp.Failures) == 0:
			t.Errorf("Check accepted what Validate refuses: %v", verr)
		}
	})
}
