package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// The rules every backend applies alike to the records it writes: their IDs, their times as
// stored, and the checks and defaults of what an emit inserts. Errors name the field and the
// fix; backends prefix them with what they were doing.

// NewID returns a record ID, a UUID version 7: a millisecond timestamp then random bits. IDs
// made later sort later, so inserting them appends to a primary-key index instead of splitting
// pages all over it.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails on supported platforms
	ms := uint64(time.Now().UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// NewHookName returns a generated hook name: 8 random lowercase hex digits.
func NewHookName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// UnixNanos is a time as the backends store it: unix nanoseconds, 0 for the zero time.
func UnixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromUnixNanos reads a time UnixNanos stored, in UTC; 0 is the zero time.
func FromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// PrepareEventInsert checks an event before it is inserted and fills its defaults: an ID
// (NewID) and its filter's Kind.
func PrepareEventInsert(e *Event) error {
	switch {
	case e == nil:
		return errors.New("the event is nil")
	case e.Subject.Org == "":
		return errors.New("Subject.Org is required: name the organization the event belongs to")
	case len(e.Payload) == 0:
		return errors.New("Payload is empty: give the raw-format JSON payload")
	}
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.Kind == "" {
		e.Kind = e.Filter.Kind()
	}
	return nil
}

// PrepareInsert checks a delivery before it is inserted, fills its ID (NewID) when empty, and
// returns the state it is stored in (pending when empty).
func (d *DeliveryInsertParams) PrepareInsert() (DeliveryState, error) {
	if d.ID == "" {
		d.ID = NewID()
	}
	state := d.State
	if state == "" {
		state = DeliveryPending
	}
	switch state {
	case DeliveryPending, DeliverySucceeded, DeliveryFailed, DeliveryDiscarded:
	default:
		return "", fmt.Errorf("delivery %s: State %q cannot be inserted: use pending (or succeeded, failed, discarded for work already done)", d.ID, state)
	}
	if d.HookID == 0 {
		return "", fmt.Errorf("delivery %s: HookID is required", d.ID)
	}
	return state, nil
}

// PrepareDeploymentRequestInsert checks a deployment request before it is inserted and fills
// its defaults: an ID (NewID) and the status queued.
func PrepareDeploymentRequestInsert(r *DeploymentRequest) error {
	if r == nil {
		return errors.New("the request is nil")
	}
	if r.Target.Org == "" || r.Target.Project == "" || r.Target.Stack == "" {
		return fmt.Errorf("Target %q must name an organization, project and stack", r.Target.String())
	}
	if r.ID == "" {
		r.ID = NewID()
	}
	if r.Status == "" {
		r.Status = "queued"
	}
	return nil
}

// PrepareTokenInsert checks a token before it is stored and fills its ID (NewID) when empty.
func PrepareTokenInsert(t *Token) error {
	switch {
	case t == nil:
		return errors.New("the token is nil")
	case t.Hash == "":
		return errors.New("Hash is required: store the hash of the token, never the token")
	}
	if t.ID == "" {
		t.ID = NewID()
	}
	return nil
}

// CheckStack checks that sc names one stack (organization, project and stack, no
// environment), as deployments, their settings and drift schedules need.
func CheckStack(sc webhook.Scope) error {
	if !sc.IsStack() {
		return fmt.Errorf("stack %q must name an organization, a project and a stack", sc.String())
	}
	return nil
}

// PrepareDeploymentInsert checks a deployment before it is inserted and sets its ID (NewID,
// when empty) and its status, not started. Errors say what failed ("insert deployment: ...",
// "stack ...").
func PrepareDeploymentInsert(d *Deployment) error {
	if d == nil {
		return errors.New("insert deployment: the deployment is nil")
	}
	if err := CheckStack(d.Stack); err != nil {
		return err
	}
	if d.Operation == "" {
		return errors.New("insert deployment: Operation is required")
	}
	if d.ID == "" {
		d.ID = NewID()
	}
	d.Status = DeploymentNotStarted
	return nil
}

// PrepareDriftScheduleInsert checks a drift schedule before it is created and sets its ID
// (NewID) when empty. Errors say what failed ("create drift schedule: ...", "stack ...").
func PrepareDriftScheduleInsert(d *DriftSchedule) error {
	if d == nil {
		return errors.New("create drift schedule: the schedule is nil")
	}
	if err := CheckStack(d.Stack); err != nil {
		return err
	}
	if strings.TrimSpace(d.ScheduleCron) == "" {
		return errors.New("create drift schedule: ScheduleCron is required")
	}
	if d.ID == "" {
		d.ID = NewID()
	}
	return nil
}
