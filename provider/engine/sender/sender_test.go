package sender

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Every receiver in these tests is an httptest server on 127.0.0.1; the SSRF deny path is
// tested against such a receiver with no allow-list, and it must receive nothing.

const testSecret = "hook-secret-Xq7!"

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// receiver is an HTTP endpoint on 127.0.0.1 that records what reaches it.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
	// conns counts TCP connections opened to it.
	conns int
}

type received struct {
	method string
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, handle http.HandlerFunc) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{method: r.Method, header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		if handle != nil {
			handle(w, r)
		}
	}))
	rc.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rc.mu.Lock()
			rc.conns++
			rc.mu.Unlock()
		}
	}
	rc.srv.Start()
	t.Cleanup(rc.srv.Close)
	if host := rc.srv.Listener.Addr().(*net.TCPAddr).IP.String(); host != "127.0.0.1" {
		t.Fatalf("receiver listens on %s, want 127.0.0.1", host)
	}
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) url(path string) string { return rc.srv.URL + path }

type testBundle struct {
	sender *Sender
	now    time.Time
}

type setupOpts struct {
	allow   []netip.Prefix
	noAllow bool
	timeout time.Duration
	limit   int
}

func setup(t *testing.T, opts setupOpts) *testBundle {
	t.Helper()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	allow := opts.allow
	if allow == nil && !opts.noAllow {
		allow = loopback
	}
	timeout := opts.timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	s, err := New(Config{
		Timeout:           timeout,
		AllowTargets:      allow,
		UserAgent:         "pulumi-webhooks/test",
		ResponseBodyLimit: opts.limit,
		Now:               func() time.Time { return now },
		RetryAfterMax:     time.Hour,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return &testBundle{sender: s, now: now}
}

func request(url string) Request {
	return Request{
		URL:        url,
		DeliveryID: "dlv_0123456789",
		Kind:       webhook.KindStackUpdate,
		Body:       []byte(`{"projectName":"website","stackName":"prod","kind":"update","result":"succeeded"}`),
		Secret:     testSecret,
	}
}

// assertNoSecret fails when the secret shows up anywhere the attempt is recorded or reported.
func assertNoSecret(t *testing.T, res Result) {
	t.Helper()
	for k, vs := range res.Attempt.RequestHeaders {
		for _, v := range vs {
			if strings.Contains(v, testSecret) || strings.Contains(k, testSecret) {
				t.Errorf("recorded request header %s contains the secret", k)
			}
		}
	}
	if strings.Contains(res.Attempt.Error, testSecret) {
		t.Errorf("attempt error contains the secret: %q", res.Attempt.Error)
	}
	if strings.Contains(res.Attempt.RequestURL, testSecret) {
		t.Errorf("recorded URL contains the secret")
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitfor.Limit)
	t.Cleanup(cancel)
	return c
}

func TestSendSucceeded(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Receiver", "yes")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"ok":true}`)
	})
	b := setup(t, setupOpts{})
	req := request(rc.url("/hooks/pulumi?x=1"))
	res := b.sender.Send(ctx(t), req)

	if res.Outcome != Succeeded {
		t.Fatalf("Outcome = %s (error %q), want succeeded", res.Outcome, res.Attempt.Error)
	}
	a := res.Attempt
	if a.ResponseCode != http.StatusAccepted || string(a.ResponseBody) != `{"ok":true}` || a.Error != "" {
		t.Errorf("response recorded as %d %q error %q", a.ResponseCode, a.ResponseBody, a.Error)
	}
	if got := http.Header(a.ResponseHeaders).Get("X-Receiver"); got != "yes" {
		t.Errorf("recorded response header X-Receiver = %q", got)
	}
	if a.RequestURL != req.URL || string(a.RequestBody) != string(req.Body) {
		t.Errorf("recorded request %s %q, want %s %q", a.RequestURL, a.RequestBody, req.URL, req.Body)
	}
	if a.DeliveryID != req.DeliveryID || a.Kind != req.Kind || !a.StartedAt.Equal(b.now) || a.Duration <= 0 {
		t.Errorf("recorded attempt = id %q kind %q started %s duration %s", a.DeliveryID, a.Kind, a.StartedAt, a.Duration)
	}
	if res.RetryAfter != 0 {
		t.Errorf("RetryAfter = %s on success", res.RetryAfter)
	}
	assertNoSecret(t, res)

	got := rc.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	r := got[0]
	if r.method != http.MethodPost || string(r.body) != string(req.Body) {
		t.Errorf("receiver got %s %q", r.method, r.body)
	}
	ts := strconv.FormatInt(b.now.Unix(), 10)
	wantHeaders := map[string]string{
		"Content-Type":        "application/json",
		"User-Agent":          "pulumi-webhooks/test",
		"Pulumi-Webhook-ID":   "dlv_0123456789",
		"Pulumi-Webhook-Kind": "stack_update",
		"webhook-id":          "dlv_0123456789",
		"webhook-timestamp":   ts,
	}
	for k, v := range wantHeaders {
		if got := r.header.Get(k); got != v {
			t.Errorf("receiver header %s = %q, want %q", k, got, v)
		}
		if got := http.Header(a.RequestHeaders).Get(k); got != v {
			t.Errorf("recorded header %s = %q, want %q", k, got, v)
		}
	}
	if r.header.Get("Idempotency-Key") != "" || r.header.Get("Accept-Encoding") != "" || r.header.Get("Authorization") != "" {
		t.Errorf("receiver got unexpected headers: %v", r.header)
	}

	// Signatures, checked with crypto/hmac directly.
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write(r.body)
	if want := hex.EncodeToString(m.Sum(nil)); r.header.Get("Pulumi-Webhook-Signature") != want {
		t.Errorf("Pulumi-Webhook-Signature = %q, want %q", r.header.Get("Pulumi-Webhook-Signature"), want)
	}
	m = hmac.New(sha256.New, []byte(testSecret))
	m.Write([]byte("dlv_0123456789." + ts + "."))
	m.Write(r.body)
	if want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)); r.header.Get("webhook-signature") != want {
		t.Errorf("webhook-signature = %q, want %q", r.header.Get("webhook-signature"), want)
	}
	// The recorded headers are the ones sent, signatures included.
	for _, k := range []string{"Pulumi-Webhook-Signature", "webhook-signature"} {
		if http.Header(a.RequestHeaders).Get(k) != r.header.Get(k) {
			t.Errorf("recorded %s differs from the one sent", k)
		}
	}
}

