package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/jsonobj"
)

// member is one field of a JSON object, its value kept as compact JSON.
type member struct {
	key   string
	value json.RawMessage
}

// object is a JSON object that keeps its field order, so output is stable.
type object []member

// index returns the position of key, or -1.
func (o object) index(key string) int {
	for i, m := range o {
		if m.key == key {
			return i
		}
	}
	return -1
}

// errDuplicateKey reports a key given twice in one object.
type errDuplicateKey struct{ key string }

func (e errDuplicateKey) Error() string { return fmt.Sprintf("field %q is given twice", e.key) }

// parseObject reads one JSON object, keeping field order. Anything but a single object of
// valid UTF-8 JSON is an error; so is a key given twice. The members' values may share data's
// bytes.
//
// Valid JSON is split by jsonobj.Members, without a json.Decoder; anything else goes to
// decodeObject, whose json.Decoder names the problem. Both add members through objectBuilder,
// so they agree on every object (TestParseObjectPathsAgree, FuzzParseObject).
func parseObject(data []byte) (object, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("is not valid UTF-8")
	}
	if json.Valid(data) {
		if o, isObject, err := splitObject(data); isObject {
			return o, err
		}
	}
	return decodeObject(data)
}

// splitObject is parseObject for valid JSON (json.Valid); isObject is false when data holds
// another JSON value.
func splitObject(data []byte) (o object, isObject bool, err error) {
	var b objectBuilder
	isObject, err = jsonobj.Members(data, func(key, value []byte) error { return b.add(string(key), value) })
	if err != nil {
		return nil, isObject, err
	}
	return b.out, isObject, nil
}

// objectBuilder collects an object's members in order and refuses a key given twice.
type objectBuilder struct {
	out  object
	seen map[string]bool // once the object is large enough for a linear search to cost
}

// objectBuilderLinearMax is how many members objectBuilder searches linearly for a duplicate.
const objectBuilderLinearMax = 16

// add appends key with raw, one valid JSON value, compacted.
func (b *objectBuilder) add(key string, raw []byte) error {
	if b.seen != nil {
		if b.seen[key] {
			return errDuplicateKey{key}
		}
		b.seen[key] = true
	} else {
		if b.out.index(key) >= 0 {
			return errDuplicateKey{key}
		}
		if len(b.out) == objectBuilderLinearMax {
			b.seen = make(map[string]bool, 2*objectBuilderLinearMax)
			for _, m := range b.out {
				b.seen[m.key] = true
			}
			b.seen[key] = true
		}
	}
	value := raw
	if !isCompact(raw) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return fmt.Errorf("is not valid JSON: %w", err)
		}
		value = buf.Bytes()
	}
	b.out = append(b.out, member{key: key, value: value})
	return nil
}

// isCompact reports whether raw, one valid JSON value, has no white space outside its strings:
// json.Compact would leave it as it is.
func isCompact(raw []byte) bool {
	inString := false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\r' || c == '\n'):
			return false
		}
	}
	return true
}

// decodeObject is parseObject with a json.Decoder, which names what makes data something else
// than one JSON object.
func decodeObject(data []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("is not valid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("must be a JSON object, not %s", jsonTypeOfToken(tok))
	}
	var b objectBuilder
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("is not valid JSON: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("is not valid JSON: object key is not a string")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("is not valid JSON: %w", err)
		}
		if err := b.add(key, raw); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("is not valid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("is not valid JSON: unexpected data after the object")
	}
	return b.out, nil
}

func jsonTypeOfToken(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "an array"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return "null"
	}
}

// marshal encodes v as compact JSON without HTML escaping, so links and Slack's <url|text>
// syntax stay readable.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// bytes encodes the object in its field order.
func (o object) bytes() ([]byte, error) {
	n := 2
	for _, m := range o {
		n += len(m.key) + len(m.value) + 4
	}
	buf := append(make([]byte, 0, n), '{')
	var err error
	for i, m := range o {
		if i > 0 {
			buf = append(buf, ',')
		}
		if buf, err = appendMember(buf, m.key, m.value); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

// over encodes the object base, compact JSON as encoding/json writes it, with o's members
// over it: each replaces base's field of its key in place, and those base lacks follow base's
// fields in o's order. The result is what bytes gives for base's members so replaced and
// extended.
func (o object) over(base []byte) ([]byte, error) {
	n := len(base)
	for _, m := range o {
		n += len(m.key) + len(m.value) + 4
	}
	buf := append(make([]byte, 0, n), '{')
	var usedBuf [16]bool
	used := usedBuf[:0]
	if len(o) > len(usedBuf) {
		used = make([]bool, 0, len(o))
	}
	used = used[:len(o)]
	fields := 0
	isObject, err := jsonobj.Members(base, func(key, value []byte) error {
		for i, m := range o {
			if m.key == string(key) {
				value, used[i] = m.value, true
				break
			}
		}
		if fields++; fields > 1 {
			buf = append(buf, ',')
		}
		var err error
		buf, err = appendMember(buf, key, value)
		return err
	})
	if err == nil && !isObject {
		err = errors.New("not a JSON object")
	}
	if err != nil {
		return nil, err
	}
	for i, m := range o {
		if used[i] {
			continue
		}
		if fields++; fields > 1 {
			buf = append(buf, ',')
		}
		if buf, err = appendMember(buf, m.key, m.value); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

// appendMember appends "key":value, the key encoded as marshal does.
func appendMember[K string | []byte](buf []byte, key K, value []byte) ([]byte, error) {
	if plainKey(key) {
		buf = append(buf, '"')
		buf = append(buf, key...)
		buf = append(buf, '"')
	} else {
		k, err := marshal(string(key))
		if err != nil {
			return nil, err
		}
		buf = append(buf, k...)
	}
	buf = append(buf, ':')
	return append(buf, value...), nil
}

// plainKey reports whether marshal would encode key as it is, in quotes: printable ASCII
// without a quote or a backslash.
func plainKey[K string | []byte](key K) bool {
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
