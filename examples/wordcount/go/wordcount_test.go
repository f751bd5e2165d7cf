//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"functionstream.dev/sdk/fs"
)

func records(t *testing.T, lines ...string) [][]string {
	t.Helper()
	inputs := make([][]byte, len(lines))
	for i, l := range lines {
		inputs[i] = []byte(l)
	}
	results, err := fs.RunBatch(inputs...)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, r := range results {
		if r.Err != "" {
			t.Fatalf("input failed: %s", r.Err)
		}
		recs := []string{}
		for _, rec := range r.Records {
			recs = append(recs, string(rec))
		}
		got = append(got, recs)
	}
	return got
}

func TestCountsAcrossLines(t *testing.T) {
	fs.ResetTestHost(nil)
	minLength = 0
	got := records(t, "The cat and the hat.", "", "THE END? the_end!")
	want := `[[{"word":"the","count":1} {"word":"cat","count":1} {"word":"and","count":1} {"word":"the","count":2} {"word":"hat","count":1}] [] [{"word":"the","count":3} {"word":"end","count":1} {"word":"the","count":4} {"word":"end","count":2}]]`
	if s := fmtRecords(got); s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
	if string(fs.Host.State["the"]) != "4" || string(fs.Host.State["end"]) != "2" {
		t.Errorf("state: %v", fs.Host.State)
	}
	if len(fs.Host.Logs) != 1 || fs.Host.Logs[0].Text != "wordcount: empty line" || fs.Host.Logs[0].Level != fs.Info {
		t.Errorf("logs: %+v", fs.Host.Logs)
	}
}

func TestMinLength(t *testing.T) {
	fs.ResetTestHost(map[string]string{"min_length": "3"})
	minLength = 0
	defer func() { minLength = 0 }()
	got := records(t, "a big cat is on it", "x y")
	if fmtRecords(got) != `[[{"word":"big","count":1} {"word":"cat","count":1}] []]` {
		t.Errorf("got %s", fmtRecords(got))
	}
	if len(fs.Host.Logs) != 0 {
		t.Errorf("a line with short words only is not empty: %+v", fs.Host.Logs)
	}
	fs.ResetTestHost(map[string]string{"min_length": "zero"})
	minLength = 0
	if got := fmtRecords(records(t, "a b")); got != `[[{"word":"a","count":1} {"word":"b","count":1}]]` {
		t.Errorf("got %s", got)
	}
	if len(fs.Host.Logs) != 1 || fs.Host.Logs[0].Text != `wordcount: config min_length="zero" is not an integer from 1 to 1000000; using 1` {
		t.Errorf("logs: %+v", fs.Host.Logs)
	}
	for v, ok := range map[string]bool{"1": true, "1000000": true, "0": false, "1000001": false, "+5": false, " 5": false, "": false, "zero": false, "0000003": true} {
		if _, good := parseMinLength(v); good != ok {
			t.Errorf("parseMinLength(%q) = %v", v, good)
		}
	}
}

func fmtRecords(got [][]string) string {
	parts := make([]string, len(got))
	for i, r := range got {
		parts[i] = "[" + strings.Join(r, " ") + "]"
	}
	return "[" + strings.Join(parts, " ") + "]"
}
