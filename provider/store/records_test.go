package store

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func TestNewIDIsTimeOrderedUUIDv7(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	prev := NewID()
	seen := map[string]bool{prev: true}
	for i := 0; i < 200; i++ {
		id := NewID()
		if !re.MatchString(id) {
			t.Fatalf("NewID() = %q, not a UUID version 7", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
		// The first 12 hex digits are the millisecond: never earlier than the ID before.
		if id[:13] < prev[:13] {
			t.Fatalf("NewID() %q sorts before the earlier %q", id, prev)
		}
		prev = id
	}
}

func TestNewHookName(t *testing.T) {
	a, b := NewHookName(), NewHookName()
	if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(a) || a == b {
		t.Fatalf("NewHookName() = %q, %q; want two different 8-hex-digit names", a, b)
	}
}

func TestUnixNanosRoundTrip(t *testing.T) {
	if UnixNanos(time.Time{}) != 0 || !FromUnixNanos(0).IsZero() {
		t.Fatal("the zero time is not stored as 0")
	}
	at := time.Date(2026, 11, 27, 19, 0, 0, 123456789, time.FixedZone("x", 3600))
	got := FromUnixNanos(UnixNanos(at))
	if !got.Equal(at) || got.Location() != time.UTC {
		t.Fatalf("round trip of %v gave %v", at, got)
	}
}

func TestPrepareEventInsert(t *testing.T) {
	for _, c := range []struct {
		e    *Event
		want string
	}{
		{nil, "the event is nil"},
		{&Event{Payload: []byte("{}")}, "Subject.Org is required"},
		{&Event{Subject: webhook.Scope{Org: "o"}}, "Payload is empty"},
	} {
		if err := PrepareEventInsert(c.e); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("PrepareEventInsert(%+v) = %v, want %q", c.e, err, c.want)
		}
	}
	e := &Event{Subject: webhook.Scope{Org: "o"}, Payload: []byte("{}"), Filter: webhook.UpdateSucceeded}
	if err := PrepareEventInsert(e); err != nil {
		t.Fatal(err)
	}
	if e.ID == "" || e.Kind != webhook.UpdateSucceeded.Kind() {
		t.Fatalf("defaults not filled: ID %q Kind %q", e.ID, e.Kind)
	}
	kept := &Event{ID: "mine", Kind: "custom", Subject: webhook.Scope{Org: "o"}, Payload: []byte("{}")}
	if err := PrepareEventInsert(kept); err != nil || kept.ID != "mine" || kept.Kind != "custom" {
		t.Fatalf("given ID and Kind changed: %+v, %v", kept, err)
	}
}

func TestDeliveryInsertParamsPrepareInsert(t *testing.T) {
	d := DeliveryInsertParams{HookID: 1}
	st, err := d.PrepareInsert()
	if err != nil || st != DeliveryPending || d.ID == "" {
		t.Fatalf("default delivery: state %q, ID %q, %v", st, d.ID, err)
	}
	done := DeliveryInsertParams{ID: "x", HookID: 1, State: DeliverySucceeded}
	if st, err := done.PrepareInsert(); err != nil || st != DeliverySucceeded || done.ID != "x" {
		t.Fatalf("succeeded delivery: %q, %v", st, err)
	}
	running := DeliveryInsertParams{ID: "r", HookID: 1, State: DeliveryRunning}
	if _, err := running.PrepareInsert(); err == nil || !strings.Contains(err.Error(), `delivery r: State "running" cannot be inserted`) {
		t.Fatalf("running delivery: %v", err)
	}
	noHook := DeliveryInsertParams{ID: "n"}
	if _, err := noHook.PrepareInsert(); err == nil || err.Error() != "delivery n: HookID is required" {
		t.Fatalf("delivery without hook: %v", err)
	}
}

func TestPrepareDeploymentRequestInsert(t *testing.T) {
	if err := PrepareDeploymentRequestInsert(nil); err == nil || err.Error() != "the request is nil" {
		t.Fatalf("nil request: %v", err)
	}
	bad := &DeploymentRequest{Target: webhook.Scope{Org: "o", Project: "p"}}
	if err := PrepareDeploymentRequestInsert(bad); err == nil || !strings.Contains(err.Error(), "must name an organization, project and stack") {
		t.Fatalf("request without a stack: %v", err)
	}
	r := &DeploymentRequest{Target: webhook.Scope{Org: "o", Project: "p", Stack: "s"}}
	if err := PrepareDeploymentRequestInsert(r); err != nil || r.ID == "" || r.Status != "queued" {
		t.Fatalf("defaults: %+v, %v", r, err)
	}
}

func TestPrepareTokenInsert(t *testing.T) {
	if err := PrepareTokenInsert(nil); err == nil || err.Error() != "the token is nil" {
		t.Fatalf("nil token: %v", err)
	}
	if err := PrepareTokenInsert(&Token{}); err == nil || !strings.Contains(err.Error(), "Hash is required") {
		t.Fatalf("token without hash: %v", err)
	}
	tok := &Token{Hash: "h"}
	if err := PrepareTokenInsert(tok); err != nil || tok.ID == "" {
		t.Fatalf("token: ID %q, %v", tok.ID, err)
	}
	mine := &Token{ID: "mine", Hash: "h"}
	if err := PrepareTokenInsert(mine); err != nil || mine.ID != "mine" {
		t.Fatalf("given ID changed: %q, %v", mine.ID, err)
	}
}

func TestCheckStack(t *testing.T) {
	if err := CheckStack(webhook.Scope{Org: "o", Project: "p", Stack: "s"}); err != nil {
		t.Fatal(err)
	}
	for _, sc := range []webhook.Scope{{Org: "o", Project: "p"}, {Org: "o", Project: "p", Stack: "s", Environment: "e"}, {}} {
		if err := CheckStack(sc); err == nil || !strings.Contains(err.Error(), "must name an organization, a project and a stack") {
			t.Errorf("CheckStack(%+v) = %v", sc, err)
		}
	}
}

func TestPrepareDeploymentInsert(t *testing.T) {
	stack := webhook.Scope{Org: "o", Project: "p", Stack: "s"}
	for _, c := range []struct {
		d    *Deployment
		want string
	}{
		{nil, "insert deployment: the deployment is nil"},
		{&Deployment{Operation: "update"}, `stack "" must name`},
		{&Deployment{Stack: stack}, "insert deployment: Operation is required"},
	} {
		if err := PrepareDeploymentInsert(c.d); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("PrepareDeploymentInsert(%+v) = %v, want %q", c.d, err, c.want)
		}
	}
	d := &Deployment{Stack: stack, Operation: "update", Status: "running"}
	if err := PrepareDeploymentInsert(d); err != nil || d.ID == "" || d.Status != DeploymentNotStarted {
		t.Fatalf("deployment: ID %q status %q, %v", d.ID, d.Status, err)
	}
}

func TestPrepareDriftScheduleInsert(t *testing.T) {
	stack := webhook.Scope{Org: "o", Project: "p", Stack: "s"}
	for _, c := range []struct {
		d    *DriftSchedule
		want string
	}{
		{nil, "create drift schedule: the schedule is nil"},
		{&DriftSchedule{ScheduleCron: "@daily"}, `stack "" must name`},
		{&DriftSchedule{Stack: stack, ScheduleCron: "  "}, "create drift schedule: ScheduleCron is required"},
	} {
		if err := PrepareDriftScheduleInsert(c.d); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("PrepareDriftScheduleInsert(%+v) = %v, want %q", c.d, err, c.want)
		}
	}
	d := &DriftSchedule{Stack: stack, ScheduleCron: "@daily"}
	if err := PrepareDriftScheduleInsert(d); err != nil || d.ID == "" {
		t.Fatalf("schedule: ID %q, %v", d.ID, err)
	}
}
