// The integration harness's Go program: one stack that declares every webhook the harness plans
// for Go, on the generated Go SDK. It is compiled together with the Automation API runner of
// tests/provider/testdata/go (which calls program) into one binary.
//
// The hooks come from the stack's configuration, so the harness changes them between `pulumi
// up`s by changing configuration only. Each hook names the provider it is managed through:
// "embedded" (the SQLite store the server also uses) or "remote" (the server's REST API).
package main

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/pulumi-webhooks/pulumi-webhooks/sdk/go/pulumiservice"
)

// hookConfig is one entry of the "hooks" configuration value.
type hookConfig struct {
	Name             string   `json:"name"`
	Provider         string   `json:"provider"`
	OrganizationName string   `json:"organizationName"`
	ProjectName      string   `json:"projectName"`
	StackName        string   `json:"stackName"`
	EnvironmentName  string   `json:"environmentName"`
	DisplayName      string   `json:"displayName"`
	PayloadURL       string   `json:"payloadUrl"`
	Active           bool     `json:"active"`
	Format           string   `json:"format"`
	Filters          []string `json:"filters"`
	Groups           []string `json:"groups"`
	// SecretKey names the hook's secret in the secret configuration value hookSecrets.
	SecretKey string `json:"secretKey"`
}

func program(ctx *pulumi.Context) error {
	cfg := config.New(ctx, "")
	var hooks []hookConfig
	cfg.RequireObject("hooks", &hooks)
	secrets := cfg.RequireSecret("hookSecrets")

	embedded, err := pulumiservice.NewProvider(ctx, "embedded", &pulumiservice.ProviderArgs{
		StorePath: pulumi.String(cfg.Require("storePath")),
	})
	if err != nil {
		return err
	}
	remote, err := pulumiservice.NewProvider(ctx, "remote", &pulumiservice.ProviderArgs{
		ApiUrl:      pulumi.String(cfg.Require("apiUrl")),
		AccessToken: cfg.RequireSecret("accessToken"),
	})
	if err != nil {
		return err
	}
	providers := map[string]*pulumiservice.Provider{"embedded": embedded, "remote": remote}

	ids := pulumi.StringMap{}
	for _, h := range hooks {
		prov, ok := providers[h.Provider]
		if !ok {
			return fmt.Errorf("hook %s: unknown provider %q: use embedded or remote", h.Name, h.Provider)
		}
		args := &pulumiservice.WebhookArgs{
			OrganizationName: pulumi.String(h.OrganizationName),
			DisplayName:      pulumi.String(h.DisplayName),
			PayloadUrl:       pulumi.String(h.PayloadURL),
			Active:           pulumi.Bool(h.Active),
		}
		if h.ProjectName != "" {
			args.ProjectName = pulumi.String(h.ProjectName)
		}
		if h.StackName != "" {
			args.StackName = pulumi.String(h.StackName)
		}
		if h.EnvironmentName != "" {
			args.EnvironmentName = pulumi.String(h.EnvironmentName)
		}
		if h.Format != "" {
			args.Format = pulumiservice.WebhookFormat(h.Format)
		}
		if len(h.Filters) > 0 {
			fs := pulumiservice.WebhookFiltersArray{}
			for _, f := range h.Filters {
				fs = append(fs, pulumiservice.WebhookFilters(f))
			}
			args.Filters = fs
		}
		if len(h.Groups) > 0 {
			gs := pulumiservice.WebhookGroupArray{}
			for _, g := range h.Groups {
				gs = append(gs, pulumiservice.WebhookGroup(g))
			}
			args.Groups = gs
		}
		if key := h.SecretKey; key != "" {
			args.Secret = secrets.ApplyT(func(s string) (string, error) {
				m := map[string]string{}
				if err := json.Unmarshal([]byte(s), &m); err != nil {
					return "", fmt.Errorf("hookSecrets is not a JSON object of strings: %w", err)
				}
				v, ok := m[key]
				if !ok {
					return "", fmt.Errorf("hookSecrets has no secret %q", key)
				}
				return v, nil
			}).(pulumi.StringOutput)
		}
		hook, err := pulumiservice.NewWebhook(ctx, h.Name, args, pulumi.Provider(prov))
		if err != nil {
			return err
		}
		ids[h.Name] = hook.ID().ToStringOutput()
	}
	ctx.Export("hookIds", ids)
	return nil
}
