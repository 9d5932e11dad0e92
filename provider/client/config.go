package client

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
)

// The provider's settings, as a program names them (pulumiservice:<name> in stack config, or
// arguments of an explicit provider), and the environment variable the official Pulumi Service
// provider reads the token from.
const (
	SettingStorePath   = "storePath"
	SettingAPIURL      = "apiUrl"
	SettingAccessToken = "accessToken"

	// EnvAccessToken is the official provider's fallback for accessToken. It is read in remote
	// mode only: a Pulumi access token in the environment (as self-managed backends and CI
	// often have) never turns the embedded store into anything else.
	EnvAccessToken = "PULUMI_ACCESS_TOKEN"
)

// configPackage prefixes setting names in stack config.
const configPackage = "pulumiservice"

// pulumiCloudTokenPrefix starts Pulumi Cloud's access tokens; a pulumi-webhooks server's own
// tokens start with pwh_ and never with it.
const pulumiCloudTokenPrefix = "pul-"

// pulumiCloudHosts are Pulumi Cloud's API and console: the official provider's default apiUrl
// and its console, never a pulumi-webhooks server.
var pulumiCloudHosts = []string{"api.pulumi.com", "app.pulumi.com"}

// Config is the provider configuration as a program gives it. Resolve applies every rule about
// it, for the provider's CheckConfig and for New alike, so each rule and message has one home:
//
//   - Nothing set: embedded mode, on the SQLite store at sqlite.DefaultPath(). The environment
//     variables PULUMI_ACCESS_TOKEN, PULUMI_BACKEND_URL and PULUMI_API are ignored: they speak
//     of Pulumi Cloud or of the state backend, never of a webhooks server.
//   - storePath: embedded mode on that store. Its value is passed on as it is (a file path, or
//     any URL form the embedded store opens).
//   - apiUrl: remote mode, the REST API of the pulumi-webhooks server at that absolute http://
//     or https:// base URL (no credentials, query or fragment). The token is accessToken, else
//     PULUMI_ACCESS_TOKEN, as with the official provider; with neither, it is refused naming
//     accessToken. apiUrl has no default: the official one (https://api.pulumi.com) is Pulumi
//     Cloud, and no configuration at all must mean the embedded store.
//   - accessToken without apiUrl: refused naming apiUrl. It is what a program written for the
//     official provider sets to reach Pulumi Cloud; the embedded store takes no token, and
//     quietly keeping webhooks on the local machine instead would lose them. One added
//     setting, apiUrl, moves such a program to a server; removing the token moves it to the
//     embedded store.
//   - storePath with apiUrl: refused naming storePath; they select different modes.
//   - apiUrl naming Pulumi Cloud (https://api.pulumi.com, the official default, or its
//     console), and a Pulumi Cloud token (pul-...) as the token, from accessToken or
//     PULUMI_ACCESS_TOKEN: refused naming the setting, before anything is sent. A
//     pulumi-webhooks server takes neither; its tokens start with pwh_.
//
// Every refusal names the setting to add, change or remove, and how; none quotes the token.
type Config struct {
	// StorePath is the embedded store's database; empty means sqlite.DefaultPath():
	// $PULUMI_WEBHOOKS_STORE, else the per-user data directory.
	StorePath string
	// APIURL is the base URL of a pulumi-webhooks server. Setting it selects remote mode.
	APIURL string
	// AccessToken authenticates to the server in remote mode. Never log it.
	AccessToken string
	// Unknown names the settings whose values are not known yet (a preview in which another
	// resource's output feeds them). They count as set, with a value that is not checked.
	Unknown []string
	// Provider is the name of an explicit provider resource the configuration belongs to, so
	// that messages say how to change its arguments; empty for the default provider, which
	// reads stack config (pulumi config set pulumiservice:...).
	Provider string
	// Getenv reads the environment (PULUMI_ACCESS_TOKEN); os.Getenv when nil.
	Getenv func(string) string
	// Logger receives the embedded store's and engine's logs; discarded when nil.
	Logger *slog.Logger
}

// Mode is where webhooks live.
type Mode string

// The modes.
const (
	ModeEmbedded Mode = "embedded"
	ModeRemote   Mode = "remote"
)

// Resolved is a Config with its rules applied: the mode and what it needs.
type Resolved struct {
	Mode Mode
	// StorePath is the embedded store's database as given; empty means the default path.
	StorePath string
	// APIURL is the server's base URL without a trailing slash (remote mode).
	APIURL string
	// AccessToken is the token for the server (remote mode). Never log it.
	AccessToken string
	// TokenFrom says where AccessToken came from, for messages about it: the setting, or the
	// environment variable.
	TokenFrom string
}

// ConfigError is one refused setting: Setting names it (SettingAPIURL, ...), Reason says what
// is wrong and the fix.
type ConfigError struct {
	Setting string
	Reason  string
}

func (e *ConfigError) Error() string { return e.Reason }

// ConfigErrors is every refused setting of a Config; it is an error when not empty.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Reason
	}
	return strings.Join(msgs, "; ")
}

