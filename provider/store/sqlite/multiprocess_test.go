package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// The multi-process test re-executes this test binary as children; envChild switches TestMain
// to the child's work.
const (
	envChild      = "SQLITE_STORE_TEST_CHILD"
	envChildPath  = "SQLITE_STORE_TEST_PATH"
	envChildIndex = "SQLITE_STORE_TEST_INDEX"

	childHooks  = 5
	childEvents = 40
	children    = 4
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		if err := childMain(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childMain creates hooks and emits events into the shared file, as a provider or CLI process
// would; even-numbered children also claim and complete deliveries, like a second server.
func childMain() error {
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Limit)
	defer cancel()
	idx := os.Getenv(envChildIndex)
	st, err := Open(ctx, Config{Path: os.Getenv(envChildPath), Getenv: noEnv})
	if err != nil {
		return err
	}
	defer st.Close()
	org := "org-" + idx
	var hooks []*store.Hook
	for i := range childHooks {
		h, err := st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: org}, Name: fmt.Sprint("h", i),
			DisplayName: "h", PayloadURL: "https://example.com/" + idx, Secret: "child-secret", Active: true}, Now: time.Now()})
		if err != nil {
			return fmt.Errorf("create hook: %w", err)
		}
		hooks = append(hooks, h)
	}
	done := make(chan struct{})
	claimErr := make(chan error, 1)
	if n, _ := strconv.Atoi(idx); n%2 == 0 {
		go func() { claimErr <- claimLoop(ctx, st, "child-"+idx, done) }()
	} else {
		claimErr <- nil
	}
	for e := range childEvents {
		ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: org}, Payload: []byte(fmt.Sprintf(`{"e":%d}`, e)), CreatedAt: time.Now()}
		err := st.EventEmit(ctx, func(tx store.EmitTx) error {
			cands, err := tx.HookCandidates(ctx, ev.Subject, true)
			if err != nil {
				return err
			}
			if err := tx.EventInsert(ctx, ev); err != nil {
				return err
			}
			ds := make([]store.DeliveryInsertParams, len(cands))
			for i, h := range cands {
				ds[i] = store.DeliveryInsertParams{HookID: h.ID, Body: ev.Payload, Endpoint: fmt.Sprintf("%s-%d:443", org, i%2)}
			}
			return tx.DeliveryInsertMany(ctx, ev.ID, time.Now(), ds)
		})
		if err != nil {
			return fmt.Errorf("emit: %w", err)
		}
	}
	close(done)
	return <-claimErr
}

// claimLoop claims and completes deliveries until done is closed and nothing is left.
func claimLoop(ctx context.Context, st *Store, worker string, done <-chan struct{}) error {
	for {
		finished := false
		select {
		case <-done:
			finished = true // everything is stored: an empty claim from here on means the end
		default:
		}
		cds, err := st.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: worker, Now: time.Now(), Lease: time.Hour, Limit: 8, PerEndpointLimit: 4})
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		for _, cd := range cds {
			if cd.Secret != "child-secret" || !cd.HookActive {
				return fmt.Errorf("claimed delivery %s with secret ok %v active %v", cd.ID, cd.Secret == "child-secret", cd.HookActive)
			}
			err := st.DeliveryComplete(ctx, store.DeliveryCompleteParams{ID: cd.ID, Worker: worker, Attempt: cd.Attempts, State: store.DeliverySucceeded,
				Record: store.Attempt{StartedAt: time.Now(), ResponseCode: 200, RequestBody: cd.Body}, Now: time.Now()})
			if err != nil {
				return fmt.Errorf("complete: %w", err)
			}
		}
		if len(cds) == 0 {
			if finished {
				return nil
			}
			select {
			case <-done:
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

func TestMultiProcess(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "shared", "webhooks.db")
	ctx, cancel := context.WithTimeout(t.Context(), 2*waitfor.Limit) // the children's limit, and the parent's own
	defer cancel()

	// The children open the fresh file at the same moment as the parent.
	type result struct {
		idx int
		out []byte
		err error
	}
	results := make(chan result, children)
	for i := range children {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envChild+"=1", envChildPath+"="+path, envChildIndex+"="+strconv.Itoa(i))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { err := cmd.Wait(); results <- result{i, out.Bytes(), err} }()
	}
	st, err := Open(ctx, Config{Path: path, Getenv: noEnv})
	if err != nil {
		t.Fatalf("parent Open: %v", err)
	}
	defer st.Close()

	done := make(chan struct{})
	var wg sync.WaitGroup
	parentErrs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); parentErrs <- claimLoop(ctx, st, fmt.Sprint("parent-", w), done) }()
	}
	var failures []string
	for range children {
		r := <-results
		text := string(r.out)
		if r.err != nil {
			failures = append(failures, fmt.Sprintf("child %d: %v\n%s", r.idx, r.err, text))
		}
		if strings.Contains(text, "database is locked") || strings.Contains(text, "SQLITE_BUSY") {
			failures = append(failures, fmt.Sprintf("child %d hit a lock error:\n%s", r.idx, text))
		}
	}
	close(done)
	wg.Wait()
	close(parentErrs)
	for err := range parentErrs {
		if err != nil {
			failures = append(failures, "parent: "+err.Error())
		}
	}
	if len(failures) > 0 {
		t.Fatal(strings.Join(failures, "\n"))
	}

	// Every row is accounted for: each delivery stored once, claimed once, completed once.
	want := children * childEvents * childHooks
	var hooks, events, deliveries, succeeded, once, attempts int
	err = st.DB().QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM hooks), (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM deliveries),
		(SELECT COUNT(*) FROM deliveries WHERE state = 'succeeded'), (SELECT COUNT(*) FROM deliveries WHERE attempts = 1),
		(SELECT COUNT(*) FROM attempts)`).Scan(&hooks, &events, &deliveries, &succeeded, &once, &attempts)
	if err != nil {
		t.Fatal(err)
	}
	if hooks != children*childHooks || events != children*childEvents || deliveries != want || succeeded != want || once != want || attempts != want {
		t.Fatalf("hooks %d events %d deliveries %d succeeded %d claimed-once %d attempts %d; want %d hooks, %d events, %d of the rest",
			hooks, events, deliveries, succeeded, once, attempts, children*childHooks, children*childEvents, want)
	}
	var byParent, byChildren int
	if err := st.DB().QueryRowContext(ctx, `SELECT COALESCE(SUM(claimed_by LIKE 'parent-%'), 0), COALESCE(SUM(claimed_by LIKE 'child-%'), 0) FROM deliveries`).Scan(&byParent, &byChildren); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d deliveries: %d completed by the parent, %d by children", want, byParent, byChildren)
	if byParent+byChildren != want {
		t.Fatalf("the parent completed %d deliveries and the children %d of %d", byParent, byChildren, want)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}
