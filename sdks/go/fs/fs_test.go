//go:build !wasip1

package fs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func register(t *testing.T, fn func(input []byte, out *Output) error) {
	t.Helper()
	handler = nil
	t.Cleanup(func() { handler = nil })
	HandleEmit(fn)
}

func TestBatchFramingRecordsAndErrors(t *testing.T) {
	register(t, func(in []byte, out *Output) error {
		switch string(in) {
		case "fail":
			out.EmitString("dropped")
			return errors.New("bad input: fail")
		case "none":
			return nil
		case "panic":
			var m map[string]int
			m["x"] = 1
		}
		for _, w := range strings.Fields(string(in)) {
			out.EmitString(w)
		}
		return nil
	})
	got, err := RunBatch([]byte("a b c"), []byte("fail"), []byte("none"), []byte("panic"), []byte(""))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("want 5 results, got %d", len(got))
	}
	if len(got[0].Records) != 3 || string(got[0].Records[2]) != "c" || got[0].Err != "" {
		t.Errorf("records: %+v", got[0])
	}
	if got[1].Err != "bad input: fail" || got[1].Records != nil {
		t.Errorf("failure: %+v", got[1])
	}
	if got[2].Err != "" || len(got[2].Records) != 0 {
		t.Errorf("filter: %+v", got[2])
	}
	if !strings.HasPrefix(got[3].Err, "panic: assignment to entry in nil map") {
		t.Errorf("panic: %+v", got[3])
	}
	if got[4].Err != "" || len(got[4].Records) != 0 {
		t.Errorf("empty input: %+v", got[4])
	}
}

func TestBatchRejectsMalformedInput(t *testing.T) {
	register(t, func([]byte, *Output) error { return nil })
	for _, in := range [][]byte{
		nil,
		{1, 0, 0},
		{1, 0, 0, 0},                // count 1, no record
		{1, 0, 0, 0, 5, 0, 0, 0, 1}, // record longer than the input
		{0, 0, 0, 0, 9},             // bytes after the last record
	} {
		if _, ok := runBatch(in, nil); ok {
			t.Errorf("runBatch(%v) accepted malformed input", in)
		}
	}
	out, ok := runBatch([]byte{0, 0, 0, 0}, nil)
	if !ok || len(out) != 0 {
		t.Errorf("empty batch: %v %v", out, ok)
	}
}

func TestErrorTextIsValidUTF8AndCapped(t *testing.T) {
	register(t, func(in []byte, _ *Output) error { return errors.New(string(in)) })
	got, err := RunBatch([]byte("bad \xff byte"), bytes.Repeat([]byte("é"), 5000), []byte(""))
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Err != "bad \uFFFD byte" {
		t.Errorf("got %q", got[0].Err)
	}
	if len(got[1].Err) > maxErrorText || !strings.HasPrefix(got[1].Err, "éé") {
		t.Errorf("long error: %d bytes", len(got[1].Err))
	}
	if got[2].Err != "error" {
		t.Errorf("empty error text: %q", got[2].Err)
	}
}

func TestHandleAndProcessOne(t *testing.T) {
	handler = nil
	t.Cleanup(func() { handler = nil })
	Handle(func(in []byte) ([][]byte, error) {
		if len(in) == 0 {
			return nil, nil
		}
		if in[0] == '2' {
			return [][]byte{in, in}, nil
		}
		return [][]byte{bytes.ToUpper(in)}, nil
	})
	if rec, ok := RunOne([]byte("abc")); !ok || string(rec) != "ABC" {
		t.Errorf("one record: %q %v", rec, ok)
	}
	if rec, ok := RunOne(nil); !ok || len(rec) != 0 {
		t.Errorf("no record: %q %v", rec, ok)
	}
	if _, ok := RunOne([]byte("2x")); ok {
		t.Error("process accepted two records")
	}
	got, _ := RunBatch([]byte("2x"))
	if len(got[0].Records) != 2 {
		t.Errorf("batch: %+v", got)
	}
}

func TestNoHandler(t *testing.T) {
	handler = nil
	got, err := RunBatch([]byte("x"))
	if err != nil || !strings.Contains(got[0].Err, "fs.Handle") {
		t.Errorf("got %+v %v", got, err)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	register(t, func([]byte, *Output) error { return nil })
	defer func() {
		if recover() == nil {
			t.Error("a second Handle did not panic")
		}
	}()
	Handle(func([]byte) ([][]byte, error) { return nil, nil })
}

func TestStateAndGrowAndRetry(t *testing.T) {
	ResetTestHost(map[string]string{"k": strings.Repeat("v", 100)})
	if v, ok := Config("k"); !ok || len(v) != 100 {
		t.Errorf("config: %d %v", len(v), ok)
	}
	if _, ok := Config("missing"); ok {
		t.Error("missing config found")
	}
	if _, ok := StateGet("a"); ok {
		t.Error("missing state found")
	}
	StatePut("a", []byte{})
	if v, ok := StateGet("a"); !ok || v == nil || len(v) != 0 {
		t.Errorf("empty value: %v %v", v, ok)
	}
	StatePut("a", bytes.Repeat([]byte("x"), 5000))
	buf := make([]byte, 2, 10) // grows past the spare capacity and keeps the prefix
	copy(buf, "hi")
	v, ok := AppendState(buf, "a")
	if !ok || len(v) != 5002 || string(v[:3]) != "hix" {
		t.Errorf("append: %d %v", len(v), ok)
	}
	if StateAdd("n", 2) != 2 || StateAdd("n", -5) != -3 {
		t.Error("state add")
	}
	StateDelete("n")
	if _, ok := StateGet("n"); ok {
		t.Error("deleted key found")
	}
	Log(Info, "hello")
	if len(Host.Logs) != 1 || Host.Logs[0] != (LogLine{Info, "hello"}) {
		t.Errorf("logs: %+v", Host.Logs)
	}
}

func TestMetadata(t *testing.T) {
	ResetTestHost(nil)
	if _, ok := MsgKey(); ok {
		t.Error("no key expected")
	}
	if _, ok := MsgEventTime(); ok {
		t.Error("no event time expected")
	}
	key := "k1"
	Host.MsgKey = &key
	Host.MsgProperties = map[string]string{"p": "v"}
	Host.MsgEventTime = 42
	if k, ok := MsgKey(); !ok || k != "k1" {
		t.Error("key")
	}
	if p, ok := MsgProperty("p"); !ok || p != "v" {
		t.Error("property")
	}
	if ms, ok := MsgEventTime(); !ok || ms != 42 {
		t.Error("event time")
	}
	SetOutputKey("out")
	SetOutputProperty("a", "b")
	SetOutputEventTime(7)
	if *Host.OutKey != "out" || Host.OutProperties["a"] != "b" || Host.OutEventTime != 7 {
		t.Errorf("outputs: %+v", Host)
	}
}

func TestOutputCountsPerInput(t *testing.T) {
	o := Output{}
	o.Emit([]byte("ab"))
	o.EmitString("")
	if o.Len() != 2 || !bytes.Equal(o.buf, binary.LittleEndian.AppendUint32(append(binary.LittleEndian.AppendUint32(nil, 2), "ab"...), 0)) {
		t.Errorf("framing: %v", o.buf)
	}
}
