package store

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestEncodeHeadersLikeJSON: the hand-written header encoding gives exactly json.Marshal's
// bytes, for ordinary headers and for every character json.Marshal escapes or replaces.
func TestEncodeHeadersLikeJSON(t *testing.T) {
	t.Parallel()
	cases := []map[string][]string{
		{"Content-Type": {"application/json"}, "Webhook-Signature": {"v1,abc=="}, "Accept": {"a", "b"}},
		{"X-Nil": nil, "X-Empty": {}, "X-Blank": {""}},
		{"Quote\"": {`back\slash`, "tab\there", "nl\n", "<b>&amp;</b>", "é ü 日本", "\u2028\u2029", "\x7f\x00", "bad\xffutf8"}},
	}
	alphabet := []rune("aZ09-_ \"\\<>&\t\n\x01\x7féü\u2028\U0001F600")
	r := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		n := r.IntN(8)
		out := make([]rune, n)
		for i := range out {
			out[i] = alphabet[r.IntN(len(alphabet))]
		}
		s := string(out)
		if r.IntN(10) == 0 {
			s += "\xc3" // a truncated UTF-8 sequence
		}
		return s
	}
	for range 500 {
		h := map[string][]string{}
		for range r.IntN(5) + 1 {
			vs := make([]string, r.IntN(3))
			for i := range vs {
				vs[i] = word()
			}
			h[word()] = vs
		}
		cases = append(cases, h)
	}
	for _, h := range cases {
		got, err := EncodeHeaders(h)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(h)
		if got != string(want) {
			t.Fatalf("EncodeHeaders(%q) = %s, json.Marshal gives %s", h, got, want)
		}
	}
}

func TestDecodeAttemptHeaders(t *testing.T) {
	a := &Attempt{ID: 7}
	if err := DecodeAttemptHeaders(a, `{"A":["1"]}`, `{}`); err != nil {
		t.Fatal(err)
	}
	if len(a.RequestHeaders["A"]) != 1 || a.ResponseHeaders != nil {
		t.Fatalf("headers %v / %v; want A: [1] and nil for the empty object", a.RequestHeaders, a.ResponseHeaders)
	}
	if err := DecodeAttemptHeaders(&Attempt{ID: 7}, `[`, `{}`); err == nil || !strings.Contains(err.Error(), "attempt 7: decode request headers") {
		t.Fatalf("bad request headers: %v", err)
	}
	if err := DecodeAttemptHeaders(&Attempt{ID: 7}, `{}`, `nope`); err == nil || !strings.Contains(err.Error(), "attempt 7: decode response headers") {
		t.Fatalf("bad response headers: %v", err)
	}
}
