// Package waitfor is how tests wait for something that happens in the background: a delivery
// arriving, a queue draining, a child process getting ready. They poll a condition, or receive
// from a channel, until it holds. Every wait shares one generous limit: a passing test waits
// only as long as the thing takes, and the limit only decides how long a broken test hangs
// before it fails. It is sized for a loaded 2-core machine running the race detector, never
// for how fast the thing usually is, so a slow machine cannot fail a correct test.
//
// The functions fail the test with t.Fatalf, so call them from the test's own goroutine.
package waitfor

import (
	"fmt"
	"testing"
	"time"
)

// Limit is how long any wait lasts before the test fails.
const Limit = 2 * time.Minute

// pollMax is the longest pause between two checks of a condition; the first checks come
// quicker, so a fast condition costs little latency.
const pollMax = 20 * time.Millisecond

// Condition polls cond until it returns true, and fails t after Limit, saying it was waiting
// for what.
func Condition(t testing.TB, what string, cond func() bool) {
	t.Helper()
	condition(t, Limit, what, cond)
}

func condition(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	noError(t, limit, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("still waiting for %s", what)
	})
}

// NoError polls check until it returns nil, and fails t after Limit with the last error it
// returned: the error says how far from done things were.
func NoError(t testing.TB, check func() error) {
	t.Helper()
	noError(t, Limit, check)
}

func noError(t testing.TB, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	pause := time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s: %v", limit, err)
			return
		}
		time.Sleep(pause)
		pause = min(2*pause, pollMax)
	}
}

// Receive returns the next value from ch, and fails t after Limit, saying it was waiting for
// what. A closed channel yields its zero value at once.
func Receive[V any](t testing.TB, what string, ch <-chan V) V {
	t.Helper()
	return receive(t, Limit, what, ch)
}

func receive[V any](t testing.TB, limit time.Duration, what string, ch <-chan V) V {
	t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("gave up after %s waiting for %s", limit, what)
		var zero V
		return zero
	}
}
