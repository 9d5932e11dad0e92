// Package resource is the pulumiservice provider: the Webhook resource (pulumiservice:index:Webhook),
// its schema-compatible types, the provider configuration, and the provider constructor that
// the plugin binary runs.
//
// The Webhook's inputs, outputs and enums equal those of the official Pulumi Service provider
// (v1.3.0), so a program moves over by changing its import line. What sits behind them is ours:
// by default an embedded engine on a local SQLite store, opened on first use.
package resource

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi-go-provider/middleware/schema"
	"github.com/pulumi/pulumi/sdk/v3/go/property"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/client"
)

// Name is the Pulumi package name; the plugin binary is pulumi-resource-<Name>.
const Name = "pulumiservice"

// WebhookToken is the resource token of the Webhook.
const WebhookToken = "pulumiservice:index:Webhook"

// Version is the plugin version. Release builds set it with
// -ldflags "-X github.com/pulumi-webhooks/pulumi-webhooks/provider/resource.Version=...".
var Version = "0.1.0"

// Provider returns the pulumiservice provider. Each call returns an independent provider with
// its own configuration.
func Provider() p.Provider {
	prov := infer.Provider(infer.Options{
		Metadata: metadata(),
		Resources: []infer.InferredResource{
			infer.Resource(&Webhook{}),
		},
		Config: infer.Config(&Config{}),
	})
	return wrap(prov)
}

func metadata() schema.Metadata {
	return schema.Metadata{
		DisplayName: "Pulumi Service webhooks (self-hosted)",
		Description: "Manage webhooks with the resource of the Pulumi Service provider, served by " +
			"pulumi-webhooks, a self-hosted replacement for Pulumi Cloud webhooks.",
		Keywords:   []string{"pulumi", "webhooks", "kind/native", "category/utility"},
		Homepage:   "https://github.com/pulumi-webhooks/pulumi-webhooks",
		Repository: "https://github.com/pulumi-webhooks/pulumi-webhooks",
		Publisher:  "pulumi-webhooks",
	}
}