func TestSendWithoutSecret(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	b := setup(t, setupOpts{})
	req := request(rc.url("/"))
	req.Secret = ""
	res := b.sender.Send(ctx(t), req)
	if res.Outcome != Succeeded || res.Attempt.ResponseCode != http.StatusOK {
		t.Fatalf("Outcome = %s code %d (error %q), want succeeded 200", res.Outcome, res.Attempt.ResponseCode, res.Attempt.Error)
	}
	h := rc.requests()[0].header
	for _, k := range []string{"Pulumi-Webhook-Signature", "webhook-signature"} {
		if _, ok := h[http.CanonicalHeaderKey(k)]; ok {
			t.Errorf("header %s sent although the hook has no secret", k)
		}
	}
	for _, k := range []string{"Pulumi-Webhook-ID", "webhook-id", "webhook-timestamp"} {
		if h.Get(k) == "" {
			t.Errorf("header %s missing", k)
		}
	}
}

func TestSendRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	target := newReceiver(t, nil)
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.url("/elsewhere"), code)
			})
			b := setup(t, setupOpts{})
			res := b.sender.Send(ctx(t), request(rc.url("/")))
			if res.Outcome != Retry || res.Attempt.ResponseCode != code {
				t.Fatalf("Outcome = %s code %d, want retry %d", res.Outcome, res.Attempt.ResponseCode, code)
			}
			for _, want := range []string{strconv.Itoa(code), "redirects are not followed", target.url("/elsewhere")} {
				if !strings.Contains(res.Attempt.Error, want) {
					t.Errorf("error %q does not mention %q", res.Attempt.Error, want)
				}
			}
			assertNoSecret(t, res)
			if n := len(rc.requests()); n != 1 {
				t.Errorf("redirecting endpoint got %d requests, want 1", n)
			}
		})
	}
	t.Cleanup(func() {
		if n := len(target.requests()); n != 0 {
			t.Errorf("the redirect target received %d requests, want none", n)
		}
	})
}

