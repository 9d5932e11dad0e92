// Package jsonobj reads the members of a JSON object without a json.Decoder: for valid JSON
// (json.Valid), in order, with each value as the bytes of the input it spans. It is the one
// home of that walk, shared by the strict request decoding of the REST API (provider/server)
// and the payload overrides of provider/engine/render, which both keep a json.Decoder for
// input that is not valid JSON, so that their errors name the problem as encoding/json does.
package jsonobj

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// Members calls fn with each member of the JSON object data holds, in order, and returns
// whether data is an object; for another JSON value it calls fn for nothing. data must be valid
// JSON (json.Valid): Members does not check it. The key is unescaped as encoding/json does;
// key and value may share data's bytes, and value is as written (not compacted). An error
// from fn stops the walk and is returned.
func Members(data []byte, fn func(key, value []byte) error) (isObject bool, err error) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return false, nil
	}
	for i = skipSpace(data, i+1); i < len(data) && data[i] != '}'; {
		end := valueEnd(data, i) // the key, a string
		key, err := unquote(data[i:end])
		if err != nil {
			return true, err
		}
		i = skipSpace(data, skipSpace(data, end)+1) // past the colon
		end = valueEnd(data, i)
		if err := fn(key, data[i:end]); err != nil {
			return true, err
		}
		if i = skipSpace(data, end); i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return true, nil
}

// unquote returns the string a valid JSON string literal stands for; encoding/json unescapes
// it when it holds an escape or invalid UTF-8 (which json.Valid lets through, and which
// becomes U+FFFD).
func unquote(lit []byte) ([]byte, error) {
	if bytes.IndexByte(lit, '\\') < 0 && utf8.Valid(lit) {
		return lit[1 : len(lit)-1], nil
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// valueEnd returns the end of the JSON value that starts at data[i], in valid JSON.
func valueEnd(data []byte, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 { // the end of the object a number or a literal is in
				return i
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\r', '\n':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}
