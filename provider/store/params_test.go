package store

import (
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func TestDeliveryClaimParamsValidate(t *testing.T) {
	ok := DeliveryClaimParams{Worker: "w", Lease: time.Minute, Limit: 1}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid params: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(*DeliveryClaimParams)
		want string
	}{
		{"no worker", func(p *DeliveryClaimParams) { p.Worker = "" }, "Worker is required: give the worker a unique name"},
		{"no lease", func(p *DeliveryClaimParams) { p.Lease = 0 }, "Lease is 0s: give a lease longer than the HTTP timeout"},
		{"negative endpoint cap", func(p *DeliveryClaimParams) { p.PerEndpointLimit = -1 }, "PerEndpointLimit is -1: give a positive cap, or 0 for none"},
		{"negative org cap", func(p *DeliveryClaimParams) { p.PerOrgLimit = -2 }, "PerOrgLimit is -2: give a positive cap, or 0 for none"},
	} {
		p := ok
		c.edit(&p)
		if err := p.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestDeliveryCompleteParams(t *testing.T) {
	now := time.Unix(1000, 0)
	later := now.Add(time.Minute)
	for _, st := range []DeliveryState{DeliveryPending, DeliverySucceeded, DeliveryFailed, DeliveryDiscarded} {
		p := DeliveryCompleteParams{State: st}
		if err := p.Validate(); err != nil {
			t.Errorf("state %s: %v", st, err)
		}
	}
	bad := DeliveryCompleteParams{State: DeliveryRunning}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `State "running" is not a result`) {
		t.Errorf("running as a result: %v", err)
	}

	retryNow := DeliveryCompleteParams{State: DeliveryPending, Now: now}
	if got := retryNow.NextDue(); !got.Equal(now) {
		t.Errorf("retry without NextAttemptAt due %v, want now %v", got, now)
	}
	retryLater := DeliveryCompleteParams{State: DeliveryPending, Now: now, NextAttemptAt: later}
	if got := retryLater.NextDue(); !got.Equal(later) {
		t.Errorf("retry due %v, want %v", got, later)
	}
	done := DeliveryCompleteParams{State: DeliverySucceeded, Now: now}
	if got := done.NextDue(); !got.IsZero() {
		t.Errorf("succeeded delivery due %v, want none", got)
	}

	for _, c := range []struct {
		p    DeliveryCompleteParams
		want string
	}{
		{DeliveryCompleteParams{State: DeliveryFailed, Record: Attempt{Error: "dial: refused", ResponseCode: 500}}, "dial: refused"},
		{DeliveryCompleteParams{State: DeliveryFailed, Record: Attempt{ResponseCode: 502}}, "the endpoint answered HTTP 502"},
		{DeliveryCompleteParams{State: DeliveryPending, Record: Attempt{ResponseCode: 429}}, "the endpoint answered HTTP 429"},
		{DeliveryCompleteParams{State: DeliverySucceeded, Record: Attempt{ResponseCode: 200}}, ""},
		{DeliveryCompleteParams{State: DeliveryFailed}, ""},
	} {
		if got := c.p.LastError(); got != c.want {
			t.Errorf("LastError of %s %+v = %q, want %q", c.p.State, c.p.Record, got, c.want)
		}
	}
}

func TestAttemptRecordParamsValidate(t *testing.T) {
	ev, d := &Event{}, &DeliveryInsertParams{}
	for _, c := range []struct {
		p    AttemptRecordParams
		want string
	}{
		{AttemptRecordParams{Event: ev}, "Event is set without Delivery: give the delivery the ping created"},
		{AttemptRecordParams{Delivery: d}, "Delivery is set without Event: a new delivery needs its event"},
		{AttemptRecordParams{}, "Record.DeliveryID is required to record a redelivery"},
	} {
		if err := c.p.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("Validate(%+v) = %v, want %q", c.p, err, c.want)
		}
	}
	for _, ok := range []AttemptRecordParams{{Event: ev, Delivery: d}, {Record: Attempt{DeliveryID: "x"}}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", ok, err)
		}
	}
}

func TestHistoryDeleteBeforeParams(t *testing.T) {
	if err := (HistoryDeleteBeforeParams{}).Validate(); err == nil || err.Error() != "Before is zero: give the retention cut-off time" {
		t.Fatalf("no cut-off: %v", err)
	}
	p := HistoryDeleteBeforeParams{Before: time.Unix(1000, 0)}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := p.BatchLimit(); got != HistoryDeleteLimitDefault {
		t.Fatalf("BatchLimit with no Limit = %d, want %d", got, HistoryDeleteLimitDefault)
	}
	p.Limit = 7
	if got := p.BatchLimit(); got != 7 {
		t.Fatalf("BatchLimit = %d, want 7", got)
	}
}

func TestHookCreateParamsPreparedSpec(t *testing.T) {
	if _, _, err := (HookCreateParams{}).PreparedSpec(); err == nil ||
		err.Error() != "organizationName is required: name the organization that owns the webhook" {
		t.Fatalf("no organization: %v", err)
	}
	p := HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "o"}, PayloadURL: "http://127.0.0.1/x"}}
	spec, generate, err := p.PreparedSpec()
	if err != nil || !generate || spec.Org != "o" {
		t.Fatalf("unnamed hook: %+v, generate %v, %v", spec, generate, err)
	}
	want := p.Spec
	want.Normalize()
	if spec.Format != want.Format || len(spec.Filters) != len(want.Filters) {
		t.Fatalf("spec not normalized: %+v, want %+v", spec, want)
	}
	p.Spec.Name = "mine"
	if spec, generate, err := p.PreparedSpec(); err != nil || generate || spec.Name != "mine" {
		t.Fatalf("named hook: %q, generate %v, %v", spec.Name, generate, err)
	}
}

