package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// seal builds a token from raw fields with a correct checksum, as no server would issue it.
func seal(version byte, kind listingKind, digest []byte, limit uint64, cursor []byte) string {
	b := append([]byte{version, byte(kind)}, digest...)
	b = binary.AppendUvarint(b, limit)
	b = append(b, cursor...)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(append(b, sum[:4]...))
}

func TestPageTokenRoundTrip(t *testing.T) {
	t.Parallel()
	stack := webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}
	hooks := listing{kind: listingHooks, scope: stack}
	log := listing{kind: listingDeliveries, scope: stack, hook: "h"}
	for _, c := range []struct {
		l listing
		t pageToken
	}{
		{hooks, pageToken{limit: 1, afterName: "a"}},
		{hooks, pageToken{limit: HookPageLimitMax, afterName: strings.Repeat("n", 300)}},
		{log, pageToken{limit: 100, before: 1}},
		{log, pageToken{limit: 1000, before: 1<<63 - 1}},
	} {
		s := c.l.encode(c.t)
		if strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Errorf("token %q is not URL-safe", s)
		}
		got, err := c.l.decode(s)
		if err != nil || got != c.t {
			t.Errorf("decode(encode(%+v)) = %+v, %v", c.t, got, err)
		}
	}
}

// TestPageTokenRefusesWhatNoServerIssues: tokens whose checksum holds but whose content no
// server issues (another version, a page size out of bounds, a cursor that cannot be) are
// refused with the fix.
func TestPageTokenRefusesWhatNoServerIssues(t *testing.T) {
	t.Parallel()
	hooks := listing{kind: listingHooks, scope: webhook.Scope{Org: "acme"}}
	log := listing{kind: listingDeliveries, scope: webhook.Scope{Org: "acme"}, hook: "h"}
	id := func(n uint64) []byte { return binary.AppendUvarint(nil, n) }
	cases := []struct {
		name string
		l    listing
		tok  string
		want string
	}{
		{"another version", hooks, seal(2, listingHooks, hooks.digest(), 10, []byte("a")), "has version 2"},
		{"an unknown kind", hooks, seal(1, 'x', hooks.digest(), 10, []byte("a")), "cut or changed"},
		{"page size zero", hooks, seal(1, listingHooks, hooks.digest(), 0, []byte("a")), "cut or changed"},
		{"page size too big", hooks, seal(1, listingHooks, hooks.digest(), HookPageLimitMax+1, []byte("a")), "cut or changed"},
		{"no hook name", hooks, seal(1, listingHooks, hooks.digest(), 10, nil), "cut or changed"},
		{"attempt zero", log, seal(1, listingDeliveries, log.digest(), 10, id(0)), "cut or changed"},
		{"attempt beyond int64", log, seal(1, listingDeliveries, log.digest(), 10, id(1<<63)), "cut or changed"},
		{"bytes after the attempt", log, seal(1, listingDeliveries, log.digest(), 10, append(id(5), 'x')), "cut or changed"},
		{"no attempt", log, seal(1, listingDeliveries, log.digest(), 10, nil), "cut or changed"},
		{"too long", hooks, strings.Repeat("A", pageTokenMaxLen+1), "cut or changed"},
		{"padded base64", hooks, hooks.encode(pageToken{limit: 1, afterName: "ab"}) + "=", "cut or changed"},
		{"too short", hooks, "AQ", "cut or changed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.l.decode(c.tok)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "leave it out to list from the first page") {
				t.Errorf("decode = %v, want an error saying %q and the fix", err, c.want)
			}
		})
	}
}
