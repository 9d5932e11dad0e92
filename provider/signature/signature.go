// Package signature signs webhook deliveries and verifies them, in two schemes that are sent
// side by side on every delivery.
//
// # Pulumi Cloud scheme
//
// Pulumi-Webhook-Signature is the lowercase hexadecimal HMAC-SHA256 of the exact request body
// bytes, with the webhook secret's bytes as the key. Receivers written for Pulumi Cloud
// verify it unchanged. It carries no timestamp, so on its own it does not stop a captured
// request from being replayed.
//
// # Standard Webhooks scheme
//
// The headers of the Standard Webhooks specification (https://www.standardwebhooks.com) are
// sent too, so receivers can use a stock verifier with replay protection:
//
//	webhook-id:        the delivery ID (the same as Pulumi-Webhook-ID)
//	webhook-timestamp: the attempt's time in Unix seconds
//	webhook-signature: v1,<base64 of HMAC-SHA256(key, id + "." + timestamp + "." + body)>
//
// The key depends on the form of the secret:
//
//   - A secret of the form "whsec_<base64>" (as Standard Webhooks tools generate them): the
//     key is the base64-decoded remainder, exactly as stock libraries derive it. Configure the
//     stock verifier with the same secret string.
//   - Any other secret (including a "whsec_" one whose remainder is not valid standard
//     base64): the key is the secret's raw bytes. Stock verifiers expect "whsec_<base64>", so
//     configure them with "whsec_" + base64(secret), e.g. in a shell
//     `printf 'whsec_%s' "$(printf %s "$SECRET" | base64)"`, or use the library's raw-key
//     constructor with the secret's bytes.
//
// The Pulumi scheme always uses the secret's raw bytes, whatever its form.
//
// Verification compares in constant time, accepts several space-separated signatures in one
// header (so a secret can be rotated), and, for Standard Webhooks, refuses timestamps outside a
// tolerance window. Errors never include the secret.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names. Go's http.Header canonicalises the Standard Webhooks names (Webhook-Id...);
// HTTP header names are case-insensitive.
const (
	HeaderID           = "Pulumi-Webhook-ID"
	HeaderKind         = "Pulumi-Webhook-Kind"
	HeaderSignature    = "Pulumi-Webhook-Signature"
	HeaderStdID        = "webhook-id"
	HeaderStdTimestamp = "webhook-timestamp"
	HeaderStdSignature = "webhook-signature"
)

// ToleranceDefault is how far a Standard Webhooks timestamp may be from the verifier's clock,
// either way, when VerifyStandard is given no tolerance. It matches the stock libraries.
const ToleranceDefault = 5 * time.Minute

// StandardSecretPrefix marks a Standard Webhooks secret whose remainder is the base64 key.
const StandardSecretPrefix = "whsec_"

// Errors returned by the verify functions; test them with errors.Is.
var (
	// ErrNoSecret: there is no secret to verify with.
	ErrNoSecret = errors.New("no webhook secret configured to verify with")
	// ErrMissing: the signature header (or a required Standard Webhooks header) is empty.
	ErrMissing = errors.New("signature header missing")
	// ErrMismatch: no signature in the header matches the body.
	ErrMismatch = errors.New("no signature matches the body")
	// ErrTimestamp: the Standard Webhooks timestamp is malformed or outside the tolerance.
	ErrTimestamp = errors.New("webhook timestamp rejected")
)

// Sign returns the Pulumi-Webhook-Signature value for body: lowercase hex HMAC-SHA256 keyed
// with the secret's bytes.
func Sign(secret string, body []byte) string {
	return hex.EncodeToString(mac([]byte(secret), body))
}

// Verify checks a Pulumi-Webhook-Signature header against body. The header may hold several
// space-separated hex signatures; one match is enough. Comparison is constant time.
func Verify(secret, signature string, body []byte) error {
	if secret == "" {
		return ErrNoSecret
	}
	fields := strings.Fields(signature)
	if len(fields) == 0 {
		return fmt.Errorf("%s: %w", HeaderSignature, ErrMissing)
	}
	want := mac([]byte(secret), body)
	matched := false
	for _, f := range fields {
		got, err := hex.DecodeString(f)
		if err != nil {
			continue
		}
		// Check every candidate so the time taken does not depend on which one matched.
		if hmac.Equal(got, want) {
			matched = true
		}
	}
	if !matched {
		return fmt.Errorf("%s: %w (check the secret and that the body is verified byte for byte, before any parsing)", HeaderSignature, ErrMismatch)
	}
	return nil
}

// SignStandard returns the webhook-signature value for one attempt: "v1," followed by the
// base64 HMAC-SHA256 of id, the Unix-seconds timestamp and body joined by dots. The key is
// derived from the secret as the package comment describes.
func SignStandard(secret, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(standardMAC(secret, id, strconv.FormatInt(ts.Unix(), 10), body))
}

// VerifyStandard checks the Standard Webhooks headers of a request: timestamp (Unix seconds)
// within tolerance of now, either way (tolerance <= 0 means ToleranceDefault), and at least one
// "v1,<base64>" entry of the space-separated signature header matching. Entries with other
// versions are ignored. Comparison is constant time.
func VerifyStandard(secret, id, timestamp, signatureHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	if secret == "" {
		return ErrNoSecret
	}
	if id == "" {
		return fmt.Errorf("%s: %w", HeaderStdID, ErrMissing)
	}
	if timestamp == "" {
		return fmt.Errorf("%s: %w", HeaderStdTimestamp, ErrMissing)
	}
	if strings.TrimSpace(signatureHeader) == "" {
		return fmt.Errorf("%s: %w", HeaderStdSignature, ErrMissing)
	}
	if tolerance <= 0 {
		tolerance = ToleranceDefault
	}
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q is not a whole number of Unix seconds: %w", HeaderStdTimestamp, timestamp, ErrTimestamp)
	}
	ts := time.Unix(secs, 0)
	switch {
	case now.Sub(ts) > tolerance:
		return fmt.Errorf("%s is %s old, more than the %s tolerance (a replay, or a clock out of sync): %w",
			HeaderStdTimestamp, now.Sub(ts).Truncate(time.Second), tolerance, ErrTimestamp)
	case ts.Sub(now) > tolerance:
		return fmt.Errorf("%s is %s in the future, more than the %s tolerance (a clock out of sync): %w",
			HeaderStdTimestamp, ts.Sub(now).Truncate(time.Second), tolerance, ErrTimestamp)
	}

	want := standardMAC(secret, id, timestamp, body)
	matched := false
	for _, entry := range strings.Fields(signatureHeader) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			matched = true
		}
	}
	if !matched {
		return fmt.Errorf("%s: %w (check the secret, see the signature package comment for how the key is derived)", HeaderStdSignature, ErrMismatch)
	}
	return nil
}

// standardKey derives the Standard Webhooks HMAC key from a secret.
func standardKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, StandardSecretPrefix); ok {
		if key, err := base64.StdEncoding.DecodeString(rest); err == nil && len(key) > 0 {
			return key
		}
	}
	return []byte(secret)
}

func standardMAC(secret, id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, standardKey(secret))
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

func mac(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}
