package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// Web console sessions: stored by the hash of their ID, live until they expire or are
// deleted, pruned by later sign-ins, capped per token. testSessionsAcrossStores (cluster.go)
// checks that two handles on one database see each other's sessions.

// runSessions runs the session tests.
func runSessions(t *testing.T, open Opener) {
	runTests(t, open, []storeTest{
		{"Sessions", testSessions},
		{"SessionsExpire", testSessionsExpire},
		{"SessionsPerTokenCap", testSessionsPerTokenCap},
		{"SessionCreateRefusals", testSessionCreateRefusals},
	})
}

// newSession returns the session with ID id (a stand-in for the cookie's random ID) of token,
// created at at, for a ttl.
func newSession(id, token string, at time.Time, ttl time.Duration) store.Session {
	return store.Session{IDHash: store.HashSessionID(id), TokenID: token, CSRF: "csrf-" + id, CreatedAt: at, ExpiresAt: at.Add(ttl)}
}

func createSession(t *testing.T, b *testBundle, s store.Session, perToken int, now time.Time) {
	t.Helper()
	if err := b.st.SessionCreate(b.ctx, store.SessionCreateParams{Session: s, PerTokenLimit: perToken, Now: now}); err != nil {
		t.Fatalf("SessionCreate: %v", err)
	}
}

// sessionLive reports whether the session with ID id is returned at now, failing on errors
// other than ErrNotFound.
func sessionLive(t *testing.T, b *testBundle, id string, now time.Time) bool {
	t.Helper()
	_, err := b.st.SessionGet(b.ctx, store.SessionGetParams{IDHash: store.HashSessionID(id), Now: now})
	if err != nil {
		wantErr(t, "SessionGet", err, store.ErrNotFound)
		return false
	}
	return true
}

func testSessions(t *testing.T, b *testBundle) {
	s := newSession("sid-1", "tok-1", T0, time.Hour)
	createSession(t, b, s, 0, T0)
	got, err := b.st.SessionGet(b.ctx, store.SessionGetParams{IDHash: s.IDHash, Now: T0.Add(time.Minute)})
	if err != nil {
		t.Fatalf("SessionGet: %v", err)
	}
	if !(got.IDHash == s.IDHash && got.TokenID == s.TokenID && got.CSRF == s.CSRF && got.CreatedAt.Equal(s.CreatedAt) && got.ExpiresAt.Equal(s.ExpiresAt)) {
		t.Fatalf("SessionGet = %+v, want %+v", got, s)
	}
	wantErr(t, "SessionCreate with a taken IDHash",
		b.st.SessionCreate(b.ctx, store.SessionCreateParams{Session: newSession("sid-1", "tok-2", T0, time.Hour), Now: T0}), store.ErrAlreadyExists)
	// Only the hash finds it: the ID itself is not a key.
	_, err = b.st.SessionGet(b.ctx, store.SessionGetParams{IDHash: "sid-1", Now: T0})
	wantErr(t, "SessionGet by the ID instead of its hash", err, store.ErrNotFound)
	_, err = b.st.SessionGet(b.ctx, store.SessionGetParams{IDHash: store.HashSessionID("unknown"), Now: T0})
	wantErr(t, "SessionGet of an unknown session", err, store.ErrNotFound)

	other := newSession("sid-2", "tok-1", T0, time.Hour)
	createSession(t, b, other, 0, T0)
	if err := b.st.SessionDelete(b.ctx, s.IDHash); err != nil {
		t.Fatalf("SessionDelete: %v", err)
	}
	if sessionLive(t, b, "sid-1", T0) {
		t.Fatal("a deleted session is still returned")
	}
	if !sessionLive(t, b, "sid-2", T0) {
		t.Fatal("deleting one session ended another of the same token")
	}
	// Signing out twice, or out of a session that never was, is not an error.
	if err := b.st.SessionDelete(b.ctx, s.IDHash); err != nil {
		t.Fatalf("SessionDelete of a deleted session: %v", err)
	}
	if err := b.st.SessionDelete(b.ctx, store.HashSessionID("never")); err != nil {
		t.Fatalf("SessionDelete of an unknown session: %v", err)
	}
}

