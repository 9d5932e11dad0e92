package store

import "bytes"

// How the deliveries of one event keep their bodies, in every backend: a body equal to the
// event's payload is read from the event, a body two or more of them have is stored once and
// referred to, and any other body is stored in the delivery's own row.
const (
	// BodyInline: the body is stored with the delivery.
	BodyInline = 0
	// BodyEventPayload: the body is the event's payload, read from the event.
	BodyEventPayload = -1
)

// ShareBodies plans where the n bodies of one event's deliveries (body(i) for i < n) are kept:
// plan[i] is BodyInline, BodyEventPayload, or k >= 1 for shared[k-1], a body two or more of
// them have, to be stored once (shared in the order the bodies first appear). An empty body is
// always inline.
func ShareBodies(payload []byte, n int, body func(i int) []byte) (plan []int, shared [][]byte) {
	plan = make([]int, n)
	count := map[string]int{}
	for i := range n {
		b := body(i)
		switch {
		case payload != nil && bytes.Equal(b, payload):
			plan[i] = BodyEventPayload
		case len(b) > 0:
			count[string(b)]++
		}
	}
	index := map[string]int{}
	for i := range n {
		b := body(i)
		if plan[i] != BodyInline || count[string(b)] < 2 {
			continue
		}
		k, ok := index[string(b)]
		if !ok {
			shared = append(shared, b)
			k = len(shared)
			index[string(b)] = k
		}
		plan[i] = k
	}
	return plan, shared
}
