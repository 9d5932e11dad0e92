package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// The checks and derived values of the ...Params structs that every backend applies the same
// way. Their errors name the field and the fix; backends prefix them with what they were doing.

// Validate checks a claim's parameters; a Limit of 0 or less is not an error (it claims nothing).
func (p DeliveryClaimParams) Validate() error {
	switch {
	case p.Worker == "":
		return errors.New("Worker is required: give the worker a unique name")
	case p.Lease <= 0:
		return fmt.Errorf("Lease is %s: give a lease longer than the HTTP timeout", p.Lease)
	case p.PerEndpointLimit < 0:
		return fmt.Errorf("PerEndpointLimit is %d: give a positive cap, or 0 for none", p.PerEndpointLimit)
	case p.PerOrgLimit < 0:
		return fmt.Errorf("PerOrgLimit is %d: give a positive cap, or 0 for none", p.PerOrgLimit)
	}
	return nil
}

// Validate checks that a completion's State is a result.
func (p *DeliveryCompleteParams) Validate() error {
	switch p.State {
	case DeliveryPending, DeliverySucceeded, DeliveryFailed, DeliveryDiscarded:
		return nil
	}
	return fmt.Errorf("State %q is not a result: use succeeded, failed, discarded, or pending with NextAttemptAt for a retry", p.State)
}

// NextDue is when a completed delivery is next due: NextAttemptAt, or Now for a retry that
// gives none.
func (p *DeliveryCompleteParams) NextDue() time.Time {
	if p.State == DeliveryPending && p.NextAttemptAt.IsZero() {
		return p.Now
	}
	return p.NextAttemptAt
}

// LastError is the delivery's last error after this completion: the attempt's error, or, for
// an attempt that did not succeed without one, the HTTP status the endpoint answered.
func (p *DeliveryCompleteParams) LastError() string {
	if p.Record.Error == "" && p.State != DeliverySucceeded && p.Record.ResponseCode != 0 {
		return fmt.Sprintf("the endpoint answered HTTP %d", p.Record.ResponseCode)
	}
	return p.Record.Error
}

// Validate checks that an attempt record names its delivery: a new one (ping) with its event,
// or an existing one by Record.DeliveryID (redelivery).
func (p *AttemptRecordParams) Validate() error {
	switch {
	case p.Event != nil && p.Delivery == nil:
		return errors.New("Event is set without Delivery: give the delivery the ping created")
	case p.Event == nil && p.Delivery != nil:
		return errors.New("Delivery is set without Event: a new delivery needs its event")
	case p.Event == nil && p.Record.DeliveryID == "":
		return errors.New("Record.DeliveryID is required to record a redelivery")
	}
	return nil
}

// HistoryDeleteLimitDefault is how many events (and idempotency keys, and deployments) one
// HistoryDeleteBefore call deletes at most when the caller gives no limit, in every backend.
const HistoryDeleteLimitDefault = 100

// Validate checks that a history deletion has its cut-off time.
func (p HistoryDeleteBeforeParams) Validate() error {
	if UnixNanos(p.Before) == 0 {
		return errors.New("Before is zero: give the retention cut-off time")
	}
	return nil
}

// BatchLimit is the most events one call deletes: Limit, or HistoryDeleteLimitDefault.
func (p HistoryDeleteBeforeParams) BatchLimit() int {
	if p.Limit <= 0 {
		return HistoryDeleteLimitDefault
	}
	return p.Limit
}

// HookNameAttempts bounds the generated names a hook create tries when one collides with a
// hook that exists.
const HookNameAttempts = 8

// PreparedSpec returns the hook's spec normalized (webhook.Spec.Normalize) and checked, and
// whether its name is to be generated (NewHookName, up to HookNameAttempts more times on a
// collision).
func (p HookCreateParams) PreparedSpec() (spec webhook.Spec, generateName bool, err error) {
	spec = p.Spec
	spec.Normalize()
	if spec.Org == "" {
		return spec, false, errors.New("organizationName is required: name the organization that owns the webhook")
	}
	return spec, spec.Name == "", nil
}

// Validate checks a hook listing's paging: Limit is not negative, and After and Limit page one
// scope (Exact with Scope.Org), the only listing whose names are unique and so a cursor.
func (p HookListParams) Validate() error {
	paged := p.After != "" || p.Limit != 0
	switch {
	case p.Limit < 0:
		return fmt.Errorf("Limit is %d: give a positive page size, or 0 for every hook", p.Limit)
	case paged && !p.Exact && p.After != "":
		return errors.New("After is set without Exact: a name is a cursor only within one scope; set Exact, or leave After out")
	case paged && !p.Exact:
		return errors.New("Limit is set without Exact: pages are cut within one scope; set Exact, or leave Limit at 0")
	case paged && p.Scope.Org == "":
		return errors.New("Scope.Org is empty with After or Limit: pages are cut within one scope; name its organization, or leave After and Limit out")
	}
	return nil
}

// Attempt list page sizes, in every backend.
const (
	AttemptListLimitDefault = 100
	AttemptListLimitMax     = 1000
)

// PageLimit checks an attempt page's parameters and returns its size: Limit, or
// AttemptListLimitDefault for 0, at most AttemptListLimitMax.
func (p AttemptListParams) PageLimit() (int, error) {
	limit := p.Limit
	switch {
	case limit < 0:
		return 0, fmt.Errorf("Limit is %d: give a positive page size, or 0 for %d", limit, AttemptListLimitDefault)
	case limit == 0:
		limit = AttemptListLimitDefault
	case limit > AttemptListLimitMax:
		limit = AttemptListLimitMax
	}
	if p.Before < 0 {
		return 0, fmt.Errorf("Before is %d: pass the last ID of the previous page, or 0 for the first page", p.Before)
	}
	return limit, nil
}

// Validate checks a stack's deployment settings before they are stored: the stack
// (CheckStack) and a valid JSON settings document. Errors say what failed ("stack ...",
// "deployment settings: ...").
func (p DeploymentSettingsPutParams) Validate() error {
	if err := CheckStack(p.Stack); err != nil {
		return err
	}
	if !json.Valid(p.Settings) {
		return errors.New("deployment settings: the settings document is not valid JSON")
	}
	return nil
}