// testSessionsExpire: a session is returned until its ExpiresAt, not from then on, and a later
// sign-in deletes it (asking for it at a time before its expiry finds nothing).
func testSessionsExpire(t *testing.T, b *testBundle) {
	createSession(t, b, newSession("old", "tok-1", T0, time.Hour), 0, T0)
	createSession(t, b, newSession("long", "tok-1", T0, 3*time.Hour), 0, T0)
	end := T0.Add(time.Hour)
	if !sessionLive(t, b, "old", end.Add(-time.Nanosecond)) {
		t.Fatal("a session was not returned just before it expires")
	}
	if sessionLive(t, b, "old", end) {
		t.Fatal("a session was returned at its expiry")
	}
	// Not yet pruned: only a sign-in after its expiry deletes it.
	if !sessionLive(t, b, "old", T0) {
		t.Fatal("an expired session was deleted before any sign-in")
	}
	createSession(t, b, newSession("new", "tok-2", end, time.Hour), 0, end)
	if sessionLive(t, b, "old", T0) {
		t.Fatal("a sign-in after a session expired did not delete it")
	}
	if !sessionLive(t, b, "long", end) || !sessionLive(t, b, "new", end) {
		t.Fatal("a sign-in deleted live sessions")
	}
}

// testSessionsPerTokenCap: a token's sessions beyond the cap go, oldest first; other tokens'
// sessions stay.
func testSessionsPerTokenCap(t *testing.T, b *testBundle) {
	createSession(t, b, newSession("other", "tok-2", T0, time.Hour), 2, T0)
	for i, id := range []string{"a", "b", "c"} {
		at := T0.Add(time.Duration(i+1) * time.Second)
		createSession(t, b, newSession(id, "tok-1", at, time.Hour), 2, at)
	}
	now := T0.Add(time.Minute)
	if sessionLive(t, b, "a", now) {
		t.Error("the token's oldest session survived its third sign-in under a cap of 2")
	}
	for _, id := range []string{"b", "c", "other"} {
		if !sessionLive(t, b, id, now) {
			t.Errorf("session %s was deleted", id)
		}
	}
	// Without a cap the token keeps them all.
	createSession(t, b, newSession("d", "tok-1", now, time.Hour), 0, now)
	for _, id := range []string{"b", "c", "d"} {
		if !sessionLive(t, b, id, now) {
			t.Errorf("session %s was deleted without a cap", id)
		}
	}
}

// testSessionCreateRefusals: each invalid field is refused by name, with nothing stored; a
// session ID passed where its hash belongs is refused rather than stored.
func testSessionCreateRefusals(t *testing.T, b *testBundle) {
	ok := store.SessionCreateParams{Session: newSession("sid", "tok-1", T0, time.Hour), Now: T0}
	for _, tc := range []struct {
		name string
		edit func(p *store.SessionCreateParams)
		want string
	}{
		{"plain ID", func(p *store.SessionCreateParams) { p.Session.IDHash = "sid" }, "Session.IDHash is not a hex SHA-256"},
		{"no token", func(p *store.SessionCreateParams) { p.Session.TokenID = "" }, "Session.TokenID is required"},
		{"no CSRF", func(p *store.SessionCreateParams) { p.Session.CSRF = "" }, "Session.CSRF is required"},
		{"no lifetime", func(p *store.SessionCreateParams) { p.Session.ExpiresAt = p.Session.CreatedAt }, "Session.ExpiresAt"},
		{"negative cap", func(p *store.SessionCreateParams) { p.PerTokenLimit = -1 }, "PerTokenLimit is -1"},
		{"no time", func(p *store.SessionCreateParams) { p.Now = time.Time{} }, "Now is zero"},
	} {
		p := ok
		tc.edit(&p)
		if err := b.st.SessionCreate(b.ctx, p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if sessionLive(t, b, "sid", T0) {
		t.Fatal("a refused session was stored")
	}
}
