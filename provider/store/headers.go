package store

import (
	"encoding/json"
	"fmt"
	"sort"
)

// EncodeHeaders encodes a header map as the backends store it: the JSON object json.Marshal
// gives ("{}" for none).
func EncodeHeaders(h map[string][]string) (string, error) {
	if len(h) == 0 {
		return "{}", nil
	}
	// The delivery loop encodes two header maps per attempt in its one writer goroutine:
	// written by hand, the same bytes as json.Marshal cost a fraction of its reflection.
	keys := make([]string, 0, len(h))
	size := 2
	for k, vs := range h {
		keys = append(keys, k)
		size += len(k) + 6
		for _, v := range vs {
			size += len(v) + 3
		}
	}
	sort.Strings(keys)
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		vs := h[k]
		if vs == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, v := range vs {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, v)
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	return string(b), nil
}

// appendJSONString appends s as encoding/json writes it: plain printable ASCII as is, anything
// else (quotes, backslashes, control characters, HTML characters, non-ASCII) through
// json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// DecodeAttemptHeaders sets a's request and response headers from their stored JSON (as
// EncodeHeaders wrote it); an empty object reads as nil.
func DecodeAttemptHeaders(a *Attempt, reqH, respH string) error {
	if err := json.Unmarshal([]byte(reqH), &a.RequestHeaders); err != nil {
		return fmt.Errorf("attempt %d: decode request headers: %w", a.ID, err)
	}
	if err := json.Unmarshal([]byte(respH), &a.ResponseHeaders); err != nil {
		return fmt.Errorf("attempt %d: decode response headers: %w", a.ID, err)
	}
	if len(a.RequestHeaders) == 0 {
		a.RequestHeaders = nil
	}
	if len(a.ResponseHeaders) == 0 {
		a.ResponseHeaders = nil
	}
	return nil
}
