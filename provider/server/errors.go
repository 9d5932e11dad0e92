package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/api"
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
	return apiError(http.StatusNotFound, fmt.Sprintf("webhook %q not found", ref.String()))
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
		body.Code, body.Message = http.StatusBadRequest, fe.Error()
		for _, e := range fe {
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

// decodeJSON reads one JSON object from the request body into v, strictly: unknown fields, a
// wrong type, trailing data and malformed JSON are field errors naming what is wrong; a body
// over the size limit comes back as the *http.MaxBytesError the server maps to 413.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fieldError("body", "has data after the JSON object: send exactly one JSON object")
	}
	return nil
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
		return fieldError(field, "is not a field of this request: remove it or correct its spelling")
	}
	return fieldError("body", fmt.Sprintf("cannot be read: %v", err))
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
