// Package fairclaim is the one home of how a claim shares out due deliveries, for every store
// backend: how many candidates a claim reads (FirstLook, Window), the fair pick over them
// (Picker), the order a claim returns its deliveries in (Sort), and what a direct claim
// (store.EmitClaimer) may take of an emit's deliveries and returns (EmitCandidates,
// NewDirectPicker, Claimed). The backends read the candidates with their own SQL and hand them
// over here.
package fairclaim

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Unlimited stands for "no cap" when PerEndpointLimit or PerOrgLimit is zero.
const Unlimited = 1 << 40

// Window is how many rows of each class (first attempts, retries, expired leases) a claim
// considers when its first look falls short: enough to fill the limit even when some
// endpoints take only part of their share.
func Window(limit int, perEndpoint int64) int64 {
	n := int64(limit) * min(perEndpoint, 16)
	return min(max(n, 64), 4096)
}

// FirstLook is how many rows of each class a claim reads first. It is enough whenever the due
// deliveries' endpoints have room; only when endpoints near their cap crowd the window does the
// claim read again, further (Window).
func FirstLook(limit int) int64 { return int64(max(2*limit, 16)) }

// Candidate is a due delivery a claim may take. ID is the backend's row key (never 0), Next
// its due time in unix nanoseconds.
type Candidate struct {
	ID       int64
	Endpoint string
	Org      string
	Next     int64
}

// Picker picks the deliveries of one claim, over one or more looks at the candidates.
//
// The picks are fair three ways. First attempts and "again" work (retries and expired leases)
// take turns slot by slot, and the turn carries over to the next claim, so a flood of first
// attempts cannot starve a due retry nor a storm of retries the new work: each gets every
// other slot while both are due, and all of them when the other has none. Within the class
// whose turn it is, the candidate whose organization, then endpoint, has the fewest deliveries
// running (counting the picks so far) goes first, then the earliest due, then the oldest: the
// slots go round-robin across the organizations and endpoints read instead of to whoever has
// the oldest backlog. And no endpoint passes capN running nor organization orgCap.
type Picker struct {
	limit        int
	capN, orgCap int64
	// turn counts the slots handed out, across claims: odd slots prefer retries and expired
	// leases, even ones first attempts.
	turn *atomic.Uint64
	// held counts running deliveries per endpoint (any worker) and orgHeld per organization
	// (this worker), picks included.
	held, orgHeld map[string]int64
	picked        []Candidate
	taken         map[int64]bool
}

// NewPicker returns a picker of up to limit deliveries, no endpoint above capN running and no
// organization above orgCap; turn is the store's slot counter, shared by its claims.
func NewPicker(limit int, capN, orgCap int64, turn *atomic.Uint64) *Picker {
	return &Picker{limit: limit, capN: capN, orgCap: orgCap, turn: turn,
		held: map[string]int64{}, orgHeld: map[string]int64{},
		picked: make([]Candidate, 0, limit), taken: map[int64]bool{}}
}

// Hold counts n deliveries running at endpoint for org; mine says they run under this claim's
// worker, the only ones that count towards the organization's cap.
func (p *Picker) Hold(endpoint, org string, mine bool, n int64) {
	p.held[endpoint] += n
	if mine {
		p.orgHeld[org] += n
	}
}

// Taken reports whether an earlier look already picked the candidate with this ID.
func (p *Picker) Taken(id int64) bool { return p.taken[id] }

// Full reports whether the claim has its limit.
func (p *Picker) Full() bool { return len(p.picked) >= p.limit }

// Picked returns the picks so far, in the order they were taken.
func (p *Picker) Picked() []Candidate { return p.picked }

