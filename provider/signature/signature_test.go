package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Expected values below are computed with crypto/hmac directly or taken from published test
// vectors, never with the functions under test.

func hexHMAC(key, msg []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

func b64HMAC(key, msg []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestSignKnownVector(t *testing.T) {
	t.Parallel()
	// RFC 4231, test case 2.
	got := Sign("Jefe", []byte("what do ya want for nothing?"))
	want := "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got != want {
		t.Fatalf("Sign(RFC 4231 case 2) = %s, want %s", got, want)
	}
}

func TestSignMatchesHMAC(t *testing.T) {
	t.Parallel()
	cases := []struct{ secret, body string }{
		{"s3cr3t", `{"user":{"name":"Morty"}}`},
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", `{}`}, // the Pulumi scheme never decodes the secret
		{"ünïcödé key", ""},
		{strings.Repeat("k", 200), strings.Repeat("b", 10000)}, // key longer than the hash block
	}
	for _, c := range cases {
		got := Sign(c.secret, []byte(c.body))
		want := hexHMAC([]byte(c.secret), []byte(c.body))
		if got != want {
			t.Errorf("Sign(%d-byte secret, %d-byte body) = %s, want %s", len(c.secret), len(c.body), got, want)
		}
		if got != strings.ToLower(got) || len(got) != 64 {
			t.Errorf("Sign = %q, want 64 lowercase hex digits", got)
		}
		if err := Verify(c.secret, got, []byte(c.body)); err != nil {
			t.Errorf("Verify(Sign(...)) = %v", err)
		}
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	const secret = "pulumi-hook-secret"
	body := []byte(`{"kind":"update","result":"succeeded"}`)
	good := hexHMAC([]byte(secret), body)
	other := hexHMAC([]byte("an-older-secret"), body)

	accept := map[string]string{
		"exact":                good,
		"upper-case hex":       strings.ToUpper(good),
		"rotation, new last":   other + " " + good,
		"rotation, new first":  good + " " + other,
		"garbage beside it":    "zz-not-hex " + good,
		"surrounding spaces":   "  " + good + "  ",
		"several spaces apart": other + "   " + good,
	}
	for name, header := range accept {
		if err := Verify(secret, header, body); err != nil {
			t.Errorf("%s: Verify = %v, want nil", name, err)
		}
	}

	reject := []struct {
		name, secret, header string
		body                 []byte
		want                 error
	}{
		{"no secret", "", good, body, ErrNoSecret},
		{"empty header", secret, "", body, ErrMissing},
		{"blank header", secret, "   ", body, ErrMissing},
		{"wrong secret", secret, other, body, ErrMismatch},
		{"body changed", secret, good, append([]byte(`{"kind":"update","result":"failed"`), '}'), ErrMismatch},
		{"truncated signature", secret, good[:62], body, ErrMismatch},
		{"not hex", secret, "not-a-signature", body, ErrMismatch},
		{"sha256= prefix", secret, "sha256=" + good, body, ErrMismatch},
	}
	for _, c := range reject {
		err := Verify(c.secret, c.header, c.body)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error %q contains the secret", c.name, err)
		}
	}
}

func TestSignStandardKnownVector(t *testing.T) {
	t.Parallel()
	// The Standard Webhooks / Svix reference test vector.
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	if got := SignStandard(secret, id, ts, body); got != want {
		t.Fatalf("SignStandard(reference vector) = %s, want %s", got, want)
	}
	if err := VerifyStandard(secret, id, "1614265330", want, body, ts.Add(time.Minute), 0); err != nil {
		t.Fatalf("VerifyStandard(reference vector) = %v", err)
	}
	// Several signatures, one of another version and one wrong, as the reference tests do.
	header := "v1a,ignored v1,bm9wZQ== " + want
	if err := VerifyStandard(secret, id, "1614265330", header, body, ts, time.Minute); err != nil {
		t.Fatalf("VerifyStandard(several signatures) = %v", err)
	}
}

func TestSignStandardRawKey(t *testing.T) {
	t.Parallel()
	ts := time.Unix(1700000000, 0)
	body := []byte(`{"projectName":"website"}`)
	cases := []struct {
		name, secret string
		key          []byte
	}{
		{"plain secret uses its bytes", "plain-secret", []byte("plain-secret")},
		{"whsec_ with bad base64 uses its bytes", "whsec_not*base64!", []byte("whsec_not*base64!")},
		{"bare whsec_ uses its bytes", "whsec_", []byte("whsec_")},
		{"whsec_ with base64 uses the decoded key", "whsec_" + base64.StdEncoding.EncodeToString([]byte("decoded key bytes")), []byte("decoded key bytes")},
	}
	for _, c := range cases {
		want := "v1," + b64HMAC(c.key, []byte("delivery-1.1700000000."+string(body)))
		if got := SignStandard(c.secret, "delivery-1", ts, body); got != want {
			t.Errorf("%s: SignStandard = %s, want %s", c.name, got, want)
		}
	}
	// A receiver configures a stock verifier with whsec_ + base64(secret): same signature.
	plain := "plain-secret"
	wrapped := "whsec_" + base64.StdEncoding.EncodeToString([]byte(plain))
	if a, b := SignStandard(plain, "d", ts, body), SignStandard(wrapped, "d", ts, body); a != b {
		t.Errorf("signature with %q differs from the one with its whsec_ form: %s vs %s", plain, a, b)
	}
}

func TestVerifyStandard(t *testing.T) {
	t.Parallel()
	const secret = "std-secret-value"
	const id = "dlv_123"
	now := time.Unix(1700000000, 0)
	body := []byte(`{"stackName":"prod"}`)
	sign := func(ts int64) string {
		return "v1," + b64HMAC([]byte(secret), fmt.Appendf(nil, "%s.%d.%s", id, ts, body))
	}
	tsNow := fmt.Sprint(now.Unix())
	good := sign(now.Unix())

	accept := []struct {
		name, timestamp, header string
		tolerance               time.Duration
	}{
		{"now", tsNow, good, time.Minute},
		{"default tolerance, 4m old", fmt.Sprint(now.Unix() - 240), sign(now.Unix() - 240), 0},
		{"exactly at the tolerance, past", fmt.Sprint(now.Unix() - 60), sign(now.Unix() - 60), time.Minute},
		{"exactly at the tolerance, future", fmt.Sprint(now.Unix() + 60), sign(now.Unix() + 60), time.Minute},
		{"rotation", tsNow, "v1," + b64HMAC([]byte("old"), []byte("x")) + " " + good, time.Minute},
	}
	for _, c := range accept {
		if err := VerifyStandard(secret, id, c.timestamp, c.header, body, now, c.tolerance); err != nil {
			t.Errorf("%s: VerifyStandard = %v, want nil", c.name, err)
		}
	}

	reject := []struct {
		name, secret, id, timestamp, header string
		body                                []byte
		tolerance                           time.Duration
		want                                error
		msg                                 string
	}{
		{"no secret", "", id, tsNow, good, body, time.Minute, ErrNoSecret, ""},
		{"no id", secret, "", tsNow, good, body, time.Minute, ErrMissing, HeaderStdID},
		{"no timestamp", secret, id, "", good, body, time.Minute, ErrMissing, HeaderStdTimestamp},
		{"no signature", secret, id, tsNow, " ", body, time.Minute, ErrMissing, HeaderStdSignature},
		{"timestamp not a number", secret, id, "yesterday", good, body, time.Minute, ErrTimestamp, "Unix seconds"},
		{"timestamp in milliseconds", secret, id, fmt.Sprint(now.UnixMilli()), good, body, time.Minute, ErrTimestamp, "future"},
		{"replayed: too old", secret, id, fmt.Sprint(now.Unix() - 61), sign(now.Unix() - 61), body, time.Minute, ErrTimestamp, "old"},
		{"too old for the default", secret, id, fmt.Sprint(now.Unix() - 301), sign(now.Unix() - 301), body, 0, ErrTimestamp, "5m0s"},
		{"too far in the future", secret, id, fmt.Sprint(now.Unix() + 61), sign(now.Unix() + 61), body, time.Minute, ErrTimestamp, "future"},
		{"wrong secret", "other-secret", id, tsNow, good, body, time.Minute, ErrMismatch, ""},
		{"other delivery id", secret, "dlv_124", tsNow, good, body, time.Minute, ErrMismatch, ""},
		{"timestamp swapped", secret, id, fmt.Sprint(now.Unix() - 1), good, body, time.Minute, ErrMismatch, ""},
		{"body changed", secret, id, tsNow, good, []byte(`{"stackName":"dev"}`), time.Minute, ErrMismatch, ""},
		{"unknown version only", secret, id, tsNow, "v2," + strings.TrimPrefix(good, "v1,"), body, time.Minute, ErrMismatch, ""},
		{"no version", secret, id, tsNow, strings.TrimPrefix(good, "v1,"), body, time.Minute, ErrMismatch, ""},
		{"bad base64", secret, id, tsNow, "v1,!!!", body, time.Minute, ErrMismatch, ""},
		{"hex instead of base64", secret, id, tsNow, "v1," + hexHMAC([]byte(secret), body), body, time.Minute, ErrMismatch, ""},
	}
	for _, c := range reject {
		err := VerifyStandard(c.secret, c.id, c.timestamp, c.header, c.body, now, c.tolerance)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: VerifyStandard = %v, want %v", c.name, err, c.want)
			continue
		}
		if c.msg != "" && !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.msg)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error %q contains the secret", c.name, err)
		}
	}
}

func TestSignStandardUsesUnixSeconds(t *testing.T) {
	t.Parallel()
	// Sub-second parts of the time are dropped, as the header carries whole seconds.
	ts := time.Unix(1700000000, 999_000_000)
	body := []byte("{}")
	want := "v1," + b64HMAC([]byte("k"), []byte("id.1700000000.{}"))
	if got := SignStandard("k", "id", ts, body); got != want {
		t.Fatalf("SignStandard = %s, want %s", got, want)
	}
}