// Resolve applies the configuration rules (see Config): the mode and what it needs, or one
// ConfigError per refused setting (use it as an error only when it is not empty).
func (c Config) Resolve() (Resolved, ConfigErrors) {
	getenv := c.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	unknown := func(s string) bool { return slices.Contains(c.Unknown, s) }
	apiURL := strings.TrimSpace(c.APIURL)
	token := strings.TrimSpace(c.AccessToken)
	hasAPIURL := apiURL != "" || unknown(SettingAPIURL)
	hasToken := token != "" || unknown(SettingAccessToken)
	hasStore := c.StorePath != "" || unknown(SettingStorePath)

	var errs ConfigErrors
	refuse := func(setting, reason string) { errs = append(errs, &ConfigError{Setting: setting, Reason: reason}) }
	if !hasAPIURL {
		if hasToken {
			refuse(SettingAccessToken, fmt.Sprintf("%s is not set: %s is an API token of a pulumi-webhooks server "+
				"(the embedded store takes no token) and needs that server's URL; add it with %s, or remove the "+
				"token to keep webhooks in the embedded store on this machine: %s",
				c.name(SettingAPIURL), c.name(SettingAccessToken), c.setHint(SettingAPIURL, "http://your-server:8080", false),
				c.rmHint(SettingAccessToken)))
			return Resolved{}, errs
		}
		return Resolved{Mode: ModeEmbedded, StorePath: c.StorePath}, nil
	}

	out := Resolved{Mode: ModeRemote, AccessToken: token, TokenFrom: c.name(SettingAccessToken)}
	if !unknown(SettingAPIURL) {
		base, why := checkAPIURL(apiURL)
		switch {
		case why != "":
			refuse(SettingAPIURL, fmt.Sprintf("%s %s; give the base URL of a pulumi-webhooks server with %s",
				c.name(SettingAPIURL), why, c.setHint(SettingAPIURL, "http://your-server:8080", false)))
		case isPulumiCloud(base):
			refuse(SettingAPIURL, fmt.Sprintf("%s is %s, Pulumi Cloud (the official provider's default), not a "+
				"pulumi-webhooks server; point it at your server with %s, or remove it to keep webhooks in the "+
				"embedded store on this machine: %s", c.name(SettingAPIURL), base,
				c.setHint(SettingAPIURL, "http://your-server:8080", false), c.rmHint(SettingAPIURL)))
		}
		out.APIURL = base
	}
	if hasStore {
		refuse(SettingStorePath, fmt.Sprintf("%s and %s are both set: %s selects the embedded store on this machine, "+
			"%s a pulumi-webhooks server; remove one of them, e.g. %s",
			c.name(SettingStorePath), c.name(SettingAPIURL), SettingStorePath, SettingAPIURL, c.rmHint(SettingStorePath)))
	}
	if !hasToken {
		if env := strings.TrimSpace(getenv(EnvAccessToken)); env != "" {
			out.AccessToken, out.TokenFrom = env, "the environment variable "+EnvAccessToken
		} else {
			refuse(SettingAccessToken, fmt.Sprintf("%s is not set: with %s the provider needs an API token of that server; "+
				"create one with `pulumi-webhooks token create --org ORG` and set it with %s (or in the environment "+
				"variable %s)", c.name(SettingAccessToken), c.name(SettingAPIURL),
				c.setHint(SettingAccessToken, "TOKEN", true), EnvAccessToken))
		}
	}
	if strings.HasPrefix(out.AccessToken, pulumiCloudTokenPrefix) {
		where := c.name(SettingAccessToken) + " is"
		if out.TokenFrom != c.name(SettingAccessToken) {
			where = "the environment variable " + EnvAccessToken + " holds"
		}
		refuse(SettingAccessToken, fmt.Sprintf("%s a Pulumi Cloud access token (it starts with %s), which a "+
			"pulumi-webhooks server does not take: create a token of the server with `pulumi-webhooks token create "+
			"--org ORG` and set it with %s (it takes precedence over %s)", where, pulumiCloudTokenPrefix,
			c.setHint(SettingAccessToken, "TOKEN", true), EnvAccessToken))
	}
	if len(errs) > 0 {
		return Resolved{}, errs
	}
	return out, nil
}

// isPulumiCloud reports whether base is Pulumi Cloud's API or console.
func isPulumiCloud(base string) bool {
	u, err := url.Parse(base)
	return err == nil && slices.Contains(pulumiCloudHosts, strings.ToLower(u.Hostname()))
}

// checkAPIURL returns the base URL raw names without a trailing slash, or why it cannot be a
// server's base URL. The reason never repeats credentials.
func checkAPIURL(raw string) (base, why string) {
	if strings.Contains(raw, "@") {
		// Never quoted, parsable or not: what precedes the @ may be a password or a token.
		return "", "carries user credentials (an @ in the URL): remove them and give the token as " + SettingAccessToken + ", a secret"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Sprintf("%q is not a valid URL", raw)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "", fmt.Sprintf("%q is not an absolute http:// or https:// URL: include the scheme and host", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		// The query is not repeated: it may carry a credential.
		return "", fmt.Sprintf("%q has a query or fragment, which a base URL cannot have", u.Scheme+"://"+u.Host+u.Path+"?...")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), ""
}

// isDefaultProvider reports whether c belongs to the default provider, which reads stack config.
func (c Config) isDefaultProvider() bool { return c.Provider == "" }

// name names a setting where the user sets it.
func (c Config) name(setting string) string {
	if c.isDefaultProvider() {
		return configPackage + ":" + setting
	}
	return fmt.Sprintf("%s (of provider %q)", setting, c.Provider)
}

// setHint says how to set a setting to value.
func (c Config) setHint(setting, value string, secret bool) string {
	if c.isDefaultProvider() {
		flag := ""
		if secret {
			flag = "--secret "
		}
		return fmt.Sprintf("`pulumi config set %s%s:%s %s`", flag, configPackage, setting, value)
	}
	if secret {
		return fmt.Sprintf("the argument %s of provider %q (from a secret)", setting, c.Provider)
	}
	return fmt.Sprintf("the argument %s: %q of provider %q", setting, value, c.Provider)
}

// rmHint says how to remove a setting.
func (c Config) rmHint(setting string) string {
	if c.isDefaultProvider() {
		return fmt.Sprintf("`pulumi config rm %s:%s`", configPackage, setting)
	}
	return fmt.Sprintf("remove the argument %s of provider %q", setting, c.Provider)
}
