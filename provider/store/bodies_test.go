package store

import (
	"slices"
	"testing"
)

func TestShareBodies(t *testing.T) {
	payload := []byte(`{"raw":true}`)
	bodies := [][]byte{
		[]byte(`{"raw":true}`), // the payload
		[]byte("slack"),        // shared with 4
		[]byte("teams"),        // once: inline
		nil,                    // empty: inline
		[]byte("slack"),
		[]byte("x"), // shared with 7
		{},          // empty: inline
		[]byte("x"),
	}
	plan, shared := ShareBodies(payload, len(bodies), func(i int) []byte { return bodies[i] })
	if want := []int{BodyEventPayload, 1, BodyInline, BodyInline, 1, 2, BodyInline, 2}; !slices.Equal(plan, want) {
		t.Fatalf("plan %v, want %v", plan, want)
	}
	if len(shared) != 2 || string(shared[0]) != "slack" || string(shared[1]) != "x" {
		t.Fatalf("shared %q, want slack then x", shared)
	}
}

func TestShareBodiesWithoutPayload(t *testing.T) {
	// No event payload to compare with (a body recorded alone): equal bodies still share, and
	// nothing refers to the event.
	bodies := [][]byte{nil, []byte("a"), []byte("a")}
	plan, shared := ShareBodies(nil, len(bodies), func(i int) []byte { return bodies[i] })
	if want := []int{BodyInline, 1, 1}; !slices.Equal(plan, want) || len(shared) != 1 {
		t.Fatalf("plan %v, shared %q", plan, shared)
	}
	if plan, shared := ShareBodies(nil, 0, nil); len(plan) != 0 || shared != nil {
		t.Fatalf("no deliveries: %v, %q", plan, shared)
	}
}