func TestSendGone(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusGone)
		io.WriteString(w, "hook removed")
	})
	b := setup(t, setupOpts{})
	res := b.sender.Send(ctx(t), request(rc.url("/")))
	if res.Outcome != Gone || res.Attempt.ResponseCode != http.StatusGone {
		t.Fatalf("Outcome = %s code %d, want gone 410", res.Outcome, res.Attempt.ResponseCode)
	}
	if string(res.Attempt.ResponseBody) != "hook removed" || !strings.Contains(res.Attempt.Error, "410") {
		t.Errorf("attempt = body %q error %q", res.Attempt.ResponseBody, res.Attempt.Error)
	}
	assertNoSecret(t, res)
}

// statusReceiver answers with the status and Retry-After given in the query string.
func statusReceiver(t *testing.T) *receiver {
	return newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if v, ok := q["retry-after"]; ok {
			w.Header().Set("Retry-After", v[0])
		}
		code, _ := strconv.Atoi(q.Get("status"))
		w.WriteHeader(code)
		io.WriteString(w, "status "+q.Get("status"))
	})
}

func TestSendRetryAfter(t *testing.T) {
	t.Parallel()
	rc := statusReceiver(t)
	b := setup(t, setupOpts{})
	date := func(d time.Duration) string { return b.now.Add(d).Format(http.TimeFormat) }
	cases := []struct {
		name       string
		status     int
		retryAfter *string
		want       time.Duration
	}{
		{"429 seconds", 429, ptr("120"), 2 * time.Minute},
		{"503 seconds", 503, ptr("7"), 7 * time.Second},
		{"429 zero", 429, ptr("0"), 0},
		{"429 date", 429, ptr(date(90 * time.Second)), 90 * time.Second},
		{"503 date", 503, ptr(date(45 * time.Minute)), 45 * time.Minute},
		{"429 seconds above the bound", 429, ptr("86400"), time.Hour},
		{"503 huge seconds", 503, ptr("99999999999999999999999"), time.Hour},
		{"429 date above the bound", 429, ptr(date(48 * time.Hour)), time.Hour},
		{"429 date in the past", 429, ptr(date(-time.Minute)), 0},
		{"429 negative", 429, ptr("-5"), 0},
		{"429 invalid", 429, ptr("soon"), 0},
		{"503 fractional", 503, ptr("1.5"), 0},
		{"429 without header", 429, nil, 0},
		{"500 header ignored", 500, ptr("120"), 0},
	}
	for _, c := range cases {
		u := rc.url("/?status=" + strconv.Itoa(c.status))
		if c.retryAfter != nil {
			u += "&retry-after=" + urlQueryEscape(*c.retryAfter)
		}
		res := b.sender.Send(ctx(t), request(u))
		if res.Outcome != Retry || res.Attempt.ResponseCode != c.status {
			t.Errorf("%s: Outcome = %s code %d, want retry %d", c.name, res.Outcome, res.Attempt.ResponseCode, c.status)
			continue
		}
		if res.RetryAfter != c.want {
			t.Errorf("%s: RetryAfter = %s, want %s", c.name, res.RetryAfter, c.want)
		}
		if !strings.Contains(res.Attempt.Error, strconv.Itoa(c.status)) {
			t.Errorf("%s: error %q does not give the status", c.name, res.Attempt.Error)
		}
		assertNoSecret(t, res)
	}
}

func ptr(s string) *string { return &s }

func urlQueryEscape(s string) string {
	return strings.NewReplacer("%", "%25", " ", "%20", ",", "%2C", ":", "%3A", "+", "%2B", "&", "%26").Replace(s)
}

