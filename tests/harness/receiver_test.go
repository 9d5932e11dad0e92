package harness

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// received is one request a receiver got, with the status it answered.
type received struct {
	Receiver string
	Path     string
	Header   http.Header
	Body     []byte
	At       time.Time
	Status   int
}

// deliveryID is the request's Pulumi-Webhook-ID.
func (r *received) deliveryID() string { return r.Header.Get("Pulumi-Webhook-ID") }

// receiver is an HTTP endpoint on 127.0.0.1 that records every request. What it answers is
// decided per request by answer (200 when nil), after an optional delay.
type receiver struct {
	name string
	srv  *httptest.Server

	mu     sync.Mutex
	reqs   []*received
	answer func(n int, r *received) int // n counts this receiver's requests, from 0
	delay  time.Duration
	// changed is closed and replaced on every request, so waiters wake up without polling.
	changed chan struct{}
}

func newReceiver(name string) *receiver {
	rc := &receiver{name: name, changed: make(chan struct{})}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	return rc
}

func (rc *receiver) url() string { return rc.srv.URL }

func (rc *receiver) close() { rc.srv.Close() }

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	delay := rc.delay
	rc.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	rec := &received{Receiver: rc.name, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now()}
	if r.Method != http.MethodPost {
		rec.Status = http.StatusMethodNotAllowed
	}
	rc.mu.Lock()
	if rec.Status == 0 {
		rec.Status = http.StatusOK
		if rc.answer != nil {
			rec.Status = rc.answer(len(rc.reqs), rec)
		}
	}
	rc.reqs = append(rc.reqs, rec)
	close(rc.changed)
	rc.changed = make(chan struct{})
	rc.mu.Unlock()
	w.WriteHeader(rec.Status)
}

// setAnswer changes what the receiver answers from now on.
func (rc *receiver) setAnswer(delay time.Duration, answer func(n int, r *received) int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.delay, rc.answer = delay, answer
}

// since returns the requests from index from on, and the index to continue from.
func (rc *receiver) since(from int) ([]*received, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]*received, len(rc.reqs)-from)
	copy(out, rc.reqs[from:])
	return out, len(rc.reqs)
}

// count returns the number of requests so far and a channel closed on the next one.
func (rc *receiver) count() (int, <-chan struct{}) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs), rc.changed
}

// Signature checks, written here with crypto/hmac from the two published schemes rather than
// with provider/signature, which they check.

// checkPulumiSignature verifies Pulumi-Webhook-Signature: lowercase hex HMAC-SHA256 of the
// body keyed with the secret's bytes.
func checkPulumiSignature(secret string, r *received) error {
	got := r.Header.Get("Pulumi-Webhook-Signature")
	if got == "" {
		return fmt.Errorf("no Pulumi-Webhook-Signature header although the hook has a secret")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(r.Body)
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(got), []byte(want)) {
		return fmt.Errorf("Pulumi-Webhook-Signature does not match the body")
	}
	return nil
}

// standardKey is the Standard Webhooks key of a secret: the decoded remainder of a
// "whsec_<base64>" secret, else the secret's bytes.
func standardKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return k
		}
	}
	return []byte(secret)
}

// standardTolerance is how far webhook-timestamp may be from the time the request arrived.
const standardTolerance = 5 * time.Minute

// checkStandardSignature verifies the Standard Webhooks headers: webhook-id, a webhook-timestamp
// close to the arrival time, and a "v1,<base64 HMAC-SHA256(id.timestamp.body)>" signature.
func checkStandardSignature(secret string, r *received) error {
	id, ts, sigs := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	if sigs == "" {
		return fmt.Errorf("no webhook-signature header although the hook has a secret")
	}
	mac := hmac.New(sha256.New, standardKey(secret))
	fmt.Fprintf(mac, "%s.%s.", id, ts)
	mac.Write(r.Body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no webhook-signature entry matches id, timestamp and body")
}

// checkStandardHeaders checks the unsigned Standard Webhooks headers every delivery carries.
func checkStandardHeaders(r *received) error {
	id := r.Header.Get("webhook-id")
	if id == "" || id != r.deliveryID() {
		return fmt.Errorf("webhook-id %q differs from Pulumi-Webhook-ID %q", id, r.deliveryID())
	}
	sec, err := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not Unix seconds", r.Header.Get("webhook-timestamp"))
	}
	if d := r.At.Sub(time.Unix(sec, 0)); d > standardTolerance || d < -standardTolerance {
		return fmt.Errorf("webhook-timestamp is %s away from the arrival time", d)
	}
	return nil
}
