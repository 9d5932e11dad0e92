package render

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// objectSeeds are objects and near-objects for the agreement of parseObject's two paths.
var objectSeeds = []string{
	``, ` `, `null`, `{}`, ` { } `, `[]`, `"x"`, `1`, `true`, `{"a":1} {}`, `{"a":1}x`, `{"a":1`, `{"a":}`,
	`{"a" 1}`, `{a:1}`, `{"a":1,}`, `{"a":1,"a":2}`, `{"a":1,"b":2,"a":3}`, "{\"a\":\"\xff\"}",
	`{"a":1} `, "\n{\n\t\"a\" : [ 1 , 2 ] ,\r\n \"b\" : { \"c\" : \"d e\" } }\n",
	`{"a":-1.5e+3,"b":true,"c":false,"d":null,"e":"","f":[],"g":{},"h":[{"i":[{}]}]}`,
	`{"k\"ey":1,"k\\ey":2,"\u00e9":3,"\ud800":4,"<&>":5,"\u2028":6,"tab\t":7,"é":8}`,
	`{"s":"a \"quoted\" \\ string } with ] brackets, commas and : colons"}`,
	`{"a":{"b":{"c":{"d":[[[[[]]]]]}}}}`, `{"x":1,"X":2}`, `{"":1,"":2}`,
	`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"r":18,"a":19}`,
	`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"q":18}`,
	`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"p":17}`,
}

// checkParseObject fails t unless parseObject reads data exactly as decodeObject, the
// json.Decoder path, does (behind the UTF-8 check they share), and unless bytes writes each
// key as marshal does.
func checkParseObject(t *testing.T, data []byte) {
	t.Helper()
	got, gotErr := parseObject(data)
	if !utf8.Valid(data) {
		if gotErr == nil || gotErr.Error() != "is not valid UTF-8" {
			t.Fatalf("%q: got %v, want the UTF-8 error", data, gotErr)
		}
		return
	}
	want, wantErr := decodeObject(data)
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("%q: error %v, the decoder's %v", data, gotErr, wantErr)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d members, the decoder's %d", data, len(got), len(want))
	}
	for i := range got {
		if got[i].key != want[i].key || !bytes.Equal(got[i].value, want[i].value) {
			t.Fatalf("%q: member %d is %q:%s, the decoder's %q:%s", data, i, got[i].key, got[i].value, want[i].key, want[i].value)
		}
	}
	if gotErr != nil {
		return
	}
	b, err := got.bytes()
	if err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	w.WriteByte('{')
	for i, m := range got {
		if i > 0 {
			w.WriteByte(',')
		}
		k, err := marshal(m.key)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(k)
		w.WriteByte(':')
		w.Write(m.value)
	}
	w.WriteByte('}')
	if !bytes.Equal(b, w.Bytes()) {
		t.Fatalf("%q: bytes %s, with marshal's keys %s", data, b, w.Bytes())
	}
}

// TestParseObjectPathsAgree: valid JSON is split without a json.Decoder; the members, the
// errors and the encoding are those of the decoder path.
func TestParseObjectPathsAgree(t *testing.T) {
	t.Parallel()
	for _, s := range objectSeeds {
		checkParseObject(t, []byte(s))
	}
	for i := 0; i < 40; i++ {
		var b strings.Builder
		b.WriteByte('{')
		for j := 0; j < i; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"k`)
			b.WriteString(strings.Repeat("x", j%7))
			b.WriteString(string(rune('a' + j%26)))
			b.WriteString(`": [`)
			b.WriteString(strings.Repeat(`{"n": 1}, `, j%3))
			b.WriteString(`0]`)
		}
		b.WriteByte('}')
		checkParseObject(t, []byte(b.String()))
	}
}

// FuzzParseObject checks TestParseObjectPathsAgree and TestOver on arbitrary input.
//
//	go test ./provider/engine/render -run '^$' -fuzz FuzzParseObject -fuzztime 30s
func FuzzParseObject(f *testing.F) {
	for _, s := range objectSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParseObject(t, data)
		if o, err := parseObject(data); err == nil {
			for _, base := range overBases {
				checkOver(t, o, []byte(base))
			}
		}
	})
}

// overBases are encoded payloads for over.
var overBases = []string{
	`{}`, `{"a":1}`, `{"user":{"name":"pulumi-webhooks"},"organization":{"name":"acme"},"stackName":"prod","k\"ey":2,"é":[1,2]}`,
}

// checkOver fails t unless o.over(base) is what replacing and appending o's members on base's
// members, as a list, encodes to.
func checkOver(t *testing.T, o object, base []byte) {
	t.Helper()
	want, isObject, err := splitObject(base)
	if err != nil || !isObject {
		t.Fatalf("base %s: %v", base, err)
	}
	for _, m := range o {
		if i := want.index(m.key); i >= 0 {
			want[i].value = m.value
		} else {
			want = append(want, m)
		}
	}
	wantBytes, err := want.bytes()
	if err != nil {
		t.Fatal(err)
	}
	got, err := o.over(base)
	if err != nil || !bytes.Equal(got, wantBytes) {
		t.Fatalf("%v over %s: %s, %v; want %s", o, base, got, err, wantBytes)
	}
}

func TestOver(t *testing.T) {
	t.Parallel()
	for _, s := range objectSeeds {
		o, err := parseObject([]byte(s))
		if err != nil {
			continue
		}
		for _, base := range overBases {
			checkOver(t, o, []byte(base))
		}
	}
	many := make(object, 40)
	for i := range many {
		many[i] = member{key: string(rune('a' + i)), value: []byte("1")}
	}
	checkOver(t, many, []byte(`{"a":0,"x":0,"é":0}`))
}