func TestSendErrorStatuses(t *testing.T) {
	t.Parallel()
	rc := statusReceiver(t)
	b := setup(t, setupOpts{})
	for _, code := range []int{400, 401, 403, 404, 405, 409, 413, 422, 500, 501, 502, 504, 599} {
		res := b.sender.Send(ctx(t), request(rc.url("/?status="+strconv.Itoa(code))))
		if res.Outcome != Retry || res.Attempt.ResponseCode != code {
			t.Errorf("status %d: Outcome = %s code %d, want retry", code, res.Outcome, res.Attempt.ResponseCode)
		}
		if !strings.Contains(res.Attempt.Error, "endpoint answered "+strconv.Itoa(code)) {
			t.Errorf("status %d: error %q does not give the status", code, res.Attempt.Error)
		}
		if string(res.Attempt.ResponseBody) != "status "+strconv.Itoa(code) {
			t.Errorf("status %d: recorded body %q", code, res.Attempt.ResponseBody)
		}
		assertNoSecret(t, res)
	}
	for _, code := range []int{200, 201, 204, 299} {
		if res := b.sender.Send(ctx(t), request(rc.url("/?status="+strconv.Itoa(code)))); res.Outcome != Succeeded {
			t.Errorf("status %d: Outcome = %s, want succeeded", code, res.Outcome)
		}
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	b := setup(t, setupOpts{timeout: 200 * time.Millisecond})
	res := b.sender.Send(ctx(t), request(rc.url("/slow")))
	if res.Outcome != Retry || res.Attempt.ResponseCode != 0 {
		t.Fatalf("Outcome = %s code %d, want retry with no response", res.Outcome, res.Attempt.ResponseCode)
	}
	if !strings.Contains(res.Attempt.Error, "no response within 200ms") {
		t.Errorf("error %q does not say the attempt timed out", res.Attempt.Error)
	}
	if res.Attempt.Duration < 200*time.Millisecond {
		t.Errorf("Duration = %s, shorter than the timeout", res.Attempt.Duration)
	}
	assertNoSecret(t, res)
}

func TestSendCanceled(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
	})
	b := setup(t, setupOpts{})
	c, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	res := b.sender.Send(c, request(rc.url("/")))
	if res.Outcome != Retry || !strings.Contains(res.Attempt.Error, "interrupted") {
		t.Fatalf("Outcome = %s error %q, want retry, interrupted", res.Outcome, res.Attempt.Error)
	}
}

func TestSendConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b := setup(t, setupOpts{})
	res := b.sender.Send(ctx(t), request("http://"+addr+"/"))
	if res.Outcome != Retry || res.Attempt.ResponseCode != 0 {
		t.Fatalf("Outcome = %s code %d, want retry with no response", res.Outcome, res.Attempt.ResponseCode)
	}
	if !strings.Contains(res.Attempt.Error, "connection failed") || !strings.Contains(res.Attempt.Error, "refused") {
		t.Errorf("error %q does not say the connection was refused", res.Attempt.Error)
	}
	assertNoSecret(t, res)
}

func TestSendResponseBodyCapped(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, big)
	})
	b := setup(t, setupOpts{limit: 1000})
	res := b.sender.Send(ctx(t), request(rc.url("/")))
	if res.Outcome != Succeeded {
		t.Fatalf("Outcome = %s (error %q), want succeeded", res.Outcome, res.Attempt.Error)
	}
	if string(res.Attempt.ResponseBody) != big[:1000] {
		t.Errorf("recorded %d bytes, want the first 1000", len(res.Attempt.ResponseBody))
	}
}

func TestSendEndlessResponseDoesNotHang(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 32<<10))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	// The timeout is long: the attempt must end once the capped body is read, not at the timeout.
	b := setup(t, setupOpts{limit: 4096, timeout: waitfor.Limit})
	res := b.sender.Send(ctx(t), request(rc.url("/")))
	if res.Outcome != Succeeded || len(res.Attempt.ResponseBody) != 4096 {
		t.Fatalf("Outcome = %s, %d body bytes (error %q); want succeeded with 4096", res.Outcome, len(res.Attempt.ResponseBody), res.Attempt.Error)
	}
	if res.Attempt.Duration >= waitfor.Limit {
		t.Errorf("attempt took %s: it waited for the endless body instead of closing it", res.Attempt.Duration)
	}
}

