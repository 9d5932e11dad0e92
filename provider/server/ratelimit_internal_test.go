package server

import (
	"fmt"
	"testing"
	"time"
)

// However many tokens call, the limiters kept stay bounded: idle buckets that are full again
// go first (losing nothing), then the least recently used.
func TestTokenLimitersBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newTokenLimiters(10, 20, 100) // refills in 2s
	for i := range 10000 {
		l.reserve(fmt.Sprintf("tok-%d", i), now)
		if l.size() > 100 {
			t.Fatalf("after %d tokens, %d limiters are kept", i+1, l.size())
		}
	}
	// A busy token keeps its state while others come and go: it is the most recently used.
	busyAt := now.Add(500 * time.Millisecond)
	for range 20 {
		if l.reserve("busy", busyAt) != 0 {
			t.Fatalf("the busy token was refused within its burst")
		}
	}
	if l.reserve("busy", busyAt) == 0 {
		t.Fatalf("the busy token's 21st request went through")
	}
	for i := range 50 {
		l.reserve(fmt.Sprintf("other-%d", i), now.Add(time.Second))
	}
	// Half a second later the bucket holds 5 requests: a fresh bucket would hold 20.
	allowed := 0
	for range 20 {
		if l.reserve("busy", now.Add(time.Second)) == 0 {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("the busy token got %d requests after half a second, want 5 (its bucket was kept)", allowed)
	}
	// Once idle past the refill time, buckets are dropped on the next eviction.
	later := now.Add(time.Minute)
	for i := range 101 {
		l.reserve(fmt.Sprintf("late-%d", i), later)
	}
	if n := l.size(); n > 100 {
		t.Errorf("%d limiters kept", n)
	}
}
