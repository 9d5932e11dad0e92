package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// hooksGen is the state of the hooks table as two counters that triggers move in the same
// transaction as each change (migration 012: updates and deletions; 013: inserts). Equal
// generations read by two transactions saw the same hooks. ok is false on a schema without
// either counter: nothing may be kept then.
type hooksGen struct {
	changes, inserts int64
	ok               bool
}

// readHooksGen reads the hooks' generation inside qr's transaction.
func readHooksGen(ctx context.Context, qr queryer) (hooksGen, error) {
	var g hooksGen
	err := qr.QueryRowContext(ctx, `SELECT COALESCE((SELECT n FROM store_counts WHERE name = 'hooks_changes'), -1),
		COALESCE((SELECT n FROM store_counts WHERE name = 'hooks_inserts'), -1)`).Scan(&g.changes, &g.inserts)
	if err != nil {
		return g, fmt.Errorf("sqlite: read the webhooks' change counts: %w", err)
	}
	g.ok = g.changes >= 0 && g.inserts >= 0
	return g, nil
}

// candidateKey names one HookCandidates question.
type candidateKey struct {
	scope   webhook.Scope
	orgOnly bool
}

// candidateCacheHooks bounds how many hooks the cache holds in all (a hook of an organization
// is held once per scope asked about); when a new answer would pass it, the cache starts over.
const candidateCacheHooks = 200_000

// candidateCache keeps the answers of HookCandidates between emits while the hooks' generation
// (hooksGen) is the one they were read at. An emit reads the generation in its own write
// transaction, where no other process can change a hook, so a kept answer is exactly what the
// query would return there. Answers hold no secrets (HookCandidates returns none) and are
// shared: callers must not change the hooks they get.
type candidateCache struct {
	mu    sync.Mutex
	gen   hooksGen
	m     map[candidateKey][]*store.Hook
	hooks int
}

func (c *candidateCache) get(gen hooksGen, k candidateKey) ([]*store.Hook, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !gen.ok || c.gen != gen {
		c.m, c.hooks, c.gen = nil, 0, gen
		return nil, false
	}
	hs, ok := c.m[k]
	return hs, ok
}

func (c *candidateCache) put(gen hooksGen, k candidateKey, hs []*store.Hook) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !gen.ok || c.gen != gen {
		return
	}
	if c.m == nil || c.hooks+len(hs) > candidateCacheHooks {
		c.m, c.hooks = map[candidateKey][]*store.Hook{}, 0
	}
	if len(hs) > candidateCacheHooks {
		return
	}
	c.m[k] = hs
	c.hooks += len(hs)
}

// hookCandidates answers HookCandidates inside qr's write transaction, from s.candidates when
// the hooks' generation gen (read in the same transaction) is that of a kept answer.
func hookCandidates(ctx context.Context, s *Store, qr queryer, gen hooksGen, subject webhook.Scope, orgOnly bool) ([]*store.Hook, error) {
	if subject.Org == "" {
		return nil, errors.New("sqlite: hook candidates: the event subject has no organization")
	}
	orgOnly = orgOnly || subject.Kind() == webhook.ScopeOrganization
	k := candidateKey{scope: webhook.Scope{Org: subject.Org}, orgOnly: true}
	if !orgOnly {
		k = candidateKey{scope: subject}
	}
	if hs, ok := s.candidates.get(gen, k); ok {
		return hs, nil
	}
	var hs []*store.Hook
	var err error
	if orgOnly {
		hs, err = s.queryHooks(ctx, qr, hookCandidatesOrg, subject.Org)
	} else {
		hs, err = s.queryHooks(ctx, qr, hookCandidatesScoped, subject.Org, subject.Project, subject.Stack, subject.Environment)
	}
	if err != nil {
		return nil, err
	}
	s.candidates.put(gen, k, hs)
	return hs, nil
}