func TestSendBlockedWithoutAllowList(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	b := setup(t, setupOpts{noAllow: true})
	res := b.sender.Send(ctx(t), request(rc.url("/")))
	if res.Outcome != Failed {
		t.Fatalf("Outcome = %s (error %q), want failed", res.Outcome, res.Attempt.Error)
	}
	for _, want := range []string{"delivery blocked", "127.0.0.1", "loopback", "allow-list", "--allow-target", "127.0.0.1/32"} {
		if !strings.Contains(res.Attempt.Error, want) {
			t.Errorf("error %q does not mention %q", res.Attempt.Error, want)
		}
	}
	if res.Attempt.ResponseCode != 0 || res.Attempt.RequestURL != rc.url("/") {
		t.Errorf("attempt recorded code %d URL %q", res.Attempt.ResponseCode, res.Attempt.RequestURL)
	}
	assertNoSecret(t, res)
	if n := len(rc.requests()); n != 0 {
		t.Errorf("the loopback receiver got %d requests through a guard with no allow-list", n)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.conns != 0 {
		t.Errorf("the loopback receiver saw %d connections through a guard with no allow-list", rc.conns)
	}
}

func TestSendAllowListIsExact(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	// 127.0.0.2/32 is allowed, the receiver's 127.0.0.1 is not.
	b := setup(t, setupOpts{allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}})
	res := b.sender.Send(ctx(t), request(rc.url("/")))
	if res.Outcome != Failed || !strings.Contains(res.Attempt.Error, "blocked") {
		t.Fatalf("Outcome = %s error %q, want failed, blocked", res.Outcome, res.Attempt.Error)
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver got %d requests", n)
	}
}

func TestSendMalformedRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	cases := []struct {
		name string
		mod  func(r *Request)
		want string
	}{
		{"empty URL", func(r *Request) { r.URL = "" }, "empty"},
		{"not a URL", func(r *Request) { r.URL = "http://[::1" }, "not a valid URL"},
		{"control character", func(r *Request) { r.URL = "http://127.0.0.1/\x7f\n" }, "not a valid URL"},
		{"no scheme", func(r *Request) { r.URL = "//127.0.0.1:8080/hook" }, "no scheme"},
		{"host:port without scheme", func(r *Request) { r.URL = "127.0.0.1:8080/hook" }, "not a valid URL"},
		{"ftp", func(r *Request) { r.URL = "ftp://127.0.0.1/hook" }, `scheme "ftp"`},
		{"no host", func(r *Request) { r.URL = "http:///hook" }, "no host"},
		{"port out of range", func(r *Request) { r.URL = "http://127.0.0.1:70000/" }, "port"},
		{"port zero", func(r *Request) { r.URL = "http://127.0.0.1:0/" }, "port"},
		{"no delivery ID", func(r *Request) { r.DeliveryID = "" }, "DeliveryID"},
		{"line break in ID", func(r *Request) { r.DeliveryID = "a\r\nX-Injected: 1" }, "line break"},
	}
	for _, c := range cases {
		r := request("http://127.0.0.1:9/hook")
		c.mod(&r)
		res := b.sender.Send(ctx(t), r)
		if res.Outcome != Failed {
			t.Errorf("%s: Outcome = %s (error %q), want failed", c.name, res.Outcome, res.Attempt.Error)
			continue
		}
		if !strings.Contains(res.Attempt.Error, c.want) {
			t.Errorf("%s: error %q does not contain %q", c.name, res.Attempt.Error, c.want)
		}
		if res.Attempt.ResponseCode != 0 || res.Attempt.RequestHeaders != nil {
			t.Errorf("%s: a request was made (code %d)", c.name, res.Attempt.ResponseCode)
		}
		assertNoSecret(t, res)
	}
}

