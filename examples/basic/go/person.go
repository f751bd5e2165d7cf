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
	// Unmarshal accepts "null" into a map (leaving it nil): require an object.
	if start := bytes.TrimLeft(input, " \t\r\n"); len(start) == 0 || start[0] != '{' {
		return nil, errors.New("basic: input is not a JSON object")
	}
	// A map, not a struct: struct fields match keys case-insensitively
	// ("NAME" would count as "name"). Map keys match exactly, the last
	// duplicate wins, and Unmarshal rejects trailing data and invalid JSON.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(input, &fields); err != nil {
		return nil, errors.New("basic: input is not a JSON object: " + err.Error())
	}
	rawName, ok := fields["name"]
	if !ok {
		return nil, errors.New("basic: \"name\" is missing")
	}
	if rawName[0] != '"' {
		return nil, errors.New("basic: \"name\" is not a string: " + string(rawName))
	}
	if err := checkSurrogates(rawName); err != nil {
		return nil, err
	}
	var name string
	if err := json.Unmarshal(rawName, &name); err != nil {
		return nil, errors.New("basic: \"name\": " + err.Error())
	}
	rawMoney, ok := fields["money"]
	if !ok {
		return nil, errors.New("basic: \"money\" is missing")
	}
	money, err := integer("money", rawMoney)
	if err != nil {
		return nil, err
	}
	if money == math.MaxInt64 {
		return nil, errors.New("basic: \"money\" + 1 overflows int64")
	}
	var expected int64
	if raw, ok := fields["expected"]; ok && string(raw) != "null" {
		if expected, err = integer("expected", raw); err != nil {
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

// integer parses a JSON number with no fraction or exponent that fits int64.
// raw is valid JSON already (Unmarshal checked it).
func integer(key string, raw json.RawMessage) (int64, error) {
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
func appendJSONString(out []byte, s string) []byte {
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
