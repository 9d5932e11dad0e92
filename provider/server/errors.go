package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/jsonobj"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// statusError is an error with the HTTP status and the message the caller sees.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func apiError(code int, msg string) error { return &statusError{code: code, msg: msg} }

func notFound(ref store.HookRef) error {
	return apiError(http.StatusNotFound, fmt.Sprintf("webhook %s not found", webhook.Quote(ref.String())))
}

// hookError maps the store's sentinel errors, as the engine returns them for the hook ref, to
// HTTP errors. This is the one place that turns them into statuses.
func hookError(ref store.HookRef, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound(ref)
	case errors.Is(err, store.ErrAlreadyExists):
		return apiError(http.StatusConflict, fmt.Sprintf(
			"name: a webhook named %q already exists in %s: choose another name, or update the existing webhook",
			ref.Name, ref.Scope.String()))
	}
	return err
}

// emitError maps the engine's emit errors to HTTP errors: an idempotency key reused for
// another request is 422; field errors name the request's fields (emitFieldErrors).
func emitError(err error) error {
	if errors.Is(err, engine.ErrIdempotencyKeyReused) {
		return apiError(http.StatusUnprocessableEntity, fmt.Sprintf(
			"%s: this key was used within the last %g hours for a different event (filter, stack or environment, or payload): "+
				"send a new key for a new event, or repeat the first request exactly to get its answer",
			api.HeaderIdempotencyKey, engine.IdempotencyWindow.Hours()))
	}
	return emitFieldErrors(err)
}

// emitFieldErrors renames the engine's field errors to what the request calls them: the
// idempotency key is a header.
func emitFieldErrors(err error) error {
	var fe webhook.FieldErrors
	if !errors.As(err, &fe) {
		return err
	}
	out := make(webhook.FieldErrors, len(fe))
	for i, e := range fe {
		if e.Field == "idempotencyKey" {
			e.Field = api.HeaderIdempotencyKey
		}
		out[i] = e
	}
	return out
}

// writeError writes err as {"code": N, "message": "..."}. Field errors are 400 and list each
// field; an oversized body is 413; anything unexpected is 500 with a generic message, and
// the details go to the log only.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		se  *statusError
		fe  webhook.FieldErrors
		mbe *http.MaxBytesError
	)
	body := api.Error{}
	switch {
	case errors.As(err, &mbe):
		body.Code = http.StatusRequestEntityTooLarge
		body.Message = fmt.Sprintf("request body is larger than %d bytes: send a smaller body", mbe.Limit)
	case errors.As(err, &se):
		body.Code, body.Message = se.code, se.msg
	case errors.As(err, &fe):
		// At most webhook.FieldErrorsMax problems one by one; the message counts the rest.
		body.Code, body.Message = http.StatusBadRequest, fe.Error()
		shown, _ := fe.Reported()
		for _, e := range shown {
			body.Errors = append(body.Errors, api.FieldError{Field: e.Field, Message: e.Message})
		}
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The caller went away; nobody reads the answer.
		body.Code, body.Message = 499, "request canceled by the client"
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		body.Code, body.Message = http.StatusInternalServerError, "internal server error: see the server log"
	}
	if body.Code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "token")
	}
	writeJSON(w, body.Code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // The status is sent; a write error means the client left.
}

// decodeJSON reads one JSON object from the request body into v, strictly: the whole body is
// read first (so any body over the size limit is the *http.MaxBytesError the server maps to
// 413, whatever it holds); a Content-Type other than JSON is 415; every key must be one of v's
// JSON names, spelt exactly (encoding/json alone would bind "PAYLOADURL" to payloadUrl), at
// most once, and not null; unknown fields, a wrong type, trailing data and malformed JSON are
// field errors naming what is wrong.
func decodeJSON(r *http.Request, v any) error {
	if err := checkContentType(r); err != nil {
		return err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fieldError("body", "could not be read completely: send the request again")
	}
	return decodeStrict(body, v)
}

// decodeStrict decodes body, one JSON object, into v (a pointer to a struct) with the rules
// of decodeJSON.
func decodeStrict(body []byte, v any) error {
	rt := requestTypeOf(reflect.TypeOf(v))
	valid := json.Valid(body)
	if err := checkKeys(body, valid, rt.fields); err != nil {
		return err
	}
	if valid && rt.flat {
		// One JSON value whose keys are all v's, spelt exactly, and nothing in v that
		// DisallowUnknownFields could refuse: json.Unmarshal decodes as the decoder below
		// would, without its buffering.
		if err := json.Unmarshal(body, v); err != nil {
			return bodyError(err)
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fieldError("body", "has data after the JSON object: send exactly one JSON object")
	}
	return nil
}

// checkContentType accepts a request without a Content-Type (the body must still be JSON) or
// with a JSON media type (application/json, or any application/...+json); anything else is
// 415.
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" || ct == "application/json" { // what clients send, without parsing it
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return nil
	}
	return apiError(http.StatusUnsupportedMediaType, fmt.Sprintf(
		"Content-Type %s is not JSON: send the body as JSON with \"Content-Type: application/json\"", webhook.Quote(ct)))
}

// checkKeys walks the top level of a JSON object and checks each key against fields, exactly:
// an unknown key (or a known one in another case) is an error naming it, so are a key given
// twice and a null value. A body that is not an object is left to the decoder, which names
// the problem. Valid JSON (valid is json.Valid(body)) is walked by jsonobj.Members; anything
// else by a json.Decoder, up to where it stops making sense (the decoder then reports it).
func checkKeys(body []byte, valid bool, fields map[string]bool) error {
	var seenBuf [16][]byte
	c := keyCheck{fields: fields, seen: seenBuf[:0]}
	if valid {
		c.walk(body)
	} else {
		c.decode(body)
	}
	return c.errs.Err()
}

