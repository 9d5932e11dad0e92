package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Paging of the hook and delivery listings. The body of a listing stays the bare JSON array of
// the OpenAPI reference; a page that has a next page names it in two headers: the token
// (api.HeaderContinuationToken) and an RFC 8288 Link with rel="next". A token is opaque to
// clients: base64url (no padding) of
//
//	version (1 byte, pageTokenVersion) | listing kind (1 byte) | listing digest (8 bytes) |
//	page size (uvarint) | cursor | checksum (4 bytes)
//
// where the listing digest is a SHA-256 prefix of the listing's identity (the scope, and for a
// delivery log the hook's name), the cursor is the last hook name of the previous page (hooks
// are listed by name) or the last attempt ID (deliveries are listed newest first by attempt
// ID), and the checksum is a SHA-256 prefix of everything before it. The checksum catches a
// token that was cut or edited; it is not a signature and needs none: a token only says where
// to resume a listing its bearer may read in full anyway, and every request is authorized and
// scoped by its URL and API token as usual. Both cursors are keys, not offsets, so rows added
// or deleted between pages never cause a duplicate or skip a row that exists throughout.

// Page sizes of the hook listing (the delivery log's are engine.DeliveryLogLimit*).
const (
	// HookPageLimitMax is the largest ?limit= of the hook listing.
	HookPageLimitMax = 1000
)

// pageTokenVersion is the first byte of every token this server issues.
const pageTokenVersion = 1

// pageTokenMaxLen bounds a token read from a request (a hook name cursor is at most a few
// hundred bytes).
const pageTokenMaxLen = 1024

type listingKind byte

const (
	listingHooks      listingKind = 'h'
	listingDeliveries listingKind = 'd'
)

// listing is one paged listing: the hooks of a scope, or one hook's delivery log.
type listing struct {
	kind  listingKind
	scope webhook.Scope
	hook  string
}

func (l listing) digest() []byte {
	h := sha256.New()
	for _, part := range []string{string(l.kind), l.scope.Org, l.scope.Project, l.scope.Stack, l.scope.Environment, l.hook} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return h.Sum(nil)[:8]
}

// what names the listing in errors.
func (l listing) what() string {
	if l.kind == listingDeliveries {
		return "the delivery log of webhook " + webhook.Quote(l.hook)
	}
	return "the webhooks of " + webhook.Quote(l.scope.String())
}

// pageToken is a decoded continuation token: where the next page of its listing starts.
type pageToken struct {
	limit int
	// afterName (hooks): the next page starts after this name.
	afterName string
	// before (deliveries): the next page holds attempts older than this ID.
	before int64
}

