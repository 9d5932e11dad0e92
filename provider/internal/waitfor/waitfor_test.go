package waitfor

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps its Fatalf message instead of ending the test, so the
// failure paths can be checked.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestConditionReturnsOnceItHolds(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	go func() {
		for range 5 {
			n.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	Condition(t, "five steps", func() bool { return n.Load() == 5 })
}

func TestNoErrorFailsWithTheLastError(t *testing.T) {
	t.Parallel()
	r := &recorder{TB: t}
	calls := 0
	noError(r, 30*time.Millisecond, func() error {
		calls++
		return fmt.Errorf("%d of 3 deliveries arrived", calls)
	})
	if calls < 2 {
		t.Errorf("the check ran %d times, want it polled until the limit", calls)
	}
	want := fmt.Sprintf("gave up after 30ms: %d of 3 deliveries arrived", calls)
	if r.fatal != want {
		t.Errorf("failure = %q, want %q", r.fatal, want)
	}
}

func TestNoErrorStopsAtTheFirstSuccess(t *testing.T) {
	t.Parallel()
	r := &recorder{TB: t}
	calls := 0
	noError(r, time.Minute, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 || r.fatal != "" {
		t.Errorf("calls %d, failure %q; want 3 calls and no failure", calls, r.fatal)
	}
}

func TestConditionNamesWhatItWaitedFor(t *testing.T) {
	t.Parallel()
	r := &recorder{TB: t}
	condition(r, 20*time.Millisecond, "the receiver", func() bool { return false })
	if r.fatal != "gave up after 20ms: still waiting for the receiver" {
		t.Errorf("failure = %q", r.fatal)
	}
}

func TestReceive(t *testing.T) {
	t.Parallel()
	ch := make(chan int, 1)
	ch <- 7
	if got := Receive(t, "a number", ch); got != 7 {
		t.Errorf("Receive = %d, want 7", got)
	}
	r := &recorder{TB: t}
	if got := receive(r, 20*time.Millisecond, "the attempt to finish", make(chan int)); got != 0 {
		t.Errorf("receive after the limit = %d, want the zero value", got)
	}
	if r.fatal != "gave up after 20ms waiting for the attempt to finish" {
		t.Errorf("failure = %q", r.fatal)
	}
}