// Capped returns the endpoints and the organizations at their cap, each sorted (so that equal
// sets compare equal).
func (p *Picker) Capped() (endpoints, orgs []string) {
	atCap := func(m map[string]int64, limit int64) []string {
		names := []string{}
		for name, n := range m {
			if n >= limit {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		return names
	}
	return atCap(p.held, p.capN), atCap(p.orgHeld, p.orgCap)
}

// Pick picks from one look's first attempts and again work until the claim is full or no
// candidate fits. Candidates taken by an earlier look must be left out (Taken); Pick marks the
// ones it takes in first and again by setting their ID to 0.
func (p *Picker) Pick(first, again []Candidate) {
	for len(p.picked) < p.limit {
		classes := [2][]Candidate{first, again}
		if p.turn.Load()%2 == 1 {
			classes[0], classes[1] = again, first
		}
		cs, i := classes[0], p.best(classes[0])
		if i < 0 {
			cs, i = classes[1], p.best(classes[1])
		}
		if i < 0 {
			return
		}
		p.turn.Add(1)
		cc := &cs[i]
		p.held[cc.Endpoint]++
		p.orgHeld[cc.Org]++
		p.picked = append(p.picked, *cc)
		p.taken[cc.ID] = true
		cc.ID = 0 // taken
	}
}

// best returns the index in cs of the candidate to take next, or -1 when none fits.
func (p *Picker) best(cs []Candidate) int {
	held, orgHeld := p.held, p.orgHeld
	b := -1
	for i := range cs {
		cc := &cs[i]
		if cc.ID == 0 || held[cc.Endpoint] >= p.capN || orgHeld[cc.Org] >= p.orgCap {
			continue
		}
		if b < 0 {
			b = i
			continue
		}
		bb := &cs[b]
		switch {
		case orgHeld[cc.Org] != orgHeld[bb.Org]:
			if orgHeld[cc.Org] < orgHeld[bb.Org] {
				b = i
			}
		case held[cc.Endpoint] != held[bb.Endpoint]:
			if held[cc.Endpoint] < held[bb.Endpoint] {
				b = i
			}
		case cc.Next != bb.Next:
			if cc.Next < bb.Next {
				b = i
			}
		case cc.ID < bb.ID:
			b = i
		}
	}
	return b
}

// Sort puts a claim's first attempts ahead of its retries, then orders by due time and
// creation.
func Sort(out []*store.ClaimedDelivery) {
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := out[i].Attempts > 1, out[j].Attempts > 1
		if ri != rj {
			return !ri
		}
		if !out[i].NextAttemptAt.Equal(out[j].NextAttemptAt) {
			return out[i].NextAttemptAt.Before(out[j].NextAttemptAt)
		}
		return out[i].CreatedAt.Before(out[j].CreatedAt)
	})
}

// Caps returns a claim's per-endpoint and per-organization caps, Unlimited for 0.
func Caps(p store.DeliveryClaimParams) (capN, orgCap int64) {
	capN, orgCap = int64(p.PerEndpointLimit), int64(p.PerOrgLimit)
	if capN == 0 {
		capN = Unlimited
	}
	if orgCap == 0 {
		orgCap = Unlimited
	}
	return capN, orgCap
}

// Direct claims (store.EmitClaimer): an emit's own deliveries, stored already claimed.

// EmitCandidates returns the deliveries of one emit of org that a direct claim may take: the
// pending ones due at claimNow, each with ID its index in ds plus one. now is the emit's time
// (unix nanoseconds), the due time of a delivery that names none.
func EmitCandidates(ds []store.DeliveryInsertParams, org string, now, claimNow int64) []Candidate {
	cands := make([]Candidate, 0, len(ds))
	for i := range ds {
		d := &ds[i]
		next := store.UnixNanos(d.NextAttemptAt)
		if next == 0 {
			next = now
		}
		if (d.State != "" && d.State != store.DeliveryPending) || next > claimNow {
			continue
		}
		cands = append(cands, Candidate{ID: int64(i) + 1, Endpoint: d.Endpoint, Org: org, Next: next})
	}
	return cands
}

// NewDirectPicker returns the picker of a direct claim p. Its candidates are all first
// attempts, so it keeps a turn of its own: the store's claims' turn is not this one's.
func NewDirectPicker(p store.DeliveryClaimParams) *Picker {
	capN, orgCap := Caps(p)
	return NewPicker(p.Limit, capN, orgCap, new(atomic.Uint64))
}

// Claimed returns delivery d of event eventID, stored at now claimed by p.Worker, as a claim
// returns it, less its hook's URL, secret and active flag.
func Claimed(d *store.DeliveryInsertParams, eventID string, filter webhook.Filter, kind webhook.Kind, now time.Time, p store.DeliveryClaimParams) *store.ClaimedDelivery {
	format := d.Format
	if format == "" {
		format = webhook.FormatDefault
	}
	next := d.NextAttemptAt
	if next.IsZero() {
		next = now
	}
	body := d.Body
	if body == nil {
		body = []byte{}
	}
	return &store.ClaimedDelivery{Delivery: store.Delivery{
		ID: d.ID, EventID: eventID, HookID: d.HookID, Filter: filter, Kind: kind, Format: format, Body: body, Endpoint: d.Endpoint,
		State: store.DeliveryRunning, Attempts: 1, NextAttemptAt: store.FromUnixNanos(store.UnixNanos(next)),
		LeaseUntil: store.FromUnixNanos(store.UnixNanos(p.Now) + p.Lease.Nanoseconds()), ClaimedBy: p.Worker,
		CreatedAt: store.FromUnixNanos(store.UnixNanos(now)), UpdatedAt: store.FromUnixNanos(store.UnixNanos(now)),
	}}
}
