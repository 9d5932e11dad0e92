package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// KeyedOpener opens a fresh, empty store sealing secrets with key (32 bytes); the suite
// closes it.
type KeyedOpener func(t *testing.T, key []byte) store.Store

// Secrets Populate stores, to check that they survive a transfer.
const (
	PopulatedHookSecret     = "s3cr3t-of-the-org-hook"
	PopulatedSettingsSecret = "s3cr3t-deploy-token"
	PopulatedSettingsPath   = "operationContext.environmentVariables.TOKEN"
)

// Populated names what Populate stored.
type Populated struct {
	// OrgHook has a secret; StackHook has none; EnvHook was disabled by the engine.
	OrgHook, StackHook, EnvHook *store.Hook
	Token                       *store.Token
	// Pending and Running count the deliveries left in those states.
	Pending, Running int
	Stack            webhook.Scope
}

// Populate stores records of every kind a store holds, in every state that matters to a copy:
// hooks with and without a secret and one disabled, tokens (one revoked), events with their
// deliveries pending, running (claimed by worker "populate" with a lease ending at now+1h),
// succeeded, failed and retrying, their attempts and a ping, a deployment request, deployments
// (one accepted by a runner), deployment settings with a secret, a drift schedule, watch
// cursors (when st keeps them) and an idempotency key. now is the time of every record; the
// hooks' payload URLs are under url (http://127.0.0.1:PORT).
func Populate(t testing.TB, st store.Store, now time.Time, url string) Populated {
	t.Helper()
	ctx := context.Background()
	fail := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("populate: %s: %v", what, err)
		}
	}
	var p Populated
	endpoint := strings.TrimPrefix(url, "http://")
	p.Stack = webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}
	var err error
	p.OrgHook, err = st.HookCreate(ctx, store.HookCreateParams{Now: now, Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"},
		Name: "org-hook", DisplayName: "Org", PayloadURL: url + "/org", Active: true, Format: webhook.FormatRaw,
		Filters: []webhook.Filter{webhook.StackCreated, webhook.UpdateSucceeded}, Secret: PopulatedHookSecret}})
	fail("org hook", err)
	p.StackHook, err = st.HookCreate(ctx, store.HookCreateParams{Now: now, Spec: webhook.Spec{Scope: p.Stack,
		Name: "stack-hook", DisplayName: "Stack", PayloadURL: url + "/stack", Active: true, Format: webhook.FormatSlack,
		Groups: []webhook.Group{webhook.GroupStacks}}})
	fail("stack hook", err)
	p.EnvHook, err = st.HookCreate(ctx, store.HookCreateParams{Now: now, Spec: webhook.Spec{
		Scope: webhook.Scope{Org: "acme", Project: "cfg", Environment: "dev"}, Name: "env-hook", PayloadURL: url + "/env",
		Active: true, Format: webhook.FormatRaw, Secret: "another-secret"}})
	fail("env hook", err)
	fail("disable", st.HookDisable(ctx, store.HookDisableParams{ID: p.EnvHook.ID, Reason: "the endpoint answered 410 Gone", Now: now}))
	if p.EnvHook, err = st.HookGetByID(ctx, p.EnvHook.ID); err != nil {
		fail("env hook", err)
	}

	p.Token = &store.Token{Org: "acme", Description: "ci", Hash: "hash-of-the-ci-token", CreatedAt: now}
	fail("token", st.TokenCreate(ctx, p.Token))
	fail("touch", st.TokenTouch(ctx, p.Token.ID, now.Add(time.Minute)))
	revoked := &store.Token{Org: "acme", Description: "old", Hash: "hash-of-an-old-token", CreatedAt: now}
	fail("token", st.TokenCreate(ctx, revoked))
	fail("revoke", st.TokenRevoke(ctx, revoked.ID, now))

	// Four events, each to the org and stack hooks: 8 deliveries; the first also asks for a
	// deployment, the last carries an idempotency key.
	for i := range 4 {
		err := st.EventEmit(ctx, func(tx store.EmitTx) error {
			ev := &store.Event{Filter: webhook.UpdateSucceeded, Subject: p.Stack, Payload: []byte(`{"n":` + string(rune('0'+i)) + `}`),
				Cause: []string{"acme/web/prod"}, CreatedAt: now}
			if err := tx.EventInsert(ctx, ev); err != nil {
				return err
			}
			ds := []store.DeliveryInsertParams{
				{HookID: p.OrgHook.ID, Format: webhook.FormatRaw, Body: []byte(`{"shared":true}`), Endpoint: endpoint, State: store.DeliveryPending, NextAttemptAt: now},
				{HookID: p.StackHook.ID, Format: webhook.FormatSlack, Body: []byte(`{"shared":true}`), Endpoint: endpoint, State: store.DeliveryPending, NextAttemptAt: now},
			}
			if err := tx.DeliveryInsertMany(ctx, ev.ID, now, ds); err != nil {
				return err
			}
			if i == 0 {
				if err := tx.DeploymentRequestInsert(ctx, &store.DeploymentRequest{Target: webhook.Scope{Org: "acme", Project: "web", Stack: "next"},
					HookID: p.StackHook.ID, EventID: ev.ID, Cause: []string{"acme/web/prod", "acme/web/next"}, Status: "queued", CreatedAt: now}); err != nil {
					return err
				}
				for _, op := range []string{"update", "refresh"} {
					if err := tx.DeploymentInsert(ctx, &store.Deployment{Stack: p.Stack, Operation: op, Source: "api",
						Cause: []string{"acme/web/prod"}, CreatedAt: now}); err != nil {
						return err
					}
				}
			}
			if i == 3 {
				return tx.IdempotencyPut(ctx, "acme", "build-4711", []byte(`{"eventId":"`+ev.ID+`"}`), now)
			}
			return nil
		})
		fail("emit", err)
	}
	// Claim 4: one succeeds, one fails for good, one is retried later, one stays running.
	claimed, err := st.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "populate", Now: now, Lease: time.Hour, Limit: 4})
	fail("claim", err)
	if len(claimed) != 4 {
		t.Fatalf("populate: claimed %d deliveries, want 4", len(claimed))
	}
	rec := func(d *store.ClaimedDelivery, code int, errText string) store.Attempt {
		return store.Attempt{DeliveryID: d.ID, HookID: d.HookID, Number: d.Attempts, Filter: d.Filter, Kind: d.Kind,
			StartedAt: now, Duration: 12 * time.Millisecond, RequestURL: d.URL, RequestHeaders: map[string][]string{"Content-Type": {"application/json"}},
			RequestBody: d.Body, ResponseCode: code, ResponseHeaders: map[string][]string{"X-Seen": {"1"}}, ResponseBody: []byte("answer"), Error: errText}
	}
	errs := st.DeliveryCompleteMany(ctx, []store.DeliveryCompleteParams{
		{ID: claimed[0].ID, Worker: "populate", Attempt: claimed[0].Attempts, State: store.DeliverySucceeded, Record: rec(claimed[0], 200, ""), Now: now},
		{ID: claimed[1].ID, Worker: "populate", Attempt: claimed[1].Attempts, State: store.DeliveryFailed, Record: rec(claimed[1], 400, ""), Now: now},
		{ID: claimed[2].ID, Worker: "populate", Attempt: claimed[2].Attempts, State: store.DeliveryPending, NextAttemptAt: now.Add(time.Minute),
			Record: rec(claimed[2], 0, "connection refused"), Now: now},
	})
	fail("complete", errors.Join(errs...))
	p.Pending, p.Running = 4+1, 1

	// A ping: its own event, a succeeded delivery and an attempt.
	ping := &store.Event{Filter: webhook.Ping, Kind: webhook.KindPing, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{"ping":1}`), CreatedAt: now}
	_, err = st.AttemptRecord(ctx, store.AttemptRecordParams{Event: ping,
		Delivery: &store.DeliveryInsertParams{HookID: p.OrgHook.ID, Format: webhook.FormatRaw, Body: []byte(`{"ping":1}`), Endpoint: endpoint},
		Record: store.Attempt{HookID: p.OrgHook.ID, Number: 1, Filter: webhook.Ping, Kind: webhook.KindPing, StartedAt: now,
			RequestURL: url + "/org", RequestBody: []byte(`{"ping":1}`), ResponseCode: 204}, Now: now})
	fail("ping", err)

	// Deployments: the update is accepted by a runner; the refresh waits.
	if _, err := st.DeploymentClaim(ctx, store.DeploymentClaimParams{Worker: "populate-runner", Now: now, Limit: 1}); err != nil {
		fail("deployment claim", err)
	}
	_, err = st.DeploymentSettingsPut(ctx, store.DeploymentSettingsPutParams{Stack: p.Stack,
		Settings: []byte(`{"sourceContext":{"local":{"path":"/src"}}}`), Secrets: map[string]string{PopulatedSettingsPath: PopulatedSettingsSecret}, Now: now})
	fail("settings", err)
	fail("drift schedule", st.DriftScheduleCreate(ctx, &store.DriftSchedule{Stack: p.Stack, ScheduleCron: "0 */6 * * *",
		AutoRemediate: true, NextRunAt: now.Add(6 * time.Hour), CreatedAt: now}))
	if wc, ok := st.(store.WatchCursors); ok {
		fail("watch cursor", wc.WatchCursorPresence(ctx, store.WatchCursorPresenceParams{Backend: "file:///state", Stack: "", Present: true, Now: now}))
		fail("watch cursor", wc.WatchCursorPresence(ctx, store.WatchCursorPresenceParams{Backend: "file:///state", Stack: "web/prod", Present: true, Now: now}))
		fail("watch cursor", wc.WatchCursorAdvance(ctx, store.WatchCursorAdvanceParams{Backend: "file:///state", Stack: "web/prod",
			Nanos: now.UnixNano(), Key: ".pulumi/history/web/prod/prod-1.history.json", Now: now}))
	}
	return p
}

// Copy exports from into to in batches of batchSize and returns what the imports wrote.
func Copy(ctx context.Context, from, to store.Transfer, batchSize int) (store.TransferImportResult, error) {
	var total store.TransferImportResult
	check, err := from.TransferKeyCheck(ctx)
	if err != nil {
		return total, err
	}
	err = from.TransferExport(ctx, store.TransferExportParams{BatchSize: batchSize}, func(b *store.TransferBatch) error {
		res, err := to.TransferImport(ctx, store.TransferImportParams{KeyCheck: check, Batch: b})
		total.Inserted = total.Inserted.Add(res.Inserted)
		total.Existing = total.Existing.Add(res.Existing)
		return err
	})
	return total, err
}

// RunTransfer runs the transfer conformance tests (store.Transfer): a store with records of
// every kind copied into an empty one holds the same records and behaves the same; a copy run
// again writes nothing; a store with another key refuses the records.
func RunTransfer(t *testing.T, open KeyedOpener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open KeyedOpener)
	}{
		{"TransferCopy", testTransferCopy},
		{"TransferAgain", testTransferAgain},
		{"TransferKeyMismatch", testTransferKeyMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
}

func transferOf(t *testing.T, st store.Store) store.Transfer {
	t.Helper()
	tr, ok := st.(store.Transfer)
	if !ok {
		t.Fatalf("%T does not implement store.Transfer", st)
	}
	return tr
}

// exportAll exports st into one batch, times at microseconds (what every backend keeps).
func exportAll(t *testing.T, st store.Transfer) *store.TransferBatch {
	t.Helper()
	all := &store.TransferBatch{}
	err := st.TransferExport(t.Context(), store.TransferExportParams{BatchSize: 3}, func(b *store.TransferBatch) error {
		// At most 3 records, but for the deliveries of the last one's event, which stay together.
		n, tail := b.Counts().Total(), 0
		for i := len(b.Deliveries) - 1; i >= 0 && b.Deliveries[i].EventID == b.Deliveries[len(b.Deliveries)-1].EventID; i-- {
			tail++
		}
		if n == 0 || n-max(tail-1, 0) > 3 {
			t.Errorf("a batch of %d records (the last %d of one event's deliveries); want 1 to 3 besides those", n, tail)
		}
		if len(all.Deliveries) > 0 && all.SplitsEvent(b) {
			t.Errorf("the deliveries of event %s were split between two batches", b.Deliveries[0].EventID)
		}
		all.Append(b)
		return nil
	})
	if err != nil {
		t.Fatalf("TransferExport: %v", err)
	}
	tr := func(p *time.Time) { *p = p.Truncate(time.Microsecond) }
	for _, h := range all.Hooks {
		tr(&h.CreatedAt)
		tr(&h.UpdatedAt)
	}
	for _, x := range all.Tokens {
		tr(&x.CreatedAt)
		tr(&x.LastUsedAt)
		tr(&x.RevokedAt)
	}
	for _, x := range all.Events {
		tr(&x.CreatedAt)
	}
	for _, x := range all.Deliveries {
		tr(&x.NextAttemptAt)
		tr(&x.LeaseUntil)
		tr(&x.CreatedAt)
		tr(&x.UpdatedAt)
	}
	for _, x := range all.Attempts {
		tr(&x.StartedAt)
	}
	for _, x := range all.DeploymentRequests {
		tr(&x.CreatedAt)
	}
	for _, x := range all.Deployments {
		tr(&x.CreatedAt)
		tr(&x.StartedAt)
		tr(&x.FinishedAt)
	}
	for _, x := range all.DeploymentSettings {
		tr(&x.CreatedAt)
		tr(&x.UpdatedAt)
	}
	for _, x := range all.DriftSchedules {
		tr(&x.NextRunAt)
		tr(&x.LastRunAt)
		tr(&x.CreatedAt)
	}
	for _, x := range all.WatchCursors {
		tr(&x.UpdatedAt)
	}
	for _, x := range all.IdempotencyKeys {
		tr(&x.CreatedAt)
	}
	return all
}

func sameRecords(t *testing.T, what string, want, got any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		w, _ := json.MarshalIndent(want, "", " ")
		g, _ := json.MarshalIndent(got, "", " ")
		t.Errorf("%s differ after the copy:\nsource: %s\ncopy:   %s", what, w, g)
	}
}

func testTransferCopy(t *testing.T, open KeyedOpener) {
	ctx := t.Context()
	key := newKey(t)
	src, dst := open(t, key), open(t, key)
	t.Cleanup(func() { _ = src.Close(); _ = dst.Close() })
	p := Populate(t, src, T0, "http://127.0.0.1:9")
	// A web console session: the export leaves it out (store.TransferNotCopied).
	session := store.Session{IDHash: store.HashSessionID("sid"), TokenID: p.Token.ID, CSRF: "csrf", CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}
	if err := src.SessionCreate(ctx, store.SessionCreateParams{Session: session, Now: T0}); err != nil {
		t.Fatalf("SessionCreate: %v", err)
	}
	from, to := transferOf(t, src), transferOf(t, dst)

	counts, err := from.TransferCount(ctx)
	if err != nil {
		t.Fatalf("TransferCount: %v", err)
	}
	for _, k := range counts.List() {
		if k.N == 0 && (k.Kind != "watch cursors" || implementsCursors(src)) {
			t.Errorf("Populate stored no %s", k.Kind)
		}
	}
	res, err := Copy(ctx, from, to, 4)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if res.Inserted != counts || res.Existing.Total() != 0 {
		t.Fatalf("the copy inserted %+v (existing %+v); want %+v", res.Inserted, res.Existing, counts)
	}
	if got, err := to.TransferCount(ctx); err != nil || got != counts {
		t.Fatalf("TransferCount of the copy = %+v, %v; want %+v", got, err, counts)
	}

	if _, err := dst.SessionGet(ctx, store.SessionGetParams{IDHash: session.IDHash, Now: T0}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the copy's SessionGet of the source's session = %v; want ErrNotFound (sessions are not copied)", err)
	}

	a, b := exportAll(t, from), exportAll(t, to)
	sameRecords(t, "hooks", a.Hooks, b.Hooks)
	sameRecords(t, "tokens", a.Tokens, b.Tokens)
	sameRecords(t, "events", a.Events, b.Events)
	sameRecords(t, "deliveries", a.Deliveries, b.Deliveries)
	sameRecords(t, "attempts", a.Attempts, b.Attempts)
	sameRecords(t, "deployment requests", a.DeploymentRequests, b.DeploymentRequests)
	sameRecords(t, "deployments", a.Deployments, b.Deployments)
	sameRecords(t, "deployment settings", a.DeploymentSettings, b.DeploymentSettings)
	sameRecords(t, "drift schedules", a.DriftSchedules, b.DriftSchedules)
	sameRecords(t, "watch cursors", a.WatchCursors, b.WatchCursors)
	sameRecords(t, "idempotency keys", a.IdempotencyKeys, b.IdempotencyKeys)

	// The copy works as the source did: sealed secrets open, counters agree, the delivery
	// log pages the same, tokens authenticate, new hooks get new IDs.
	if s, err := dst.HookSecretGet(ctx, p.OrgHook.ID); err != nil || s != PopulatedHookSecret {
		t.Errorf("the copied hook's secret = %q, %v; want it to open with the same key", s, err)
	}
	if ds, err := dst.DeploymentSettingsGet(ctx, p.Stack); err != nil || ds.Secrets[PopulatedSettingsPath] != PopulatedSettingsSecret {
		t.Errorf("the copied deployment settings' secret did not open: %v", err)
	}
	now := T0.Add(2 * time.Hour)
	ws, err1 := src.DeliveryStats(ctx, now)
	gs, err2 := dst.DeliveryStats(ctx, now)
	if err := errors.Join(err1, err2); err != nil || ws != gs {
		t.Errorf("DeliveryStats of the copy = %+v; source %+v (%v)", gs, ws, err)
	}
	wl, err1 := src.AttemptList(ctx, store.AttemptListParams{HookID: p.OrgHook.ID, Limit: 2})
	gl, err2 := dst.AttemptList(ctx, store.AttemptListParams{HookID: p.OrgHook.ID, Limit: 2})
	if err := errors.Join(err1, err2); err != nil || len(wl) != 2 || len(gl) != 2 || wl[1].ID != gl[1].ID {
		t.Errorf("AttemptList of the copy differs: %d vs %d attempts (%v)", len(gl), len(wl), err)
	}
	if tok, err := dst.TokenGetByHash(ctx, p.Token.Hash); err != nil || tok.ID != p.Token.ID {
		t.Errorf("TokenGetByHash on the copy = %v, %v", tok, err)
	}
	if _, err := dst.HookCreate(ctx, store.HookCreateParams{Now: now, Spec: p.OrgHook.Spec}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("creating a copied hook's name again: %v; want ErrAlreadyExists", err)
	}
	spec := p.OrgHook.Spec
	spec.Name = "after-the-copy"
	h, err := dst.HookCreate(ctx, store.HookCreateParams{Now: now, Spec: spec})
	if err != nil || h.ID <= p.EnvHook.ID {
		t.Errorf("a hook created after the copy: %v, %v; want an ID above the copied ones (%d)", h, err, p.EnvHook.ID)
	}
	// Every pending delivery, and the running one once its lease ends, is claimed on the copy.
	claimed, err := dst.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "after", Now: T0.Add(3 * time.Hour), Lease: time.Minute, Limit: 100})
	if err != nil || len(claimed) != p.Pending+p.Running {
		t.Errorf("claim on the copy = %d deliveries, %v; want %d", len(claimed), err, p.Pending+p.Running)
	}
	for _, c := range claimed {
		if c.HookID == p.OrgHook.ID && c.Secret != PopulatedHookSecret {
			t.Errorf("claimed delivery %s: the hook's secret did not come with it", c.ID)
		}
	}
}

func implementsCursors(st store.Store) bool {
	_, ok := st.(store.WatchCursors)
	return ok
}

func testTransferAgain(t *testing.T, open KeyedOpener) {
	ctx := t.Context()
	key := newKey(t)
	src, dst := open(t, key), open(t, key)
	t.Cleanup(func() { _ = src.Close(); _ = dst.Close() })
	Populate(t, src, T0, "http://127.0.0.1:9")
	from, to := transferOf(t, src), transferOf(t, dst)
	first, err := Copy(ctx, from, to, 5)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	again, err := Copy(ctx, from, to, 7)
	if err != nil {
		t.Fatalf("copy again: %v", err)
	}
	if again.Inserted.Total() != 0 || again.Existing != first.Inserted {
		t.Fatalf("the second copy inserted %+v, found %+v existing; want nothing inserted, %+v existing",
			again.Inserted, again.Existing, first.Inserted)
	}
	if got, err := to.TransferCount(ctx); err != nil || got != first.Inserted {
		t.Fatalf("TransferCount after copying twice = %+v, %v; want %+v", got, err, first.Inserted)
	}
	stats, err := dst.DeliveryStats(ctx, T0)
	if want, _ := src.DeliveryStats(ctx, T0); err != nil || stats != want {
		t.Fatalf("DeliveryStats after copying twice = %+v, %v; want %+v (counted once)", stats, err, want)
	}
}

func testTransferKeyMismatch(t *testing.T, open KeyedOpener) {
	ctx := t.Context()
	src, dst := open(t, newKey(t)), open(t, newKey(t))
	t.Cleanup(func() { _ = src.Close(); _ = dst.Close() })
	Populate(t, src, T0, "http://127.0.0.1:9")
	_, err := Copy(ctx, transferOf(t, src), transferOf(t, dst), 100)
	wantErr(t, "copying into a store with another key", err, store.ErrKeyMismatch)
	if got, err := transferOf(t, dst).TransferCount(ctx); err != nil || got.Total() != 0 {
		t.Fatalf("a refused copy wrote %+v (%v)", got, err)
	}
}

// CheckTransferCovers checks a backend's tables (every table of its schema) against the
// transfer: each is copied (store.TransferTables) or left out for a stated reason
// (store.TransferNotCopied), and every table the transfer copies exists.
func CheckTransferCovers(t *testing.T, tables []string) {
	t.Helper()
	have := map[string]bool{}
	for _, name := range tables {
		have[name] = true
	}
	copied := map[string]bool{}
	for _, tt := range store.TransferTables {
		copied[tt.Table] = true
		if !have[tt.Table] {
			t.Errorf("the transfer copies table %s, which the schema lacks", tt.Table)
		}
	}
	for _, name := range tables {
		if _, skipped := store.TransferNotCopied[name]; !copied[name] && !skipped {
			t.Errorf("table %s is neither copied (store.TransferTables) nor left out for a reason (store.TransferNotCopied): add it to one", name)
		}
	}
}
