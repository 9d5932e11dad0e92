package client

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// env returns a Getenv that sees only vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

const (
	cfgToken   = "pwh_never-shown-91ac"
	envToken   = "pwh_env-never-shown-27fd"
	cloudToken = "pul-0f3c9d-never-shown"
)

// TestResolveModes: every configuration that works, and the mode and token it resolves to.
func TestResolveModes(t *testing.T) {
	t.Parallel()
	withEnvToken := env(map[string]string{EnvAccessToken: envToken})
	withCloudToken := env(map[string]string{EnvAccessToken: cloudToken})
	cases := []struct {
		name string
		cfg  Config
		want Resolved
	}{
		{"nothing: the embedded store at its default path", Config{Getenv: env(nil)}, Resolved{Mode: ModeEmbedded}},
		{"PULUMI_ACCESS_TOKEN alone keeps the embedded store", Config{Getenv: withCloudToken}, Resolved{Mode: ModeEmbedded}},
		{"PULUMI_ACCESS_TOKEN alone keeps the embedded store at storePath", Config{StorePath: "/x.db", Getenv: withCloudToken},
			Resolved{Mode: ModeEmbedded, StorePath: "/x.db"}},
		{"accessToken wins over a Pulumi Cloud token in PULUMI_ACCESS_TOKEN", Config{APIURL: "http://127.0.0.1:8080", AccessToken: cfgToken, Getenv: withCloudToken},
			Resolved{Mode: ModeRemote, APIURL: "http://127.0.0.1:8080", AccessToken: cfgToken, TokenFrom: "pulumiservice:accessToken"}},
		{"a pulumi.com host that is not Pulumi Cloud's API or console", Config{APIURL: "https://hooks.pulumi.com", AccessToken: cfgToken, Getenv: env(nil)},
			Resolved{Mode: ModeRemote, APIURL: "https://hooks.pulumi.com", AccessToken: cfgToken, TokenFrom: "pulumiservice:accessToken"}},
		{"storePath", Config{StorePath: "/var/lib/hooks.db", Getenv: withEnvToken},
			Resolved{Mode: ModeEmbedded, StorePath: "/var/lib/hooks.db"}},
		{"storePath as a URL is passed on unchecked", Config{StorePath: "postgres://hooks@127.0.0.1:5432/hooks?sslmode=disable", Getenv: env(nil)},
			Resolved{Mode: ModeEmbedded, StorePath: "postgres://hooks@127.0.0.1:5432/hooks?sslmode=disable"}},
		{"blank accessToken without apiUrl is no token", Config{AccessToken: "  ", Getenv: env(nil)}, Resolved{Mode: ModeEmbedded}},
		{"apiUrl and accessToken", Config{APIURL: "http://127.0.0.1:8080/", AccessToken: cfgToken, Getenv: withEnvToken},
			Resolved{Mode: ModeRemote, APIURL: "http://127.0.0.1:8080", AccessToken: cfgToken, TokenFrom: "pulumiservice:accessToken"}},
		{"apiUrl with a path", Config{APIURL: " https://hooks.example.com/pwh// ", AccessToken: cfgToken, Getenv: env(nil)},
			Resolved{Mode: ModeRemote, APIURL: "https://hooks.example.com/pwh", AccessToken: cfgToken, TokenFrom: "pulumiservice:accessToken"}},
		{"apiUrl with the token from PULUMI_ACCESS_TOKEN", Config{APIURL: "http://127.0.0.1:8080", Getenv: withEnvToken},
			Resolved{Mode: ModeRemote, APIURL: "http://127.0.0.1:8080", AccessToken: envToken, TokenFrom: "the environment variable PULUMI_ACCESS_TOKEN"}},
		{"a blank accessToken falls back to PULUMI_ACCESS_TOKEN", Config{APIURL: "http://127.0.0.1:8080", AccessToken: " ", Getenv: withEnvToken},
			Resolved{Mode: ModeRemote, APIURL: "http://127.0.0.1:8080", AccessToken: envToken, TokenFrom: "the environment variable PULUMI_ACCESS_TOKEN"}},
		{"an unknown accessToken counts as given", Config{APIURL: "http://127.0.0.1:8080", Unknown: []string{SettingAccessToken}, Getenv: env(nil)},
			Resolved{Mode: ModeRemote, APIURL: "http://127.0.0.1:8080", TokenFrom: "pulumiservice:accessToken"}},
		{"an unknown apiUrl is not checked", Config{AccessToken: cfgToken, Unknown: []string{SettingAPIURL}, Getenv: env(nil)},
			Resolved{Mode: ModeRemote, AccessToken: cfgToken, TokenFrom: "pulumiservice:accessToken"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, refused := tc.cfg.Resolve()
			require.Empty(t, refused)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestResolveRefusals: every configuration that cannot work is refused on the setting to fix,
// with a message that says how, and never quotes a token.
func TestResolveRefusals(t *testing.T) {
	t.Parallel()
	withEnvToken := env(map[string]string{EnvAccessToken: envToken})
	type refusal struct {
		setting string
		parts   []string
	}
	tokenWithoutServer := refusal{SettingAccessToken, []string{
		"pulumiservice:apiUrl is not set", "the embedded store takes no token",
		"`pulumi config set pulumiservice:apiUrl http://your-server:8080`",
		"`pulumi config rm pulumiservice:accessToken`",
	}}
	serverWithoutToken := refusal{SettingAccessToken, []string{
		"pulumiservice:accessToken is not set", "pulumi-webhooks token create --org ORG",
		"`pulumi config set --secret pulumiservice:accessToken TOKEN`", "PULUMI_ACCESS_TOKEN",
	}}
	cases := []struct {
		name string
		cfg  Config
		want []refusal
	}{
		{"accessToken without apiUrl (a program written for Pulumi Cloud)",
			Config{AccessToken: cfgToken, Getenv: env(nil)}, []refusal{tokenWithoutServer}},
		{"accessToken without apiUrl, PULUMI_ACCESS_TOKEN set too",
			Config{AccessToken: cfgToken, Getenv: withEnvToken}, []refusal{tokenWithoutServer}},
		{"accessToken without apiUrl, with storePath",
			Config{AccessToken: cfgToken, StorePath: "/tmp/x.db", Getenv: env(nil)}, []refusal{tokenWithoutServer}},
		{"an unknown accessToken without apiUrl",
			Config{Unknown: []string{SettingAccessToken}, Getenv: env(nil)}, []refusal{tokenWithoutServer}},
		{"apiUrl without a token anywhere",
			Config{APIURL: "http://127.0.0.1:8080", Getenv: env(nil)}, []refusal{serverWithoutToken}},
		{"apiUrl with a blank token",
			Config{APIURL: "http://127.0.0.1:8080", AccessToken: " \t", Getenv: env(map[string]string{EnvAccessToken: "  "})}, []refusal{serverWithoutToken}},
		{"storePath and apiUrl",
			Config{StorePath: "/tmp/x.db", APIURL: "http://127.0.0.1:8080", AccessToken: cfgToken, Getenv: env(nil)},
			[]refusal{{SettingStorePath, []string{"pulumiservice:storePath and pulumiservice:apiUrl are both set", "`pulumi config rm pulumiservice:storePath`"}}}},
		{"storePath and an unknown apiUrl",
			Config{StorePath: "/tmp/x.db", AccessToken: cfgToken, Unknown: []string{SettingAPIURL}, Getenv: env(nil)},
			[]refusal{{SettingStorePath, []string{"both set"}}}},
		{"a relative apiUrl",
			Config{APIURL: "webhooks.example.com", AccessToken: cfgToken, Getenv: env(nil)},
			[]refusal{{SettingAPIURL, []string{`pulumiservice:apiUrl "webhooks.example.com" is not an absolute http:// or https:// URL`, "`pulumi config set pulumiservice:apiUrl http://your-server:8080`"}}}},
		{"apiUrl of another scheme",
			Config{APIURL: "ftp://127.0.0.1/", AccessToken: cfgToken, Getenv: env(nil)},
			[]refusal{{SettingAPIURL, []string{"not an absolute http:// or https:// URL"}}}},
		{"apiUrl without a host",
			Config{APIURL: "http://", AccessToken: cfgToken, Getenv: env(nil)},
			[]refusal{{SettingAPIURL, []string{"not an absolute http:// or https:// URL"}}}},
		{"apiUrl that does not parse",
			Config{APIURL: "http://[::1", AccessToken: cfgToken, Getenv: env(nil)},
			[]refusal{{SettingAPIURL, []string{`"http://[::1" is not a valid URL`}}}},
		{"apiUrl with a query",
			Config{APIURL: "http://127.0.0.1:8080/?x=1", AccessToken: cfgToken, Getenv: env(nil)},
			[]refusal{{SettingAPIURL, []string{"has a query or fragment"}}}},
		{"apiUrl with a credential in its query",
			Config{APIURL: "http://127.0.0.1:8080/pwh?token=" + cfgToken, AccessToken: cfgToken, Getenv: env(nil)},
			[]refusal{{SettingAPIURL, []string{`"http://127.0.0.1:8080/pwh?..." has a query or fragment`}}}},
		{"apiUrl with a fragment",
			Config{APIURL: "http://127.0.0.1:8080/#top", AccessToken: cfgToken, Getenv: env(nil)},
			[]refusal{{SettingAPIURL, []string{"has a query or fragment"}}}},
		{"apiUrl with credentials",
			Config{APIURL: "http://ci:" + cfgToken + "@127.0.0.1:8080", AccessToken: cfgToken, Getenv: env(nil)},
			[]refusal{{SettingAPIURL, []string{"carries user credentials", "accessToken"}}}},
		{"apiUrl with credentials that does not parse",
			Config{APIURL: "ci:" + cfgToken + "@127.0.0.1", AccessToken: cfgToken, Getenv: env(nil)},
			[]refusal{{SettingAPIURL, []string{"carries user credentials"}}}},
		{"apiUrl of Pulumi Cloud (the official default)",
			Config{APIURL: "https://api.pulumi.com", AccessToken: cfgToken, Getenv: env(nil)},
			[]refusal{{SettingAPIURL, []string{"pulumiservice:apiUrl is https://api.pulumi.com, Pulumi Cloud", "`pulumi config set pulumiservice:apiUrl http://your-server:8080`", "`pulumi config rm pulumiservice:apiUrl`"}}}},
		{"apiUrl of Pulumi Cloud's console",
			Config{APIURL: "https://APP.pulumi.com/", AccessToken: cfgToken, Getenv: env(nil)},
			[]refusal{{SettingAPIURL, []string{"Pulumi Cloud"}}}},
		{"a Pulumi Cloud token in accessToken",
			Config{APIURL: "http://127.0.0.1:8080", AccessToken: cloudToken, Getenv: env(nil)},
			[]refusal{{SettingAccessToken, []string{"pulumiservice:accessToken is a Pulumi Cloud access token (it starts with pul-)",
				"pulumi-webhooks token create --org ORG", "`pulumi config set --secret pulumiservice:accessToken TOKEN`"}}}},
		{"a Pulumi Cloud token in PULUMI_ACCESS_TOKEN",
			Config{APIURL: "http://127.0.0.1:8080", Getenv: env(map[string]string{EnvAccessToken: cloudToken})},
			[]refusal{{SettingAccessToken, []string{"the environment variable PULUMI_ACCESS_TOKEN holds a Pulumi Cloud access token",
				"`pulumi config set --secret pulumiservice:accessToken TOKEN` (it takes precedence over PULUMI_ACCESS_TOKEN)"}}}},
		{"Pulumi Cloud's API with its token: the program as written for the official provider, with apiUrl set",
			Config{APIURL: "https://api.pulumi.com", AccessToken: cloudToken, Getenv: env(nil)},
			[]refusal{{SettingAPIURL, []string{"Pulumi Cloud"}}, {SettingAccessToken, []string{"Pulumi Cloud access token"}}}},
		{"everything wrong at once",
			Config{StorePath: "/tmp/x.db", APIURL: "nope", Getenv: env(nil)},
			[]refusal{{SettingAPIURL, []string{"not an absolute"}}, {SettingStorePath, []string{"both set"}}, serverWithoutToken}},
		{"an explicit provider is told about its arguments",
			Config{AccessToken: cfgToken, Provider: "hooks", Getenv: env(nil)},
			[]refusal{{SettingAccessToken, []string{`apiUrl (of provider "hooks") is not set`, `the argument apiUrl: "http://your-server:8080" of provider "hooks"`, `remove the argument accessToken of provider "hooks"`}}}},
		{"an explicit provider without a token",
			Config{APIURL: "http://127.0.0.1:8080", Provider: "hooks", Getenv: env(nil)},
			[]refusal{{SettingAccessToken, []string{`accessToken (of provider "hooks") is not set`, `the argument accessToken of provider "hooks" (from a secret)`}}}},
		{"an explicit provider with both stores",
			Config{StorePath: "/tmp/x.db", APIURL: "http://127.0.0.1:8080", AccessToken: cfgToken, Provider: "hooks", Getenv: env(nil)},
			[]refusal{{SettingStorePath, []string{`remove the argument storePath of provider "hooks"`}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, refused := tc.cfg.Resolve()
			assert.Equal(t, Resolved{}, got)
			require.Len(t, refused, len(tc.want), "%v", refused)
			err := error(refused)
			for i, w := range tc.want {
				assert.Equal(t, w.setting, refused[i].Setting, "refusal %d: %s", i, refused[i].Reason)
				for _, part := range w.parts {
					assert.Contains(t, refused[i].Reason, part)
				}
			}
			assert.NotContains(t, err.Error(), cfgToken)
			assert.NotContains(t, err.Error(), envToken)
			assert.NotContains(t, err.Error(), cloudToken)
			assert.NotContains(t, err.Error(), "never-shown")
		})
	}
}

// TestNewUsesResolve: New refuses what Resolve refuses, with the same message.
func TestNewUsesResolve(t *testing.T) {
	t.Parallel()
	cfg := Config{AccessToken: cfgToken, Getenv: env(nil)}
	_, want := cfg.Resolve()
	require.NotEmpty(t, want)
	_, err := New(cfg)
	require.EqualError(t, err, want.Error())
	var refused ConfigErrors
	require.ErrorAs(t, err, &refused)
	assert.Equal(t, SettingAccessToken, refused[0].Setting)
}
