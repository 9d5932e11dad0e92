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

// payloadCacheBytes bounds the payload bytes one generation of the payload cache holds; the
// cache keeps two.
const payloadCacheBytes = 4 << 20

// payloadCache keeps recent event payloads: those emits store and those claims read. Events are
// immutable, so an entry never goes stale. It holds two generations: when the current one is
// full it becomes the previous one and the one before is dropped, so a payload stays while
// either holds it and a full cache loses only its oldest half. Emits fill it so that the
// delivery loop does not read back the payload of an event this process just stored, even
// with a backlog of several thousand events.
type payloadCache struct {
	mu        sync.Mutex
	cur, prev map[string][]byte
	curBytes  int
}

func (c *payloadCache) get(id string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.cur[id]; ok {
		return b, true
	}
	b, ok := c.prev[id]
	return b, ok
}

func (c *payloadCache) put(id string, b []byte) {
	if len(b) > payloadCacheBytes/8 {
		return // a rare large payload would push out many others
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.curBytes+len(b) > payloadCacheBytes {
		c.prev, c.cur, c.curBytes = c.cur, make(map[string][]byte, 1024), 0
	}
	c.cur[id] = b
	c.curBytes += len(b)
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