// WriteSchema writes the provider's schema as indented JSON, computed in process: no pulumi CLI
// is involved. `make schema` runs it through the plugin binary's -schema flag.
func WriteSchema(ctx context.Context, w io.Writer, version string) error {
	spec, err := p.GetSchema(ctx, Name, version, Provider())
	if err != nil {
		return fmt.Errorf("compute the schema: %w", err)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(spec); err != nil {
		return fmt.Errorf("write the schema: %w", err)
	}
	return nil
}

// wrap adds what infer cannot express per field:
//   - Read: the secret output and input stay secret even when Read fills them where the old
//     state had none (a secret set outside Pulumi).
//   - Diff: an input that is still unknown during a preview counts as a change, since infer
//     hands the controller its zero value.
func wrap(prov p.Provider) p.Provider {
	read := prov.Read
	prov.Read = func(ctx context.Context, req p.ReadRequest) (p.ReadResponse, error) {
		resp, err := read(ctx, req)
		if req.Urn.Type() != WebhookToken {
			return resp, err
		}
		resp.Properties = markSecret(resp.Properties, "secret")
		resp.Inputs = markSecret(resp.Inputs, "secret")
		return resp, err
	}
	diff := prov.Diff
	prov.Diff = func(ctx context.Context, req p.DiffRequest) (p.DiffResponse, error) {
		resp, err := diff(ctx, req)
		if err != nil || req.Urn.Type() != WebhookToken {
			return resp, err
		}
		for k, v := range req.Inputs.All {
			if !v.HasComputed() {
				continue
			}
			if resp.DetailedDiff == nil {
				resp.DetailedDiff = map[string]p.PropertyDiff{}
			}
			// The controller saw the zero value and may have called it a deletion.
			kind := p.Update
			if replaceOnChange(k) {
				kind = p.UpdateReplace
			}
			resp.DetailedDiff[k] = p.PropertyDiff{Kind: kind, InputDiff: true}
			resp.HasChanges = true
		}
		return resp, nil
	}
	return prov
}

func markSecret(m property.Map, key string) property.Map {
	if v, ok := m.GetOk(key); ok && !v.IsNull() && !v.Secret() {
		return m.Set(key, v.WithSecret(true))
	}
	return m
}

// Config is the provider configuration. With none at all, webhooks live in the embedded store
// at its default path.
type Config struct {
	StorePath   *string `pulumi:"storePath,optional"`
	APIURL      *string `pulumi:"apiUrl,optional"`
	AccessToken *string `pulumi:"accessToken,optional" provider:"secret"`

	// client is built by Configure; copies of Config share it.
	client client.Client
}

// Annotate describes the configuration.
func (c *Config) Annotate(a infer.Annotator) {
	a.Describe(&c.StorePath, "The SQLite database file of the embedded webhook store, or a postgres:// URL "+
		"of a PostgreSQL store shared with pulumi-webhooks servers. When unset, the "+
		"PULUMI_WEBHOOKS_STORE environment variable names it, else "+
		"$XDG_DATA_HOME/pulumi-webhooks/webhooks.db or ~/.local/share/pulumi-webhooks/webhooks.db. "+
		"With a file, the key that seals webhook secrets sits next to it (<file>.key) unless "+
		"PULUMI_WEBHOOKS_SECRET_KEY holds one; with PostgreSQL that variable holds it. Cannot be combined with apiUrl.")
	a.Describe(&c.APIURL, "The base URL of a pulumi-webhooks server (e.g. http://127.0.0.1:8080). When set, the "+
		"provider manages webhooks through that server's REST API instead of the embedded store. It has no "+
		"default, unlike the Pulumi Service provider's (https://api.pulumi.com, which is refused: it is Pulumi "+
		"Cloud), and PULUMI_BACKEND_URL and PULUMI_API are not read: with no configuration, webhooks live in the "+
		"embedded store.")
	a.Describe(&c.AccessToken, "The API token of the server named by apiUrl (`pulumi-webhooks token create "+
		"--org ORG`). With apiUrl and no accessToken, the PULUMI_ACCESS_TOKEN environment variable is used, as "+
		"by the Pulumi Service provider; without apiUrl it is never read. Setting accessToken without apiUrl "+
		"is refused: the embedded store takes no token. A Pulumi Cloud token (pul-...) is refused too: the "+
		"server's tokens start with pwh_.")
}

var (
	_ infer.CustomCheck[*Config]         = (*Config)(nil)
	_ infer.CustomConfigure              = (*Config)(nil)
	_ infer.CustomDiff[*Config, *Config] = (*Config)(nil)
)

// Diff compares the configuration with the recorded one. Every change updates the provider in
// place, as with the official provider, and no webhook is replaced: a new accessToken (rotated,
// or now taken from PULUMI_ACCESS_TOKEN) reaches the same webhooks. A new storePath or apiUrl
// points the provider at another place without moving the webhooks either; that is done with
// `pulumi destroy` under the old configuration and `pulumi up` under the new (README,
// Configuration).
func (*Config) Diff(_ context.Context, req infer.DiffRequest[*Config, *Config]) (infer.DiffResponse, error) {
	olds, news := req.State, req.Inputs
	if olds == nil {
		olds = &Config{}
	}
	if news == nil {
		news = &Config{}
	}
	d := map[string]p.PropertyDiff{}
	for _, f := range []struct {
		key      string
		old, new *string
	}{
		{client.SettingStorePath, olds.StorePath, news.StorePath},
		{client.SettingAPIURL, olds.APIURL, news.APIURL},
		{client.SettingAccessToken, olds.AccessToken, news.AccessToken},
	} {
		kind, changed := changeKind(deref(f.old) != "", deref(f.new) != "", deref(f.old) != deref(f.new))
		if !changed {
			continue
		}
		d[f.key] = p.PropertyDiff{Kind: kind, InputDiff: true}
	}
	return infer.DiffResponse{HasChanges: len(d) > 0, DetailedDiff: d}, nil
}

// Check reads the configuration as given and applies the rules of client.Config.Resolve to it,
// reporting each refused setting on its property. Defaults from the environment are not filled
// in, so no token from the environment ever reaches the provider's recorded inputs.
func (*Config) Check(_ context.Context, req infer.CheckRequest) (infer.CheckResponse[*Config], error) {
	out := &Config{}
	var failures []p.CheckFailure
	var unknown []string
	for _, f := range []struct {
		key string
		dst **string
	}{{client.SettingStorePath, &out.StorePath}, {client.SettingAPIURL, &out.APIURL}, {client.SettingAccessToken, &out.AccessToken}} {
		v, ok := req.NewInputs.GetOk(f.key)
		switch {
		case !ok || v.IsNull():
		case v.IsComputed():
			unknown = append(unknown, f.key)
		case !v.IsString():
			failures = append(failures, p.CheckFailure{Property: f.key, Reason: f.key + " must be a string"})
		default:
			s := v.AsString()
			*f.dst = &s
		}
	}
	if len(failures) > 0 {
		return infer.CheckResponse[*Config]{Inputs: out, Failures: failures}, nil
	}
	cfg := out.clientConfig()
	cfg.Unknown = unknown
	cfg.Provider = explicitProvider(req.Name)
	_, refused := cfg.Resolve()
	for _, r := range refused {
		failures = append(failures, p.CheckFailure{Property: r.Setting, Reason: r.Reason})
	}
	return infer.CheckResponse[*Config]{Inputs: out, Failures: failures}, nil
}

// explicitProvider returns the name of an explicit provider resource, or "" for the default
// provider (named "default" or "default_<version>"), which reads stack config.
func explicitProvider(name string) string {
	if name == "" || name == "default" || strings.HasPrefix(name, "default_") {
		return ""
	}
	return name
}

// clientConfig is the configuration as client.Config takes it.
func (c *Config) clientConfig() client.Config {
	return client.Config{StorePath: deref(c.StorePath), APIURL: deref(c.APIURL), AccessToken: deref(c.AccessToken)}
}

// Configure chooses the client. The embedded store is not opened here but on first use, so a
// preview that never needs it never creates it.
func (c *Config) Configure(context.Context) error {
	cl, err := client.New(c.clientConfig())
	if err != nil {
		return err
	}
	c.client = cl
	return nil
}

// clientFrom returns the client of the provider serving ctx.
func clientFrom(ctx context.Context) (client.Client, error) {
	cfg := infer.GetConfig[Config](ctx)
	if cfg.client == nil {
		return nil, fmt.Errorf("the pulumiservice provider was not configured: the engine must call Configure before managing webhooks")
	}
	return cfg.client, nil
}
