// Package sender makes one HTTP attempt of a webhook delivery and says what to do next.
//
// Send posts the body with the delivery headers (Pulumi's and the Standard Webhooks ones,
// signed when the hook has a secret), through a client that dials only addresses the SSRF guard
// permits (package netguard), ignores proxy settings from the environment, never follows
// redirects, bounds the whole attempt by a timeout and reads at most a fixed amount of the
// response. It returns the attempt as it will be recorded and an Outcome:
//
//   - Succeeded: the endpoint answered 2xx.
//   - Gone: it answered 410; the engine disables the hook.
//   - Retry: any other answer (3xx included), a timeout or a connection error; for 429 and 503
//     RetryAfter carries the endpoint's Retry-After, bounded.
//   - Failed: retrying cannot help: the URL is malformed or its address is refused.
//
// Retry schedules, leases and recording are the engine's; a Sender is stateless apart from its
// pool of keep-alive connections and is safe for concurrent use.
package sender

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/netguard"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Defaults for Config fields left zero.
const (
	TimeoutDefault           = 15 * time.Second
	ResponseBodyLimitDefault = 64 << 10
	UserAgentDefault         = "pulumi-webhooks"
	RetryAfterMaxDefault     = time.Hour
)

const (
	// drainLimit is how much of a response beyond ResponseBodyLimit is read and thrown away so
	// the connection can be reused; a longer body closes the connection instead.
	drainLimit = 256 << 10
	// maxResponseHeaderBytes bounds the response headers an endpoint can send.
	maxResponseHeaderBytes = 256 << 10
)

// Config builds a Sender. Every field is optional.
type Config struct {
	// Timeout bounds one attempt: connecting, sending, and reading the response.
	Timeout time.Duration
	// AllowTargets lists prefixes the SSRF guard lets through although they are loopback,
	// private, link-local... (see netguard). Empty: public addresses only.
	AllowTargets []netip.Prefix
	// UserAgent is the User-Agent header, e.g. "pulumi-webhooks/1.2.3".
	UserAgent string
	// ResponseBodyLimit caps how many bytes of a response body are read and recorded.
	ResponseBodyLimit int
	// Now is the clock for the webhook-timestamp header, StartedAt and Retry-After dates.
	Now func() time.Time
	// RetryAfterMax bounds the delay a Retry-After header can ask for.
	RetryAfterMax time.Duration
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = TimeoutDefault
	}
	if c.UserAgent == "" {
		c.UserAgent = UserAgentDefault
	}
	if c.ResponseBodyLimit == 0 {
		c.ResponseBodyLimit = ResponseBodyLimitDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RetryAfterMax == 0 {
		c.RetryAfterMax = RetryAfterMaxDefault
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("sender: Config.Timeout is %s: give a positive duration", c.Timeout)
	case c.ResponseBodyLimit < 0:
		return fmt.Errorf("sender: Config.ResponseBodyLimit is %d: give a positive number of bytes", c.ResponseBodyLimit)
	case c.RetryAfterMax < 0:
		return fmt.Errorf("sender: Config.RetryAfterMax is %s: give a positive duration", c.RetryAfterMax)
	case strings.ContainsAny(c.UserAgent, "\r\n"):
		return errors.New("sender: Config.UserAgent contains a line break: give a single-line value")
	}
	for i, p := range c.AllowTargets {
		if !p.IsValid() {
			return fmt.Errorf("sender: Config.AllowTargets[%d] is not a valid prefix: parse entries with netguard.ParsePrefixes", i)
		}
	}
	return nil
}

// Request is one attempt to make.
type Request struct {
	// URL is the hook's payload URL (http or https).
	URL string
	// DeliveryID goes into Pulumi-Webhook-ID and webhook-id; it is the same on every attempt
	// of a delivery.
	DeliveryID string
	Kind       webhook.Kind
	// Body is sent and signed exactly as given.
	Body []byte
	// Secret, when not empty, signs the request. It is never recorded.
	Secret string
}

// Outcome says what the engine should do after an attempt.
type Outcome int

