// Command wordcount is the stateful word-count example in Go (the same
// function as examples/wordcount/wordcount.c; see its README.md).
//
// Each input is a line. A word is a run of ASCII letters and digits,
// lowercased; for each word at least min_length long (config, default 1) it
// adds 1 to the state key <word> and emits {"word":"<word>","count":<count>}.
package main

import (
	"strconv"

	"functionstream.dev/sdk/fs"
)

// minLength is config min_length, read on the first input (0: not read yet),
// like the C example, so a bad value is logged while a message is processed.
var minLength int

// Reused between inputs, so counting allocates nothing.
var word, record []byte

func init() {
	fs.HandleEmit(countLine)
}

// readMinLength reads config min_length once per instance: default 1, and a
// bad value is logged and replaced by 1.
func readMinLength() int {
	if minLength > 0 {
		return minLength
	}
	minLength = 1
	if v, ok := fs.Config("min_length"); ok {
		if n, good := parseMinLength(v); good {
			minLength = n
		} else {
			fs.Log(fs.Info, `wordcount: config min_length="`+prefix(v, 40)+
				`" is not an integer from 1 to 1000000; using 1`)
		}
	}
	return minLength
}

// countLine counts the words of one line and emits one record per counted word.
// A word longer than 4096 bytes (the state key limit) makes fs.StateAdd trap,
// which fails the input with nothing it counted kept.
func countLine(line []byte, out *fs.Output) error {
	min := readMinLength()
	words := 0
	for i := 0; i < len(line); {
		if !isWordByte(line[i]) {
			i++
			continue
		}
		start := i
		for i < len(line) && isWordByte(line[i]) {
			i++
		}
		words++
		if i-start < min {
			continue
		}
		word = word[:0]
		for _, c := range line[start:i] {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			word = append(word, c)
		}
		count := fs.StateAdd(string(word), 1)
		record = append(record[:0], `{"word":"`...)
		record = append(record, word...)
		record = append(record, `","count":`...)
		record = strconv.AppendInt(record, count, 10)
		record = append(record, '}')
		out.Emit(record)
	}
	if words == 0 {
		fs.Log(fs.Info, "wordcount: empty line")
	}
	return nil
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// parseMinLength accepts 1 to 7 decimal digits (no sign, no spaces) from 1 to 1000000.
func parseMinLength(v string) (int, bool) {
	if len(v) == 0 || len(v) > 7 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int(v[i]-'0')
	}
	return n, n >= 1 && n <= 1000000
}

func prefix(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// main is required by the Go toolchain; a reactor module never calls it.
func main() {}
