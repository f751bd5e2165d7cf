package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// person is the "basic" function: one JSON object in, with a string "name",
// an integer "money" and an optional integer (or null) "expected"; out
//
//	{"name":<name>,"money":<money+1>,"expected":<expected or 0>}
//
// Keys may come in any order, unknown keys are ignored, and a repeated key's
// last value wins. Anything else is an error (the input fails).
func person(input []byte) ([]byte, error) {
	// encoding/json would replace bad UTF-8 with U+FFFD; reject it instead.
	if !utf8.Valid(input) {
		return nil, errors.New("basic: input is not valid UTF-8")
	}
	// json.Valid checks the whole input is one JSON value (nested unknown
	// values included, nothing after it); topLevel then reads its keys. (Not
	// Unmarshal into a struct: struct fields match keys case-insensitively,
	// and a map of json.RawMessage costs 10x the time of the rest.)
	if !json.Valid(input) {
		return nil, errors.New("basic: input is not JSON")
	}
	f, err := topLevel(input)
	if err != nil {
		return nil, err
	}
	if f.name == nil {
		return nil, errors.New("basic: \"name\" is missing")
	}
	if f.name[0] != '"' {
		return nil, errors.New("basic: \"name\" is not a string: " + string(f.name))
	}
	if err := checkSurrogates(f.name); err != nil {
		return nil, err
	}
	name := f.name[1 : len(f.name)-1] // no escapes: the raw text is the string
	if bytes.IndexByte(name, '\\') >= 0 {
		var s string
		if err := json.Unmarshal(f.name, &s); err != nil {
			return nil, errors.New("basic: \"name\": " + err.Error())
		}
		name = []byte(s)
	}
	if f.money == nil {
		return nil, errors.New("basic: \"money\" is missing")
	}
	money, err := integer("money", f.money)
	if err != nil {
		return nil, err
	}
	if money == math.MaxInt64 {
		return nil, errors.New("basic: \"money\" + 1 overflows int64")
	}
	var expected int64
	if f.expected != nil && string(f.expected) != "null" {
		if expected, err = integer("expected", f.expected); err != nil {
			return nil, err
		}
	}
	out := make([]byte, 0, len(name)+64)
	out = append(out, `{"name":`...)
	out = appendJSONString(out, name)
	out = append(out, `,"money":`...)
	out = strconv.AppendInt(out, money+1, 10)
	out = append(out, `,"expected":`...)
	out = strconv.AppendInt(out, expected, 10)
	return append(out, '}'), nil
}

// fields holds the raw JSON text of the keys the function reads (nil: absent).
type fields struct{ name, money, expected []byte }

// topLevel returns the values of the top-level keys name, money and expected
// of a JSON object, the last one where a key repeats. data must be valid JSON
// (json.Valid), so the scan only has to find where each value ends.
func topLevel(data []byte) (fields, error) {
	var f fields
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return f, errors.New("basic: input is not a JSON object")
	}
	i = skipSpace(data, i+1)
	for data[i] != '}' {
		end := skipValue(data, i) // the key, a string
		key := data[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 { // an escaped key, e.g. "n\u0061me"
			var s string
			if err := json.Unmarshal(data[i:end], &s); err != nil {
				return f, errors.New("basic: bad key: " + err.Error())
			}
			key = []byte(s)
		}
		i = skipSpace(data, skipSpace(data, end)+1) // past the colon
		end = skipValue(data, i)
		switch string(key) {
		case "name":
			f.name = data[i:end]
		case "money":
			f.money = data[i:end]
		case "expected":
			f.expected = data[i:end]
		}
		i = skipSpace(data, end)
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return f, nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns where the valid JSON value starting at data[i] ends.
func skipValue(data []byte, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; data[i] != '"'; i++ {
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
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 { // the end of the enclosing object: a scalar ended here
				return i
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// integer parses a JSON number with no fraction or exponent that fits int64.
// raw is valid JSON already (Unmarshal checked it).
func integer(key string, raw []byte) (int64, error) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) ||
		bytes.ContainsAny(raw, ".eE") {
		return 0, errors.New("basic: \"" + key + "\" is not an integer: " + string(raw))
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, errors.New("basic: \"" + key + "\" does not fit in int64: " + string(raw))
	}
	return v, nil
}

// checkSurrogates rejects a JSON string literal holding a \u escape of a lone
// UTF-16 surrogate: it has no UTF-8 form (encoding/json would turn it into
// U+FFFD silently).
func checkSurrogates(lit []byte) error {
	for i := 0; i < len(lit); i++ {
		if lit[i] != '\\' {
			continue
		}
		i++
		if lit[i] != 'u' {
			continue
		}
		r := hex4(lit[i+1 : i+5])
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return errors.New("basic: \"name\" holds a lone UTF-16 surrogate escape")
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(lit) || lit[i+1] != '\\' || lit[i+2] != 'u' {
				return errors.New("basic: \"name\" holds a lone UTF-16 surrogate escape")
			}
			if low := hex4(lit[i+3 : i+7]); low < 0xDC00 || low > 0xDFFF {
				return errors.New("basic: \"name\" holds a lone UTF-16 surrogate escape")
			}
			i += 6
		}
	}
	return nil
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		}
	}
	return r
}

// appendJSONString appends s as a JSON string the way Python's
// json.dumps(s, ensure_ascii=False) writes it: non-ASCII characters raw (as
// UTF-8), `"` and `\` escaped, control characters as \n, \r, \t, \b, \f or
// \u00XX. (encoding/json would also escape <, >, &, U+2028 and U+2029.)
func appendJSONString(out []byte, s []byte) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			out = append(out, '\\', c)
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		default:
			if c < 0x20 {
				out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			} else {
				out = append(out, c)
			}
		}
	}
	return append(out, '"')
}