// The outcomes. The zero Outcome is none of them.
const (
	// Succeeded: the endpoint answered 2xx.
	Succeeded Outcome = iota + 1
	// Retry: try again later (RetryAfter, when set, says how much later).
	Retry
	// Gone: the endpoint answered 410 Gone; stop delivering to it and disable the hook.
	Gone
	// Failed: permanent; the URL is malformed or its address is refused.
	Failed
)

func (o Outcome) String() string {
	switch o {
	case Succeeded:
		return "succeeded"
	case Retry:
		return "retry"
	case Gone:
		return "gone"
	case Failed:
		return "failed"
	default:
		return "Outcome(" + strconv.Itoa(int(o)) + ")"
	}
}

// Result is what one attempt did.
type Result struct {
	// Attempt has DeliveryID, Kind, StartedAt, Duration, the request and response fields and
	// Error filled in; the engine adds the IDs and numbers it owns.
	Attempt store.Attempt
	Outcome Outcome
	// RetryAfter is the delay the endpoint asked for with Retry-After on a 429 or 503, bounded
	// by Config.RetryAfterMax; zero when it asked for none (or an invalid one).
	RetryAfter time.Duration
}

// Sender makes delivery attempts. Create it with New; it is safe for concurrent use.
type Sender struct {
	cfg       Config
	transport *http.Transport
	client    *http.Client
}

