package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Defaults of the remote client.
const (
	// RemoteTimeoutDefault bounds one request when NewRemote is given no *http.Client.
	RemoteTimeoutDefault = 30 * time.Second
	// remoteBodyLimit caps how much of a response is read.
	remoteBodyLimit = 4 << 20
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
		return fmt.Sprintf("the pulumi-webhooks server refused the access token (401 on %s %s): %s; check the provider's accessToken", e.Method, e.Path, e.Message)
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

// NewRemote returns a Client that manages hooks through the REST API of the pulumi-webhooks
// server at apiURL (its base URL, e.g. http://127.0.0.1:8080), authenticating with
// accessToken. hc nil means an http.Client with RemoteTimeoutDefault.
func NewRemote(apiURL, accessToken string, hc *http.Client) (Client, error) {
	raw := strings.TrimSpace(apiURL)
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return nil, errors.New("apiUrl is empty: give the base URL of a pulumi-webhooks server, e.g. http://127.0.0.1:8080")
	case err != nil:
		return nil, fmt.Errorf("apiUrl %q is not a valid URL: give the base URL of a pulumi-webhooks server, e.g. http://127.0.0.1:8080", apiURL)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("apiUrl %q is not an absolute http:// or https:// URL: include the scheme and host, e.g. http://127.0.0.1:8080", apiURL)
	case u.User != nil:
		return nil, errors.New("apiUrl carries user credentials: remove them and set accessToken instead")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("apiUrl %q has a query or fragment: give only the server's base URL", apiURL)
	}
	if strings.TrimSpace(accessToken) == "" {
		return nil, errors.New("accessToken is required with apiUrl: create one with `pulumi-webhooks token create --org ORG` " +
			"and set it as the provider's accessToken (as a secret)")
	}
	if hc == nil {
		hc = &http.Client{Timeout: RemoteTimeoutDefault}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return &remote{base: u.String(), token: strings.TrimSpace(accessToken), hc: hc}, nil
}

type remote struct {
	base  string
	token string
	hc    *http.Client
}

var _ Client = (*remote)(nil)

func (c *remote) Create(ctx context.Context, spec webhook.Spec) (*store.Hook, error) {
	var secret *string
	if spec.Secret != "" {
		secret = &spec.Secret
	}
	var out api.WebhookResponse
	if err := c.do(ctx, http.MethodPost, api.HooksPath(spec.Scope), api.WebhookFromSpec(spec, secret), &out); err != nil {
		return nil, err
	}
	return out.Hook(), nil
}

func (c *remote) Get(ctx context.Context, ref store.HookRef) (*store.Hook, error) {
	var out api.WebhookResponse
	if err := c.do(ctx, http.MethodGet, api.HookPath(ref), nil, &out); err != nil {
		return nil, err
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
	var out api.WebhookResponse
	if err := c.do(ctx, http.MethodPatch, api.HookPath(ref), api.WebhookFromSpec(spec, secret), &out); err != nil {
		return nil, err
	}
	return out.Hook(), nil
}

func (c *remote) Delete(ctx context.Context, ref store.HookRef) error {
	return c.do(ctx, http.MethodDelete, api.HookPath(ref), nil, nil)
}

// do sends one request and decodes a 2xx answer into out (when not nil).
func (c *remote) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "token "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("reach the pulumi-webhooks server at %s (check the provider's apiUrl and that the server runs): %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, remoteBodyLimit))
	if err != nil {
		return fmt.Errorf("read the answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil || resp.StatusCode == http.StatusNoContent {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode the answer to %s %s (status %d): %w", method, path, resp.StatusCode, err)
		}
		return nil
	}
	apiErr := &APIError{Method: method, Path: path, Code: resp.StatusCode}
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
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