func TestAttemptListParamsPageLimit(t *testing.T) {
	for _, c := range []struct {
		p    AttemptListParams
		want int
	}{{AttemptListParams{}, AttemptListLimitDefault}, {AttemptListParams{Limit: 5}, 5}, {AttemptListParams{Limit: 1 << 20}, AttemptListLimitMax}} {
		if got, err := c.p.PageLimit(); err != nil || got != c.want {
			t.Errorf("PageLimit(%+v) = %d, %v; want %d", c.p, got, err, c.want)
		}
	}
	if _, err := (AttemptListParams{Limit: -1}).PageLimit(); err == nil || err.Error() != "Limit is -1: give a positive page size, or 0 for 100" {
		t.Errorf("negative limit: %v", err)
	}
	if _, err := (AttemptListParams{Before: -3}).PageLimit(); err == nil || !strings.HasPrefix(err.Error(), "Before is -3: pass the last ID") {
		t.Errorf("negative cursor: %v", err)
	}
}

func TestDeploymentSettingsPutParamsValidate(t *testing.T) {
	stack := webhook.Scope{Org: "o", Project: "p", Stack: "s"}
	if err := (DeploymentSettingsPutParams{Stack: stack, Settings: []byte(`{}`)}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (DeploymentSettingsPutParams{Stack: webhook.Scope{Org: "o"}, Settings: []byte(`{}`)}).Validate(); err == nil || !strings.Contains(err.Error(), "must name an organization") {
		t.Fatalf("no stack: %v", err)
	}
	if err := (DeploymentSettingsPutParams{Stack: stack, Settings: []byte(`{`)}).Validate(); err == nil || err.Error() != "deployment settings: the settings document is not valid JSON" {
		t.Fatalf("bad JSON: %v", err)
	}
}

func TestSessionCreateParamsValidate(t *testing.T) {
	now := time.Unix(1000, 0)
	ok := SessionCreateParams{Session: Session{IDHash: HashSessionID("sid"), TokenID: "tok", CSRF: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, Now: now}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid params: %v", err)
	}
	if h := HashSessionID("sid"); len(h) != 64 || h == HashSessionID("sie") {
		t.Fatalf("HashSessionID = %q", h)
	}
	for _, c := range []struct {
		name string
		edit func(*SessionCreateParams)
		want string
	}{
		{"the ID itself", func(p *SessionCreateParams) { p.Session.IDHash = "sid" }, "Session.IDHash is not a hex SHA-256: store HashSessionID(id), never the session ID"},
		{"upper-case hex", func(p *SessionCreateParams) { p.Session.IDHash = strings.ToUpper(p.Session.IDHash) }, "Session.IDHash is not a hex SHA-256"},
		{"no token", func(p *SessionCreateParams) { p.Session.TokenID = "" }, "Session.TokenID is required: give the ID of the API token signed in with"},
		{"no CSRF", func(p *SessionCreateParams) { p.Session.CSRF = "" }, "Session.CSRF is required: give the session's random CSRF token"},
		{"no creation time", func(p *SessionCreateParams) { p.Session.CreatedAt = time.Time{} }, "Session.CreatedAt is zero: give the sign-in time"},
		{"expired at birth", func(p *SessionCreateParams) { p.Session.ExpiresAt = now.Add(-time.Second) }, "Session.ExpiresAt (1970-01-01T00:16:39Z) is not after CreatedAt (1970-01-01T00:16:40Z): give a positive lifetime"},
		{"negative cap", func(p *SessionCreateParams) { p.PerTokenLimit = -1 }, "PerTokenLimit is -1: give a positive cap, or 0 for none"},
		{"no time", func(p *SessionCreateParams) { p.Now = time.Time{} }, "Now is zero: give the current time, which expired sessions are judged by"},
	} {
		p := ok
		c.edit(&p)
		if err := p.Validate(); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestHookListParamsValidate(t *testing.T) {
	acme := webhook.Scope{Org: "acme"}
	for _, ok := range []HookListParams{{}, {Scope: acme}, {Scope: acme, Exact: true}, {Scope: acme, Exact: true, After: "a", Limit: 1}, {Exact: true}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, c := range []struct {
		p    HookListParams
		want string
	}{
		{HookListParams{Scope: acme, Exact: true, Limit: -1}, "Limit is -1: give a positive page size, or 0 for every hook"},
		{HookListParams{Scope: acme, After: "a"}, "After is set without Exact: a name is a cursor only within one scope; set Exact, or leave After out"},
		{HookListParams{Scope: acme, Limit: 5}, "Limit is set without Exact: pages are cut within one scope; set Exact, or leave Limit at 0"},
		{HookListParams{Exact: true, Limit: 5}, "Scope.Org is empty with After or Limit: pages are cut within one scope; name its organization, or leave After and Limit out"},
	} {
		if err := c.p.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v, want %q", c.p, err, c.want)
		}
	}
}
