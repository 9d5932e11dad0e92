package server

import (
	"encoding/json"
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
	`{"payload":{"filter":null,"filter":null}}`, `{"payload":[null]}`,
}

// checkKeysAgree fails t unless checkKeys' walk of valid JSON finds what the json.Decoder walk
// finds.
func checkKeysAgree(t *testing.T, body []byte) {
	t.Helper()
	if !json.Valid(body) {
		return
	}
	for _, fields := range []map[string]bool{jsonFields(reflect.TypeOf(&api.EmitRequest{})), jsonFields(reflect.TypeOf(&api.Webhook{}))} {
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

// FuzzCheckKeys checks TestCheckKeysWalksAgree's agreement on arbitrary bodies.
//
//	go test ./provider/server -run '^$' -fuzz FuzzCheckKeys -fuzztime 30s
func FuzzCheckKeys(f *testing.F) {
	for _, s := range strictSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkKeysAgree(t, body) })
}