// New returns a Sender for cfg (defaults applied).
func New(cfg Config) (*Sender, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	guard := netguard.New(cfg.AllowTargets)
	transport := &http.Transport{
		// Never a proxy from the environment: it would carry deliveries past the guard.
		Proxy:                  nil,
		DialContext:            guard.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConns:           512,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        60 * time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		// What is recorded is what was sent: no Accept-Encoding added behind our back.
		DisableCompression: true,
	}
	return &Sender{
		cfg:       cfg,
		transport: transport,
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// Config returns the configuration in use, defaults applied.
func (s *Sender) Config() Config { return s.cfg }

// Close releases idle keep-alive connections. The Sender stays usable.
func (s *Sender) Close() { s.transport.CloseIdleConnections() }

// Send makes one attempt. It never panics and always returns a recordable attempt; the
// request's secret appears in neither the recorded headers nor the error.
func (s *Sender) Send(ctx context.Context, r Request) Result {
	start := time.Now()
	res := s.send(ctx, r, start)
	res.Attempt.Duration = time.Since(start)
	return res
}

func (s *Sender) send(ctx context.Context, r Request, start time.Time) Result {
	now := s.cfg.Now()
	res := Result{Attempt: store.Attempt{
		DeliveryID:  r.DeliveryID,
		Kind:        r.Kind,
		StartedAt:   now,
		RequestURL:  r.URL,
		RequestBody: r.Body,
	}}
	fail := func(outcome Outcome, format string, args ...any) Result {
		res.Outcome = outcome
		res.Attempt.Error = fmt.Sprintf(format, args...)
		return res
	}

	u, err := parseURL(r.URL)
	if err != nil {
		return fail(Failed, "%v", err)
	}
	res.Attempt.RequestURL = u.Redacted()
	if r.DeliveryID == "" {
		return fail(Failed, "the delivery has no ID: Request.DeliveryID is required")
	}
	if strings.ContainsAny(r.DeliveryID, "\r\n") || strings.ContainsAny(string(r.Kind), "\r\n") {
		return fail(Failed, "the delivery ID or kind contains a line break")
	}

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(r.Body))
	if err != nil {
		return fail(Failed, "building the request: %v", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", s.cfg.UserAgent)
	h.Set(signature.HeaderID, r.DeliveryID)
	h.Set(signature.HeaderKind, string(r.Kind))
	h.Set(signature.HeaderStdID, r.DeliveryID)
	h.Set(signature.HeaderStdTimestamp, strconv.FormatInt(now.Unix(), 10))
	if r.Secret != "" {
		h.Set(signature.HeaderSignature, signature.Sign(r.Secret, r.Body))
		h.Set(signature.HeaderStdSignature, signature.SignStandard(r.Secret, r.DeliveryID, now, r.Body))
	}
	res.Attempt.RequestHeaders = map[string][]string(h.Clone())
	// Deliveries are idempotent by their ID, so the transport may resend one on a keep-alive
	// connection the endpoint closed before reading it. A nil value is not sent on the wire.
	h["Idempotency-Key"] = nil

	resp, err := s.client.Do(req)
	if err != nil {
		return s.transportFailure(ctx, res, err, start)
	}
	res.Attempt.ResponseCode = resp.StatusCode
	res.Attempt.ResponseHeaders = map[string][]string(resp.Header.Clone())
	res.Attempt.ResponseBody = readCapped(resp.Body, s.cfg.ResponseBodyLimit)

	code := resp.StatusCode
	status := fmt.Sprintf("%d %s", code, http.StatusText(code))
	switch {
	case code >= 200 && code <= 299:
		res.Outcome = Succeeded
	case code >= 300 && code <= 399:
		res.Outcome = Retry
		res.Attempt.Error = fmt.Sprintf("endpoint answered %s", status)
		if loc := resp.Header.Get("Location"); loc != "" {
			res.Attempt.Error += fmt.Sprintf(" redirecting to %q", loc)
		}
		res.Attempt.Error += "; redirects are not followed: set the payload URL to the final address"
	case code == http.StatusGone:
		res.Outcome = Gone
		res.Attempt.Error = fmt.Sprintf("endpoint answered %s: it no longer accepts deliveries", status)
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		res.Outcome = Retry
		res.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), s.cfg.Now(), s.cfg.RetryAfterMax)
		res.Attempt.Error = fmt.Sprintf("endpoint answered %s", status)
		if res.RetryAfter > 0 {
			res.Attempt.Error += fmt.Sprintf(", asking to retry after %s", res.RetryAfter)
		}
	default:
		res.Outcome = Retry
		res.Attempt.Error = fmt.Sprintf("endpoint answered %s", status)
	}
	return res
}

// transportFailure classifies an attempt that got no response.
func (s *Sender) transportFailure(ctx context.Context, res Result, err error, start time.Time) Result {
	// url.Error repeats the method and URL; the recorded attempt has both already.
	inner := err
	var uerr *url.Error
	if errors.As(err, &uerr) {
		inner = uerr.Err
	}
	var blocked *netguard.BlockedError
	switch {
	case errors.As(err, &blocked):
		res.Outcome = Failed
		res.Attempt.Error = "delivery blocked: " + blocked.Error()
	case errors.Is(err, netguard.ErrBlocked):
		res.Outcome = Failed
		res.Attempt.Error = "delivery blocked: " + inner.Error()
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && time.Since(start) >= s.cfg.Timeout:
		res.Outcome = Retry
		res.Attempt.Error = fmt.Sprintf("no response within %s (the attempt timeout)", s.cfg.Timeout)
	case ctx.Err() != nil:
		res.Outcome = Retry
		res.Attempt.Error = fmt.Sprintf("attempt interrupted before a response: %v", context.Cause(ctx))
	default:
		res.Outcome = Retry
		res.Attempt.Error = "connection failed: " + inner.Error()
	}
	return res
}

// parseURL parses a stored webhook's payload URL with the rule of every payload URL
// (webhook.ParseHTTPURL); a webhook created before a rule Spec.Validate adds (credentials in the
// URL, for one) is still sent to.
func parseURL(raw string) (*url.URL, error) {
	u, err := webhook.ParseHTTPURL(raw)
	if err != nil {
		return nil, fmt.Errorf("the payload URL %w", err)
	}
	return u, nil
}

// readCapped reads at most limit bytes of body, drains a bounded remainder so the connection
// can be reused, and closes it.
func readCapped(body io.ReadCloser, limit int) []byte {
	defer body.Close()
	b, _ := io.ReadAll(io.LimitReader(body, int64(limit)))
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	return b
}

// parseRetryAfter reads a Retry-After value, delay-seconds or an HTTP-date, as a delay from
// now bounded by max. Invalid values and dates in the past give zero.
func parseRetryAfter(v string, now time.Time, max time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs > uint64(max/time.Second) {
			return max
		}
		return time.Duration(secs) * time.Second
	} else if errors.Is(err, strconv.ErrRange) {
		return max
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	switch {
	case d < 0:
		return 0
	case d > max:
		return max
	}
	return d
}
