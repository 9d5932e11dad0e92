package sqlite

import (
	"context"
	"fmt"
	"sync"
)

// bodyCache reads shared delivery bodies once per transaction. Event payloads, which never
// change once stored, also go through the store's payloads cache, so the delivery loop's rounds
// do not read an event's payload again for every few deliveries of it.
type bodyCache struct {
	tx       queryer
	payloads *payloadCache // nil: none
	events   map[string][]byte
	shared   map[int64][]byte
}

// payloadCacheSize bounds how many event payloads a store keeps in memory.
const payloadCacheSize = 256

// payloadCache keeps recently read event payloads. Events are immutable, so an entry never goes
// stale; when full it starts over.
type payloadCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *payloadCache) get(id string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[id]
	return b, ok
}

func (c *payloadCache) put(id string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= payloadCacheSize {
		c.m = make(map[string][]byte, payloadCacheSize)
	}
	c.m[id] = b
}

// get returns the body a delivery's body_ref points to; inline is the row's own body column.
func (c *bodyCache) get(ctx context.Context, eventID string, ref int64, inline []byte) ([]byte, error) {
	switch {
	case ref == bodyInline:
		return inline, nil
	case ref == bodyEventPayload:
		if b, ok := c.events[eventID]; ok {
			return b, nil
		}
		b, ok := []byte(nil), false
		if c.payloads != nil {
			b, ok = c.payloads.get(eventID)
		}
		if !ok {
			if err := c.tx.QueryRowContext(ctx, `SELECT payload FROM events WHERE id = ?`, eventID).Scan(&b); err != nil {
				return nil, fmt.Errorf("sqlite: read the payload of event %s: %w", eventID, err)
			}
			if c.payloads != nil {
				c.payloads.put(eventID, b)
			}
		}
		if c.events == nil {
			c.events = map[string][]byte{}
		}
		c.events[eventID] = b
		return b, nil
	default:
		if b, ok := c.shared[ref]; ok {
			return b, nil
		}
		var b []byte
		if err := c.tx.QueryRowContext(ctx, `SELECT body FROM delivery_bodies WHERE id = ?`, ref).Scan(&b); err != nil {
			return nil, fmt.Errorf("sqlite: read shared body %d: %w", ref, err)
		}
		if c.shared == nil {
			c.shared = map[int64][]byte{}
		}
		c.shared[ref] = b
		return b, nil
	}
}
