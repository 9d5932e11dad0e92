package sqlite

import (
	"fmt"
	"testing"
)

// TestPayloadCacheKeepsTwoGenerations: the payload cache holds at most two generations of
// payloadCacheBytes; a payload stays while either holds it, the oldest generation is dropped
// whole, and a payload larger than an eighth of a generation is not kept.
func TestPayloadCacheKeepsTwoGenerations(t *testing.T) {
	t.Parallel()
	var c payloadCache
	body := make([]byte, 1024)
	perGen := payloadCacheBytes / len(body)
	for i := range 2 * perGen {
		c.put(fmt.Sprint(i), body)
	}
	if _, ok := c.get("0"); !ok {
		t.Fatal("the first payload is gone after two generations' worth; want it kept in the previous one")
	}
	c.put("next", body)
	if _, ok := c.get("0"); ok {
		t.Fatal("the first payload is still there after a third generation began; want the oldest dropped")
	}
	if _, ok := c.get(fmt.Sprint(2*perGen - 1)); !ok {
		t.Fatal("the newest payload of the full generation is gone")
	}
	c.put("large", make([]byte, payloadCacheBytes/8+1))
	if _, ok := c.get("large"); ok {
		t.Fatal("a payload over an eighth of a generation was kept")
	}
	held := 0
	for _, m := range []map[string][]byte{c.cur, c.prev} {
		for _, b := range m {
			held += len(b)
		}
	}
	if held > 2*payloadCacheBytes {
		t.Fatalf("the cache holds %d bytes, want at most %d", held, 2*payloadCacheBytes)
	}
}
