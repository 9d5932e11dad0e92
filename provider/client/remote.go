package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Defaults of the remote client.
const (
	// RemoteTimeoutDefault bounds one request when NewRemote is given no *http.Client.
	RemoteTimeoutDefault = 30 * time.Second
	// remoteBodyLimit caps how much of a response is read.
	remoteBodyLimit = 4 << 20
	// remoteRateLimitTries is how many times a request the server answers 429 (too many
	// requests for the token) is sent in all, each after the Retry-After the server asks for.
	remoteRateLimitTries = 5
	// remoteRetryAfterMax caps one wait for a 429.
	remoteRetryAfterMax = 30 * time.Second
)

// APIError is an error answer of a pulumi-webhooks server. It unwraps to store.ErrNotFound
// (404), store.ErrAlreadyExists (409) and, for a 400 that lists field problems,
// webhook.FieldErrors, so callers treat both client modes alike.
type APIError struct {
	Method string
	// Path is the request path (it never carries the token).
	Path    string
	Code    int
	Message string
	Fields  webhook.FieldErrors
	// TokenFrom says where the access token came from (pulumiservice:accessToken or the
	// environment variable PULUMI_ACCESS_TOKEN), for a 401.
	TokenFrom string

	// structured reports that the body was the API's {"code", "message"} error, i.e. that a
	// pulumi-webhooks server (not a proxy in front of it) answered.
	structured bool
}

func (e *APIError) Error() string {
	if len(e.Fields) > 0 {
		// The server's message, with the fields named as the webhook spec names them.
		return e.Fields.Error()
	}
	switch e.Code {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict:
		return e.Message
	case http.StatusUnauthorized:
		from := e.TokenFrom
		if from == "" {
			from = configPackage + ":" + SettingAccessToken
		}
		return fmt.Sprintf("the pulumi-webhooks server refused the access token from %s (401 on %s %s): %s; set %s:%s "+
			"to an API token of this server (`pulumi-webhooks token create --org ORG`, then "+
			"`pulumi config set --secret %s:%s TOKEN`)", from, e.Method, e.Path, e.Message,
			configPackage, SettingAccessToken, configPackage, SettingAccessToken)
	}
	return fmt.Sprintf("pulumi-webhooks server: %s %s: %d %s: %s", e.Method, e.Path, e.Code, http.StatusText(e.Code), e.Message)
}

// Unwrap returns the sentinel errors the status stands for.
func (e *APIError) Unwrap() []error {
	var errs []error
	switch e.Code {
	case http.StatusNotFound:
		errs = append(errs, store.ErrNotFound)
	case http.StatusConflict:
		errs = append(errs, store.ErrAlreadyExists)
	}
	if len(e.Fields) > 0 {
		errs = append(errs, e.Fields)
	}
	return errs
}

// ForeignOrgError means the access token belongs to another organization than Org. The server
// answers 404 for everything of an organization the token does not belong to, exactly as for
// objects that do not exist, so that a token never learns which names exist elsewhere; the
// remote client tells the two apart by asking for Org's webhook list, which a token of Org
// always gets. It deliberately does not wrap store.ErrNotFound: the hook may well exist, and a
// caller must not take it for deleted.
type ForeignOrgError struct {
	Org string
	// Message is the server's answer to the organization check.
	Message string
}

func (e *ForeignOrgError) Error() string {
	return fmt.Sprintf("the access token belongs to another organization than %q (asked for that organization's webhooks, "+
		"the pulumi-webhooks server answers: %s); use a token of %s (pulumi-webhooks token create --org %s)",
		e.Org, e.Message, e.Org, e.Org)
}

