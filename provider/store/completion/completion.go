// Package completion is the one home of how the store backends prepare the items of
// DeliveryCompleteMany and DeliveryCycle: each item checked and encoded before the
// transaction, so that a bad item fails alone, and the errors handed to every item when the
// transaction, or the claim of a cycle, fails. The backends write the prepared items with
// their own SQL.
package completion

import (
	"fmt"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// Item is one completion, prepared: P is nil when the item failed its checks and is not to be
// written. Now and Next are unix nanoseconds (store.UnixNanos); ReqH and RespH the attempt's
// headers as stored (store.EncodeHeaders).
type Item struct {
	P           *store.DeliveryCompleteParams
	Now, Next   int64
	LastErr     string
	ReqH, RespH string
}

// prepare checks p and encodes it into c; backend prefixes its errors ("sqlite").
func (c *Item) prepare(backend string, p *store.DeliveryCompleteParams) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%s: complete delivery %s: %w", backend, p.ID, err)
	}
	c.Now, c.Next, c.LastErr = store.UnixNanos(p.Now), store.UnixNanos(p.NextDue()), p.LastError()
	var err error
	if c.ReqH, err = store.EncodeHeaders(p.Record.RequestHeaders); err != nil {
		return fmt.Errorf("%s: complete delivery %s: encode request headers: %w", backend, p.ID, err)
	}
	if c.RespH, err = store.EncodeHeaders(p.Record.ResponseHeaders); err != nil {
		return fmt.Errorf("%s: complete delivery %s: encode response headers: %w", backend, p.ID, err)
	}
	c.P = p
	return nil
}

// Prepare prepares ps: errs has the error of each item that failed its checks (nil for the
// others), items one Item each, and todo counts the items to write. backend prefixes the
// errors ("sqlite").
func Prepare(backend string, ps []store.DeliveryCompleteParams) (errs []error, items []Item, todo int) {
	errs = make([]error, len(ps))
	items = make([]Item, len(ps))
	for i := range ps {
		if errs[i] = items[i].prepare(backend, &ps[i]); errs[i] == nil {
			todo++
		}
	}
	return errs, items, todo
}

// Fail sets err for every item that was to be written: its transaction failed.
func Fail(items []Item, errs []error, err error) {
	for i := range items {
		if items[i].P != nil {
			errs[i] = err
		}
	}
}

// Refused returns n errors, each err: a cycle whose claim is refused records none of its
// completions.
func Refused(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}