func TestSendRedactsURLPassword(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	b := setup(t, setupOpts{})
	u := strings.Replace(rc.url("/hook"), "http://", "http://user:"+testSecret+"@", 1)
	res := b.sender.Send(ctx(t), request(u))
	if res.Outcome != Succeeded {
		t.Fatalf("Outcome = %s (error %q)", res.Outcome, res.Attempt.Error)
	}
	if strings.Contains(res.Attempt.RequestURL, testSecret) || !strings.Contains(res.Attempt.RequestURL, "user:") {
		t.Errorf("recorded URL %q: want the password redacted, the user kept", res.Attempt.RequestURL)
	}
	if user, pass, ok := (&http.Request{Header: rc.requests()[0].header}).BasicAuth(); !ok || user != "user" || pass != testSecret {
		t.Errorf("receiver got basic auth %q/%v, want the URL's credentials", user, ok)
	}
}

func TestSendReusesConnections(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	b := setup(t, setupOpts{})
	for i := 0; i < 20; i++ {
		r := request(rc.url("/"))
		r.DeliveryID = fmt.Sprintf("dlv_%d", i)
		if res := b.sender.Send(ctx(t), r); res.Outcome != Succeeded {
			t.Fatalf("send %d: %s (%q)", i, res.Outcome, res.Attempt.Error)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.conns != 1 {
		t.Errorf("20 sequential deliveries opened %d connections, want 1 kept alive", rc.conns)
	}
}

func TestSendConcurrent(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	b := setup(t, setupOpts{})
	var wg sync.WaitGroup
	results := make([]Result, 32)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := request(rc.url("/"))
			r.DeliveryID = fmt.Sprintf("dlv_%d", i)
			results[i] = b.sender.Send(ctx(t), r)
		}()
	}
	wg.Wait()
	for i, res := range results {
		if res.Outcome != Succeeded || res.Attempt.DeliveryID != fmt.Sprintf("dlv_%d", i) {
			t.Errorf("send %d: %s %q (%q)", i, res.Outcome, res.Attempt.DeliveryID, res.Attempt.Error)
		}
	}
	if n := len(rc.requests()); n != len(results) {
		t.Errorf("receiver got %d requests, want %d", n, len(results))
	}
}

func TestNoProxyFromEnvironment(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	if b.sender.transport.Proxy != nil {
		t.Fatal("the transport uses a proxy function: deliveries could bypass the SSRF guard")
	}
	if b.sender.transport.DialContext == nil {
		t.Fatal("the transport has no guarded dialer")
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	s, err := New(Config{})
	if err != nil {
		t.Fatalf("New(Config{}): %v", err)
	}
	c := s.Config()
	if c.Timeout != TimeoutDefault || c.ResponseBodyLimit != ResponseBodyLimitDefault ||
		c.UserAgent != UserAgentDefault || c.RetryAfterMax != RetryAfterMaxDefault || c.Now == nil {
		t.Errorf("defaults not applied: %+v", c)
	}
	bad := []struct {
		cfg  Config
		want string
	}{
		{Config{Timeout: -time.Second}, "Config.Timeout"},
		{Config{ResponseBodyLimit: -1}, "Config.ResponseBodyLimit"},
		{Config{RetryAfterMax: -time.Second}, "Config.RetryAfterMax"},
		{Config{UserAgent: "a\nb"}, "Config.UserAgent"},
		{Config{AllowTargets: []netip.Prefix{{}}}, "Config.AllowTargets[0]"},
	}
	for _, c := range bad {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", c.cfg, err, c.want)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	t.Parallel()
	want := map[Outcome]string{Succeeded: "succeeded", Retry: "retry", Gone: "gone", Failed: "failed", 0: "Outcome(0)"}
	for o, s := range want {
		if o.String() != s {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), o.String(), s)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                               0,
		" 30 ":                           30 * time.Second,
		"3600":                           time.Hour,
		"3601":                           time.Hour,
		"Fri, 02 Jan 2026 03:05:05 GMT":  time.Minute,
		"Friday, 02-Jan-26 03:05:05 GMT": time.Minute, // RFC 850 form
		"Fri Jan  2 03:05:05 2026":       time.Minute, // asctime form
		"Fri, 02 Jan 2026 03:04:04 GMT":  0,
		"tomorrow":                       0,
		"-1":                             0,
	}
	for v, want := range cases {
		if got := parseRetryAfter(v, now, time.Hour); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}