// NewRemote returns a Client that manages hooks through the REST API of the pulumi-webhooks
// server at apiURL (its base URL, e.g. http://127.0.0.1:8080), authenticating with
// accessToken. Both are checked by the rules of Config (and so refused with the same
// messages); the environment is not read. hc nil means an http.Client with
// RemoteTimeoutDefault.
func NewRemote(apiURL, accessToken string, hc *http.Client) (Client, error) {
	r, refused := Config{APIURL: apiURL, AccessToken: accessToken, Getenv: func(string) string { return "" }}.Resolve()
	if len(refused) > 0 {
		return nil, refused
	}
	if r.Mode != ModeRemote {
		return nil, &ConfigError{Setting: SettingAPIURL, Reason: "apiUrl is empty: give the base URL of a pulumi-webhooks server, e.g. http://127.0.0.1:8080"}
	}
	return newRemote(r, hc), nil
}

// newRemote returns the remote client of a resolved remote configuration.
func newRemote(r Resolved, hc *http.Client) *remote {
	if hc == nil {
		hc = &http.Client{Timeout: RemoteTimeoutDefault}
	}
	return &remote{base: r.APIURL, token: r.AccessToken, tokenFrom: r.TokenFrom, hc: hc}
}

type remote struct {
	base  string
	token string
	// tokenFrom says where the token came from (the setting or the environment variable).
	tokenFrom string
	hc        *http.Client
}

var _ Client = (*remote)(nil)

func (c *remote) Create(ctx context.Context, spec webhook.Spec) (*store.Hook, error) {
	var secret *string
	if spec.Secret != "" {
		secret = &spec.Secret
	}
	var out api.WebhookResponse
	if err := c.do(ctx, http.MethodPost, api.HooksPath(spec.Scope), api.WebhookFromSpec(spec, secret), &out); err != nil {
		return nil, c.explainNotFound(ctx, spec.Org, err)
	}
	return out.Hook(), nil
}

func (c *remote) Get(ctx context.Context, ref store.HookRef) (*store.Hook, error) {
	var out api.WebhookResponse
	if err := c.do(ctx, http.MethodGet, api.HookPath(ref), nil, &out); err != nil {
		return nil, c.explainNotFound(ctx, ref.Org, err)
	}
	return out.Hook(), nil
}

func (c *remote) Update(ctx context.Context, ref store.HookRef, spec webhook.Spec, secret *string) (*store.Hook, error) {
	if spec.Scope == (webhook.Scope{}) {
		spec.Scope = ref.Scope
	}
	if spec.Name == "" {
		spec.Name = ref.Name
	}
	// The wire keeps a secret sent as "": removing one takes webhook.RemoveSecret.
	var out api.WebhookResponse
	if err := c.do(ctx, http.MethodPatch, api.HookPath(ref), api.WebhookFromSpec(spec, api.SecretUpdateWire(secret)), &out); err != nil {
		return nil, c.explainNotFound(ctx, ref.Org, err)
	}
	return out.Hook(), nil
}

// SecretMatches asks the server whether secret is the hook's (api.SecretCheckRequest).
func (c *remote) SecretMatches(ctx context.Context, ref store.HookRef, secret string) (bool, error) {
	var out api.SecretCheckResponse
	if err := c.do(ctx, http.MethodPost, api.HookSecretCheckPath(ref), api.SecretCheckRequest{Secret: secret}, &out); err != nil {
		return false, c.explainNotFound(ctx, ref.Org, err)
	}
	return out.Matches, nil
}

func (c *remote) Delete(ctx context.Context, ref store.HookRef) error {
	return c.explainNotFound(ctx, ref.Org, c.do(ctx, http.MethodDelete, api.HookPath(ref), nil, nil))
}

