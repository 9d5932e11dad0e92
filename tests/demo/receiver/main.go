// Command receiver is the loopback webhook receiver of `make demo`. It listens on 127.0.0.1,
// answers 200 to every POST, and prints each delivery: its headers, whether its signatures
// verify against the secret in DEMO_WEBHOOK_SECRET (checked here with crypto/hmac, the way a
// receiver written for Pulumi Cloud or for Standard Webhooks would), and its payload.
//
//	receiver --addr-file FILE [--save-dir DIR]
//
// It writes the address it listens on to FILE once it accepts connections, and, with
// --save-dir, the body and headers of each delivery to DIR/<n>.body and DIR/<n>.headers.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
}

func run() error {
	addrFile := flag.String("addr-file", "", "file to write the listening address to (required)")
	saveDir := flag.String("save-dir", "", "directory to save each delivery's body and headers in")
	flag.Parse()
	if *addrFile == "" {
		return errors.New("--addr-file is required")
	}
	r := &receiver{secret: os.Getenv("DEMO_WEBHOOK_SECRET"), saveDir: *saveDir, out: os.Stdout}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
		return err
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type receiver struct {
	secret  string
	saveDir string

	mu  sync.Mutex
	n   int
	out io.Writer
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil || req.Method != http.MethodPost {
		http.Error(w, "send a POST with a body", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.n++
	var b strings.Builder
	fmt.Fprintf(&b, "=== delivery %d: POST %s ===\n", rc.n, req.URL.Path)
	for _, h := range []string{"Pulumi-Webhook-ID", "Pulumi-Webhook-Kind", "webhook-id", "webhook-timestamp", "User-Agent", "Content-Type"} {
		fmt.Fprintf(&b, "  %-26s %s\n", h+":", req.Header.Get(h))
	}
	fmt.Fprintf(&b, "  %-26s %s\n", "Pulumi-Webhook-Signature:", rc.checkPulumi(req.Header, body))
	fmt.Fprintf(&b, "  %-26s %s\n", "webhook-signature:", rc.checkStandard(req.Header, body))
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "  ", "  ") != nil {
		pretty.Reset()
		pretty.Write(body)
	}
	fmt.Fprintf(&b, "  payload:\n  %s\n\n", pretty.String())
	fmt.Fprint(rc.out, b.String())
	if rc.saveDir != "" {
		base := filepath.Join(rc.saveDir, strconv.Itoa(rc.n))
		_ = os.WriteFile(base+".body", body, 0o644)
		var hs []string
		for k, vs := range req.Header {
			for _, v := range vs {
				hs = append(hs, k+": "+v)
			}
		}
		sort.Strings(hs)
		_ = os.WriteFile(base+".headers", []byte(strings.Join(hs, "\n")+"\n"), 0o644)
	}
	w.WriteHeader(http.StatusOK)
}

// checkPulumi verifies Pulumi-Webhook-Signature: hex HMAC-SHA256 of the body, keyed with the
// secret.
func (rc *receiver) checkPulumi(h http.Header, body []byte) string {
	got := h.Get("Pulumi-Webhook-Signature")
	switch {
	case got == "":
		return "absent (this webhook has no secret)"
	case rc.secret == "":
		return "present, not checked (DEMO_WEBHOOK_SECRET is not set)"
	}
	mac := hmac.New(sha256.New, []byte(rc.secret))
	mac.Write(body)
	if hmac.Equal([]byte(got), []byte(hex.EncodeToString(mac.Sum(nil)))) {
		return "VALID (HMAC-SHA256 of the body with the webhook secret)"
	}
	return "INVALID"
}

// checkStandard verifies the Standard Webhooks signature: base64 HMAC-SHA256 of
// "<webhook-id>.<webhook-timestamp>.<body>", keyed with the secret's bytes (or the decoded
// key of a whsec_ secret).
func (rc *receiver) checkStandard(h http.Header, body []byte) string {
	sigs := h.Get("webhook-signature")
	switch {
	case sigs == "":
		return "absent (this webhook has no secret)"
	case rc.secret == "":
		return "present, not checked (DEMO_WEBHOOK_SECRET is not set)"
	}
	key := []byte(rc.secret)
	if rest, ok := strings.CutPrefix(rc.secret, "whsec_"); ok {
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil {
			key = k
		}
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.", h.Get("webhook-id"), h.Get("webhook-timestamp"))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return "VALID (Standard Webhooks v1 over id.timestamp.body)"
		}
	}
	return "INVALID"
}
