package refdocs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The reference documents the facts are generated from, by file name.
const (
	SourcePage    = "pulumi-cloud-webhooks.md"
	SourceSchema  = "pulumiservice-v1.3.0-webhook-schema.json"
	SourceOpenAPI = "pulumi-cloud-webhooks-openapi.json"
)

// openAPITitle replaces the document's own title, which is prose; OpenAPI requires one.
const openAPITitle = "pulumi-webhooks reference facts: Pulumi Cloud webhook endpoints"

// Generate reads the reference documents in dir and returns every fact file, keyed by name, as
// it must be checked in.
func Generate(dir string) (map[string][]byte, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reference document %s: %w (give the directory that holds %s, %s and %s)",
				name, err, SourcePage, SourceSchema, SourceOpenAPI)
		}
		return b, nil
	}
	out := map[string][]byte{}

	schema, err := read(SourceSchema)
	if err != nil {
		return nil, err
	}
	if out[ProviderSchema], err = stripProse(SourceSchema, schema, nil); err != nil {
		return nil, err
	}

	api, err := read(SourceOpenAPI)
	if err != nil {
		return nil, err
	}
	// OpenAPI requires a title and a description on every response: ours are the status text.
	required := func(path []string, v *node) {
		switch n := len(path); {
		case n == 2 && path[0] == "info" && path[1] == "title":
			*v = stringNode(openAPITitle)
		case n >= 2 && path[n-2] == "responses" && v.kind == '{':
			code, err := strconv.Atoi(path[n-1])
			text := http.StatusText(code)
			if err != nil || text == "" {
				text = "Response"
			}
			v.keys = append([]string{"description"}, v.keys...)
			v.vals = append([]node{stringNode(text)}, v.vals...)
		}
	}
	if out[OpenAPI], err = stripProse(SourceOpenAPI, api, required); err != nil {
		return nil, err
	}

	page, err := read(SourcePage)
	if err != nil {
		return nil, err
	}
	if out[Payloads], err = examplesFromPage(page); err != nil {
		return nil, err
	}
	return out, nil
}

// Check regenerates the facts from the documents in dir and names each checked-in file that
// differs from what they give.
func Check(dir string) ([]string, error) {
	want, err := Generate(dir)
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, name := range Names() {
		got, err := Read(name)
		if err != nil || !bytes.Equal(got, want[name]) {
			stale = append(stale, name)
		}
	}
	return stale, nil
}

// examplesFromPage collects the JSON example under each level-5 heading of the webhooks page
// into one object keyed by heading, in page order.
func examplesFromPage(page []byte) ([]byte, error) {
	obj := node{kind: '{'}
	var heading string
	var block *bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(page))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case block != nil && strings.TrimSpace(line) == "```":
			ex, err := parseJSON(block.Bytes())
			if err != nil {
				return nil, fmt.Errorf("%s: the example under %q is not JSON: %w", SourcePage, heading, err)
			}
			obj.keys = append(obj.keys, heading)
			obj.vals = append(obj.vals, ex)
			block, heading = nil, ""
		case block != nil:
			block.WriteString(line)
			block.WriteByte('\n')
		case strings.HasPrefix(line, "##### "):
			heading = strings.TrimSpace(strings.TrimPrefix(line, "##### "))
		case strings.TrimSpace(line) == "```json" && heading != "":
			block = &bytes.Buffer{}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if block != nil {
		return nil, fmt.Errorf("%s: the example under %q has no closing fence", SourcePage, heading)
	}
	if len(obj.keys) == 0 {
		return nil, fmt.Errorf("%s: no JSON example under a level-5 heading", SourcePage)
	}
	return encode(obj)
}

// stripProse removes every description and summary (the documents' sentences) from a JSON
// document, keeping key order; edit may then rewrite each value by its path.
func stripProse(name string, doc []byte, edit func(path []string, v *node)) ([]byte, error) {
	root, err := parseJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("reference document %s: %w", name, err)
	}
	var walk func(path []string, v *node)
	walk = func(path []string, v *node) {
		switch v.kind {
		case '{':
			keys, vals := v.keys[:0:0], v.vals[:0:0]
			for i, k := range v.keys {
				val := v.vals[i]
				// A property may be called "description"; prose is always a string.
				if (k == "description" || k == "summary") && val.kind == '"' {
					continue
				}
				walk(append(path[:len(path):len(path)], k), &val)
				keys, vals = append(keys, k), append(vals, val)
			}
			v.keys, v.vals = keys, vals
		case '[':
			for i := range v.vals {
				walk(path, &v.vals[i])
			}
		}
		if edit != nil {
			edit(path, v)
		}
	}
	walk(nil, &root)
	return encode(root)
}

// node is a decoded JSON value that keeps the order of object keys. kind is '{', '[', '"'
// (a string) or 0 (number, boolean or null, kept in raw).
type node struct {
	kind byte
	keys []string
	vals []node
	raw  json.RawMessage
}

func stringNode(s string) node {
	b, _ := marshalString(s)
	return node{kind: '"', raw: b}
}

func parseJSON(b []byte) (node, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return node{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return node{}, errors.New("data after the JSON value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder) (node, error) {
	tok, err := dec.Token()
	if err != nil {
		return node{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := node{kind: byte(t)}
		for dec.More() {
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return node{}, err
				}
				n.keys = append(n.keys, k.(string))
			}
			v, err := parseValue(dec)
			if err != nil {
				return node{}, err
			}
			n.vals = append(n.vals, v)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return node{}, err
		}
		return n, nil
	case string:
		b, err := marshalString(t)
		return node{kind: '"', raw: b}, err
	case json.Number:
		return node{raw: json.RawMessage(t.String())}, nil
	default: // bool or nil
		b, err := json.Marshal(t)
		return node{raw: b}, err
	}
}

// marshalString encodes s without HTML escaping, so URLs and markup stay readable.
func marshalString(s string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// encode writes n as indented JSON with a final newline.
func encode(n node) ([]byte, error) {
	var compact bytes.Buffer
	var write func(n node) error
	write = func(n node) error {
		switch n.kind {
		case '{', '[':
			open, close := byte('{'), byte('}')
			if n.kind == '[' {
				open, close = '[', ']'
			}
			compact.WriteByte(open)
			for i, v := range n.vals {
				if i > 0 {
					compact.WriteByte(',')
				}
				if n.kind == '{' {
					k, err := marshalString(n.keys[i])
					if err != nil {
						return err
					}
					compact.Write(k)
					compact.WriteByte(':')
				}
				if err := write(v); err != nil {
					return err
				}
			}
			compact.WriteByte(close)
		default:
			compact.Write(n.raw)
		}
		return nil
	}
	if err := write(n); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
