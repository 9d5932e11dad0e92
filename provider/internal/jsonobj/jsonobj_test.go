package jsonobj

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// seeds are JSON texts, valid and not, objects and not.
var seeds = []string{
	``, ` `, `null`, `{}`, ` { } `, `[]`, `"x"`, `1`, `true`, `{"a":1} {}`, `{"a":1`, `{"a":1,}`,
	`{"a":1,"a":2}`, "{\"a\":\"\xff\"}", "\n{\n\t\"a\" : [ 1 , 2 ] ,\r\n \"b\" : { \"c\" : \"d e\" } }\n",
	`{"a":-1.5e+3,"b":true,"c":false,"d":null,"e":"","f":[],"g":{},"h":[{"i":[{}]}]}`,
	`{"a":1 ,"b":null }`, `{"a":[1,{"b":"}"}],"c":"]"}`,
	`{"k\"ey":1,"k\\ey":2,"\u00e9":3,"\ud800":4,"<&>":5,"\u2028":6,"tab\t":7,"é":8}`,
	`{"s":"a \"quoted\" \\ string } with ] brackets, commas and : colons"}`,
	`{"a":{"b":{"c":{"d":[[[[[]]]]]}}}}`, `{"":1,"x":"\\"}`, "{\"\x90\":0}",
}

type pair struct{ key, value string }

// decoded walks data with a json.Decoder, as the callers of Members do for input that is not
// valid JSON: the members' keys, and their values compacted.
func decoded(t *testing.T, data []byte) (pairs []pair, isObject bool) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, pair{tok.(string), buf.String()})
	}
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("%q: data after the object", data)
	}
	return pairs, true
}

// check fails t unless Members reads valid JSON data as a json.Decoder does.
func check(t *testing.T, data []byte) {
	t.Helper()
	if !json.Valid(data) {
		return // Members requires valid JSON
	}
	want, wantObject := decoded(t, data)
	var got []pair
	isObject, err := Members(data, func(key, value []byte) error {
		var buf bytes.Buffer
		if err := json.Compact(&buf, value); err != nil {
			t.Fatalf("%q: value %q of %q is not one JSON value: %v", data, value, key, err)
		}
		got = append(got, pair{string(key), buf.String()})
		return nil
	})
	if err != nil || isObject != wantObject {
		t.Fatalf("%q: Members says object %v, error %v; the decoder says object %v", data, isObject, err, wantObject)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d members %q, the decoder's %d %q", data, len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%q: member %d is %q, the decoder's %q", data, i, got[i], want[i])
		}
	}
}

func TestMembers(t *testing.T) {
	t.Parallel()
	for _, s := range seeds {
		check(t, []byte(s))
	}
}

func TestMembersStops(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	n := 0
	isObject, err := Members([]byte(`{"a":1,"b":2,"c":3}`), func(key, _ []byte) error {
		if n++; string(key) == "b" {
			return stop
		}
		return nil
	})
	if !isObject || !errors.Is(err, stop) || n != 2 {
		t.Errorf("object %v, error %v after %d members; want true, stop after 2", isObject, err, n)
	}
}

// FuzzMembers checks TestMembers' agreement on arbitrary valid JSON.
//
//	go test ./provider/internal/jsonobj -run '^$' -fuzz FuzzMembers -fuzztime 30s
func FuzzMembers(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { check(t, data) })
}