// explainNotFound decides what a 404 to a request about org's webhooks means. The server
// answers 404 alike for a missing webhook and for anything of an organization the token does
// not belong to, so the 404 alone must not be taken for "gone": a refresh would drop every
// webhook from the state. Listing org's webhooks settles it without weakening the server's
// isolation: a token of org gets the list (so the webhook really is missing and err stands),
// a token of another organization gets a 404 from the server (a *ForeignOrgError), and any
// other answer leaves the question open, which is an error that does not wrap
// store.ErrNotFound. Errors other than a 404 come back unchanged.
func (c *remote) explainNotFound(ctx context.Context, org string, err error) error {
	var notFound *APIError
	if !errors.As(err, &notFound) || notFound.Code != http.StatusNotFound {
		return err
	}
	var hooks []json.RawMessage
	path := api.HooksPath(webhook.Scope{Org: org})
	checkErr := c.do(ctx, http.MethodGet, path, nil, &hooks)
	var refused *APIError
	switch {
	case checkErr == nil:
		return err
	case errors.As(checkErr, &refused) && refused.Code == http.StatusNotFound && refused.structured:
		return &ForeignOrgError{Org: org, Message: refused.Message}
	case errors.As(checkErr, &refused):
		// Not a hook answer: keep only the status and message, so that a 404 or 409 here
		// cannot pass for store.ErrNotFound or store.ErrAlreadyExists.
		checkErr = fmt.Errorf("GET %s answered %d %s: %s", path, refused.Code, http.StatusText(refused.Code), refused.Message)
	}
	return fmt.Errorf("the pulumi-webhooks server answered %s %s with 404 (%s), but checking that the access token "+
		"belongs to organization %q failed, so it is unknown whether the webhook is gone; check the provider's apiUrl "+
		"and accessToken: %w", notFound.Method, notFound.Path, notFound.Message, org, checkErr)
}

// do sends one request and decodes a 2xx answer into out (when not nil). A 429 (the token's
// rate limit) is sent again after the server's Retry-After, a few times.
func (c *remote) do(ctx context.Context, method, path string, in, out any) error {
	var payload []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		payload = b
	}
	for try := 1; ; try++ {
		resp, b, err := c.send(ctx, method, path, payload, in != nil)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusTooManyRequests && try < remoteRateLimitTries {
			if err := sleepCtx(ctx, retryAfter(resp.Header.Get("Retry-After"))); err != nil {
				return fmt.Errorf("%s %s: waiting out the server's rate limit: %w", method, path, err)
			}
			continue
		}
		return c.answer(method, path, resp, b, out)
	}
}

// send makes one request and reads the answer.
func (c *remote) send(ctx context.Context, method, path string, payload []byte, hasBody bool) (*http.Response, []byte, error) {
	var body io.Reader
	if hasBody {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "token "+c.token)
	req.Header.Set("Accept", "application/json")
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("reach the pulumi-webhooks server at %s (check the provider's apiUrl and that the server runs): %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, remoteBodyLimit))
	if err != nil {
		return nil, nil, fmt.Errorf("read the answer to %s %s: %w", method, path, err)
	}
	return resp, b, nil
}

// retryAfter reads a Retry-After of whole seconds; anything else means one second.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 {
		return time.Second
	}
	return min(time.Duration(n)*time.Second, remoteRetryAfterMax)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// answer decodes a 2xx answer into out, or returns the error answer as an *APIError.
func (c *remote) answer(method, path string, resp *http.Response, b []byte, out any) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil || resp.StatusCode == http.StatusNoContent {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode the answer to %s %s (status %d): %w", method, path, resp.StatusCode, err)
		}
		return nil
	}
	apiErr := &APIError{Method: method, Path: path, Code: resp.StatusCode, TokenFrom: c.tokenFrom}
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		apiErr.structured = e.Code == resp.StatusCode
		apiErr.Message = e.Message
		for _, f := range e.Errors {
			field := f.Field
			if field == "envName" {
				field = "environmentName" // the hook API's wire name; the spec's name is environmentName
			}
			apiErr.Fields = append(apiErr.Fields, webhook.FieldError{Field: field, Message: f.Message})
		}
	} else {
		apiErr.Message = strings.TrimSpace(string(b))
		if len(apiErr.Message) > 512 {
			apiErr.Message = apiErr.Message[:512] + "..."
		}
		if apiErr.Message == "" {
			apiErr.Message = http.StatusText(resp.StatusCode)
		}
	}
	return apiErr
}