func (l listing) encode(t pageToken) string {
	b := []byte{pageTokenVersion, byte(l.kind)}
	b = append(b, l.digest()...)
	b = binary.AppendUvarint(b, uint64(t.limit))
	if l.kind == listingDeliveries {
		b = binary.AppendUvarint(b, uint64(t.before))
	} else {
		b = append(b, t.afterName...)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(append(b, sum[:4]...))
}

// decode reads a token of l. Its errors name the problem and the fix; the field is
// continuationToken.
func (l listing) decode(s string) (pageToken, error) {
	const restart = "leave it out to list from the first page"
	broken := fmt.Errorf("is not a continuation token of this server (it was cut or changed): pass the %s header of the previous page unchanged, or %s", api.HeaderContinuationToken, restart)
	if len(s) > pageTokenMaxLen {
		return pageToken{}, broken
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2+8+1+4 {
		return pageToken{}, broken
	}
	body, sum := b[:len(b)-4], b[len(b)-4:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:4]) {
		return pageToken{}, broken
	}
	if body[0] != pageTokenVersion {
		return pageToken{}, fmt.Errorf("has version %d, which this server does not read (it reads version %d): %s", body[0], pageTokenVersion, restart)
	}
	switch kind := listingKind(body[1]); {
	case kind == listingHooks && l.kind == listingDeliveries:
		return pageToken{}, fmt.Errorf("belongs to a webhook listing, not to %s: pass a token only with the URL it came from (the Link header's next URL), or %s", l.what(), restart)
	case kind == listingDeliveries && l.kind == listingHooks:
		return pageToken{}, fmt.Errorf("belongs to a delivery log, not to %s: pass a token only with the URL it came from (the Link header's next URL), or %s", l.what(), restart)
	case kind != l.kind:
		return pageToken{}, broken
	}
	if !bytes.Equal(body[2:10], l.digest()) {
		return pageToken{}, fmt.Errorf("belongs to another listing than %s (another organization, stack, environment or webhook): pass a token only with the URL it came from (the Link header's next URL), or %s", l.what(), restart)
	}
	rest := body[10:]
	limit, n := binary.Uvarint(rest)
	maxLimit := uint64(HookPageLimitMax)
	if l.kind == listingDeliveries {
		maxLimit = engine.DeliveryLogLimitMax
	}
	if n <= 0 || limit < 1 || limit > maxLimit {
		return pageToken{}, broken
	}
	t := pageToken{limit: int(limit)}
	rest = rest[n:]
	if l.kind == listingDeliveries {
		before, n := binary.Uvarint(rest)
		if n <= 0 || n != len(rest) || before < 1 || before > 1<<63-1 {
			return pageToken{}, broken
		}
		t.before = int64(before)
	} else {
		if len(rest) == 0 {
			return pageToken{}, broken
		}
		t.afterName = string(rest)
	}
	return t, nil
}

// paging is what a listing request asks: a page size (0: none given) and where to start.
type paging struct {
	limit int
	token *pageToken
	// before is the delivery log's older cursor (?before=), 0 when not given.
	before int64
}

// readPaging reads the paging parameters of a listing request. ?before= is read for the
// delivery log only (for the hook listing it is an unknown parameter, ignored like others).
// An empty parameter counts as not given, so a client may send ?continuationToken= for the
// first page.
func readPaging(r *http.Request, l listing) (paging, error) {
	var p paging
	var errs webhook.FieldErrors
	q := r.URL.Query()
	maxLimit, what := HookPageLimitMax, "webhooks"
	if l.kind == listingDeliveries {
		maxLimit, what = engine.DeliveryLogLimitMax, "attempts"
	}
	one := func(name string) string {
		vs := q[name]
		if len(vs) > 1 {
			errs.Add(name, fmt.Sprintf("is given %d times: give it once", len(vs)))
			return ""
		}
		if len(vs) == 0 {
			return ""
		}
		return vs[0]
	}
	if v := one(api.ParamLimit); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			errs.Add(api.ParamLimit, fmt.Sprintf("%s is not a number from 1 to %d: give how many %s to return per page", webhook.Quote(v), maxLimit, what))
		} else {
			p.limit = n
		}
	}
	if v := one(api.ParamContinuationToken); v != "" {
		t, err := l.decode(v)
		if err != nil {
			errs.Add(api.ParamContinuationToken, err.Error())
		} else {
			p.token = &t
		}
	}
	if l.kind == listingDeliveries {
		if v := one(api.ParamBefore); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			switch {
			case err != nil || n < 1:
				errs.Add(api.ParamBefore, fmt.Sprintf("%s is not a positive number: pass the %s header of the previous page (or, better, %s with the %s header)",
					webhook.Quote(v), api.HeaderNextBefore, api.ParamContinuationToken, api.HeaderContinuationToken))
			case q.Get(api.ParamContinuationToken) != "":
				errs.Add(api.ParamBefore, fmt.Sprintf("cannot be given with %s, which already says where the page starts: give only %s", api.ParamContinuationToken, api.ParamContinuationToken))
			default:
				p.before = n
			}
		}
	}
	return p, errs.Err()
}

// setNextPage names the next page of l in the response headers: the token, and a Link to the
// same path with only the token as query (the token carries the page size).
func setNextPage(w http.ResponseWriter, r *http.Request, l listing, t pageToken) {
	tok := l.encode(t)
	w.Header().Set(api.HeaderContinuationToken, tok)
	next := r.URL.EscapedPath() + "?" + url.Values{api.ParamContinuationToken: {tok}}.Encode()
	w.Header().Add("Link", "<"+next+">; rel=\"next\"")
}
