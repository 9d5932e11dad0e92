package storetest

import (
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// API tokens: stored by hash, read by hash or ID, listed, revoked.

// runTokens runs the token tests.
func runTokens(t *testing.T, open Opener) {
	runTests(t, open, []storeTest{
		{"Tokens", testTokens},
	})
}

func testTokens(t *testing.T, b *testBundle) {
	t1 := &store.Token{Org: "acme", Description: "ci", Hash: sha("token-1"), CreatedAt: T0}
	if err := b.st.TokenCreate(b.ctx, t1); err != nil {
		t.Fatal(err)
	}
	if t1.ID == "" {
		t.Fatal("TokenCreate did not set the ID")
	}
	t2 := &store.Token{ID: "tok-2", Org: "globex", Hash: sha("token-2"), CreatedAt: T0.Add(time.Second)}
	if err := b.st.TokenCreate(b.ctx, t2); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "TokenCreate with a taken ID", b.st.TokenCreate(b.ctx, &store.Token{ID: "tok-2", Org: "acme", Hash: sha("x"), CreatedAt: T0}), store.ErrAlreadyExists)
	wantErr(t, "TokenCreate with a taken hash", b.st.TokenCreate(b.ctx, &store.Token{Org: "acme", Hash: sha("token-1"), CreatedAt: T0}), store.ErrAlreadyExists)
	if err := b.st.TokenCreate(b.ctx, &store.Token{Org: "acme"}); err == nil {
		t.Fatal("TokenCreate without a hash succeeded")
	}
	got, err := b.st.TokenGetByHash(b.ctx, sha("token-1"))
	if err != nil || got.ID != t1.ID || got.Org != "acme" || got.Description != "ci" || !got.CreatedAt.Equal(T0) || !got.RevokedAt.IsZero() || !got.LastUsedAt.IsZero() {
		t.Fatalf("TokenGetByHash = %+v, %v", got, err)
	}
	_, err = b.st.TokenGetByHash(b.ctx, sha("unknown"))
	wantErr(t, "TokenGetByHash", err, store.ErrNotFound)
	byID, err := b.st.TokenGet(b.ctx, t1.ID)
	if err != nil || *byID != *got {
		t.Fatalf("TokenGet = %+v, %v; want %+v", byID, err, got)
	}
	_, err = b.st.TokenGet(b.ctx, "nope")
	wantErr(t, "TokenGet", err, store.ErrNotFound)
	acme, err := b.st.TokenList(b.ctx, "acme")
	if err != nil || len(acme) != 1 || acme[0].ID != t1.ID {
		t.Fatalf("TokenList(acme) = %v, %v", acme, err)
	}
	all, err := b.st.TokenList(b.ctx, "")
	if err != nil || len(all) != 2 {
		t.Fatalf("TokenList() = %d, %v", len(all), err)
	}
	used := T0.Add(time.Minute)
	if err := b.st.TokenTouch(b.ctx, t1.ID, used); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "TokenTouch", b.st.TokenTouch(b.ctx, "nope", used), store.ErrNotFound)
	revoked := T0.Add(time.Hour)
	if err := b.st.TokenRevoke(b.ctx, t1.ID, revoked); err != nil {
		t.Fatal(err)
	}
	if err := b.st.TokenRevoke(b.ctx, t1.ID, revoked.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ = b.st.TokenGetByHash(b.ctx, sha("token-1"))
	if !got.RevokedAt.Equal(revoked) || !got.LastUsedAt.Equal(used) {
		t.Fatalf("revoked token = %+v", got)
	}
	// A session's token is loaded by ID on each request: the revocation shows there too.
	if byID, err = b.st.TokenGet(b.ctx, t1.ID); err != nil || !byID.RevokedAt.Equal(revoked) {
		t.Fatalf("TokenGet of a revoked token = %+v, %v", byID, err)
	}
	wantErr(t, "TokenRevoke", b.st.TokenRevoke(b.ctx, "nope", revoked), store.ErrNotFound)
}
