package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
)

// strictSeeds are request bodies for the agreement of checkKeys' two walks.
var strictSeeds = []string{
	`{"filter":"update_succeeded","projectName":"load","stackName":"s0","payload":{"benchSeq":4711}}`,
	`{}`, `[]`, `null`, `"x"`, ` { "filter" : null , "payload" : null } `, `{"Filter":"x","FILTER":"y"}`,
	`{"filter":"a","filter":"b","filter":null}`, `{"x":1,"x":2,"y":null,"filter":null,"filter":1}`,
	`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"r":18,"s":19,"t":20,"u":21,"v":22,"w":23,"x":24,"y":25,"z":26}`,
	"{\"\xff\":1}", `{"\u0066ilter":"x","fil\u0000ter":1}`, `{"` + string(make([]byte, 100)) + `":1}`,
	`{"payload":{"filter":null,"filter":null}}`, `{"payload":[null]}`, `{"filter":1,"stackName":true,"payload":"x"}`,
	`{"filter":"\u00ff\ud800","payload":{}}`, `{"filters":["a",1],"active":"yes","name":{}}`, `{"active":true,"groups":null}`,
	`{"sourceContext":{"git":{"repoUrl":"x","nope":1}}}`, `{"operation":"update","inheritSettings":1}`,
}

// strictTypes are the request types of the endpoints that decode strictly.
var strictTypes = []any{&api.EmitRequest{}, &api.Webhook{}, &api.DeploymentSettings{}, &api.CreateDeploymentRequest{}, &api.SecretCheckRequest{}}

func TestRequestTypeFlat(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		v    any
		flat bool
	}{
		{&api.EmitRequest{}, true}, {&api.Webhook{}, true}, {&api.CreateDeploymentRequest{}, true},
		{&api.SecretCheckRequest{}, true}, {&api.DeploymentSettings{}, false},
		{&struct{ A []struct{ B int } }{}, false}, {&struct{ A map[string]*struct{} }{}, false},
		{&struct{ A map[string][]json.RawMessage }{}, true}, {&struct{ A any }{}, true},
	} {
		if got := requestTypeOf(reflect.TypeOf(c.v)).flat; got != c.flat {
			t.Errorf("%T: flat %v, want %v", c.v, got, c.flat)
		}
	}
}

// checkDecodesAgree fails t unless decodeStrict decodes body into a new value of each strict
// type as the json.Decoder with DisallowUnknownFields does, with the same refusal.
func checkDecodesAgree(t *testing.T, body []byte) {
	t.Helper()
	for _, v := range strictTypes {
		typ := reflect.TypeOf(v).Elem()
		got := reflect.New(typ)
		gotErr := decodeStrict(body, got.Interface())
		want := reflect.New(typ)
		var wantErr error
		if err := checkKeys(body, json.Valid(body), requestTypeOf(reflect.TypeOf(v)).fields); err != nil {
			wantErr = err
		} else {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(want.Interface()); err != nil {
				wantErr = bodyError(err)
			} else if _, err := dec.Token(); !errors.Is(err, io.EOF) {
				wantErr = fieldError("body", "has data after the JSON object: send exactly one JSON object")
			}
		}
		if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error() && !caseHint(gotErr.Error(), wantErr.Error())) {
			t.Fatalf("%T %q: error %v, the decoder's %v", v, body, gotErr, wantErr)
		}
		if gotErr == nil && !reflect.DeepEqual(got.Interface(), want.Interface()) {
			t.Fatalf("%T %q: decoded %+v, the decoder %+v", v, body, got.Elem(), want.Elem())
		}
	}
}

// checkKeysAgree fails t unless checkKeys' walk of valid JSON finds what the json.Decoder walk
// finds.
func checkKeysAgree(t *testing.T, body []byte) {
	t.Helper()
	if !json.Valid(body) {
		return
	}
	for _, fields := range []map[string]bool{requestTypeOf(reflect.TypeOf(&api.EmitRequest{})).fields, requestTypeOf(reflect.TypeOf(&api.Webhook{})).fields} {
		walked := keyCheck{fields: fields}
		walked.walk(body)
		decoded := keyCheck{fields: fields}
		decoded.decode(body)
		// The case hint names one field of several that match: compare what is deterministic.
		if len(walked.errs) != len(decoded.errs) {
			t.Fatalf("%q: walk %v, decoder %v", body, walked.errs, decoded.errs)
		}
		for i := range walked.errs {
			w, d := walked.errs[i], decoded.errs[i]
			if w.Field != d.Field || (w.Message != d.Message && !caseHint(w.Message, d.Message)) {
				t.Fatalf("%q: walk %v, decoder %v", body, walked.errs, decoded.errs)
			}
		}
	}
}

func caseHint(a, b string) bool {
	const hint = "is not a field of this request: names are case-sensitive, write "
	return len(a) > len(hint) && len(b) > len(hint) && a[:len(hint)] == hint && b[:len(hint)] == hint
}

func TestCheckKeysWalksAgree(t *testing.T) {
	t.Parallel()
	for _, s := range strictSeeds {
		checkKeysAgree(t, []byte(s))
	}
}

func TestDecodeStrictAgrees(t *testing.T) {
	t.Parallel()
	for _, s := range strictSeeds {
		checkDecodesAgree(t, []byte(s))
	}
}

// FuzzCheckKeys checks the agreements of TestCheckKeysWalksAgree and TestDecodeStrictAgrees on
// arbitrary bodies.
//
//	go test ./provider/server -run '^$' -fuzz FuzzCheckKeys -fuzztime 30s
func FuzzCheckKeys(f *testing.F) {
	for _, s := range strictSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkKeysAgree(t, body)
		checkDecodesAgree(t, body)
	})
}