// walk checks the keys of body, valid JSON.
func (c *keyCheck) walk(body []byte) {
	_, _ = jsonobj.Members(body, func(key, value []byte) error {
		if !c.add(key, bytes.Equal(value, jsonNull)) {
			return errEnoughKeyErrors
		}
		return nil
	})
}

// decode checks the keys of body with a json.Decoder, up to where body stops being JSON; it
// reports nothing when it gets there, as the decoder reports that.
func (c *keyCheck) decode(body []byte) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			c.errs = nil // malformed: the decoder reports it
			return
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			c.errs = nil
			return
		}
		if !c.add([]byte(key), bytes.Equal(val, jsonNull)) {
			return
		}
	}
}

var (
	jsonNull           = []byte("null")
	errEnoughKeyErrors = errors.New("enough key errors to report")
)

// keyCheck applies checkKeys' rules to the keys of one object, in order.
type keyCheck struct {
	fields map[string]bool
	seen   [][]byte
	errs   webhook.FieldErrors
}

// add checks the next key, whose value is null or not. It returns false once there are enough
// errors to report; the rest would only be counted.
func (c *keyCheck) add(key []byte, null bool) bool {
	switch {
	case !c.fields[string(key)]:
		msg := "is not a field of this request: remove it or correct its spelling"
		for f := range c.fields {
			if strings.EqualFold(f, string(key)) {
				msg = fmt.Sprintf("is not a field of this request: names are case-sensitive, write %q", f)
			}
		}
		c.errs.Add(fieldName(string(key)), msg)
	case c.seenBefore(key):
		c.errs.Add(string(key), "is given twice: give each field once")
	case null:
		c.errs.Add(string(key), "is null: leave the field out, or give it a value")
	}
	c.seen = append(c.seen, key)
	return len(c.errs) <= webhook.FieldErrorsMax
}

// seenBefore reports whether key was checked before. A linear search: every key but those of
// fields adds an error, so an object is given up after at most len(fields)+FieldErrorsMax+1
// keys.
func (c *keyCheck) seenBefore(key []byte) bool {
	for _, k := range c.seen {
		if bytes.Equal(k, key) {
			return true
		}
	}
	return false
}

// fieldName is a request key as an error names it, cut short when it is long or odd.
func fieldName(key string) string {
	if len(key) <= 64 && !webhook.HasUnsafeRunes(key) {
		return key
	}
	q := webhook.Quote(key)
	if len(q) > 96 {
		q = q[:96] + "..."
	}
	return q
}

// requestType is what decodeStrict needs to know of the type of a request body.
type requestType struct {
	fields map[string]bool // the JSON names of its fields
	// flat is true when no struct is reachable from its fields, so that only top-level keys
	// can be unknown ones (checkKeys refuses them); encoding/json does not look into a value
	// with its own UnmarshalJSON, such as json.RawMessage.
	flat bool
}

var requestTypes sync.Map // reflect.Type -> requestType

// requestTypeOf returns the requestType of the struct t points to.
func requestTypeOf(t reflect.Type) requestType {
	if rt, ok := requestTypes.Load(t); ok {
		return rt.(requestType)
	}
	st := t
	for st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	rt := requestType{fields: map[string]bool{}, flat: st.Kind() == reflect.Struct}
	if st.Kind() == reflect.Struct {
		for i := range st.NumField() {
			f := st.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-" || !f.IsExported():
				continue
			case name == "":
				rt.fields[f.Name] = true
			default:
				rt.fields[name] = true
			}
			if f.Anonymous || reachesStruct(f.Type, map[reflect.Type]bool{}) {
				rt.flat = false
			}
		}
	}
	requestTypes.Store(t, rt)
	return rt
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// reachesStruct reports whether decoding into a value of type t may decode into a struct.
func reachesStruct(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	if t.Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return false
	}
	switch t.Kind() {
	case reflect.Struct:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return reachesStruct(t.Elem(), seen)
	}
	return false
}

func fieldError(field, msg string) error {
	return webhook.FieldErrors{{Field: field, Message: msg}}
}

func bodyError(err error) error {
	var (
		mbe *http.MaxBytesError
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return fieldError("body", "is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fieldError("body", "ends in the middle of a JSON value: send a complete JSON object")
	case errors.As(err, &syn):
		return fieldError("body", fmt.Sprintf("is not valid JSON (byte %d: %s): send a JSON object", syn.Offset, syn.Error()))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fieldError("body", fmt.Sprintf("is a JSON %s: send a JSON object", typ.Value))
		}
		return fieldError(typ.Field, fmt.Sprintf("must be %s, not a JSON %s", jsonTypeName(typ.Type.String()), typ.Value))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field := strings.Trim(name, `"`)
		return fieldError(fieldName(field), "is not a field of this request: remove it or correct its spelling")
	}
	return fieldError("body", "cannot be read as the JSON object this request takes: check the body against the API document")
}

func jsonTypeName(goType string) string {
	goType = strings.TrimPrefix(goType, "*")
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean (true or false)"
	case strings.HasPrefix(goType, "int"):
		return "an integer"
	case goType == "[]string":
		return "an array of strings"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "json.RawMessage"):
		return "a JSON object"
	}
	return "a " + goType
}
