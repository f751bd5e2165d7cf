//go:build !wasip1

package fs

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unsafe"
)

// Outside WebAssembly (go test on your machine) the host API runs against the
// in-memory TestHost below, so a function's Go tests need no platform.

// LogLine is one line a function logged through Log, kept by the TestHost.
type LogLine struct {
	Level Level
	Text  string
}

// TestHost is the stand-in for the platform in non-wasm builds. Tests set
// Config and the Msg* fields and read State, Logs and the Out* fields.
type TestHost struct {
	State  map[string][]byte
	Config map[string]string
	Logs   []LogLine

	MsgKey        *string
	MsgProperties map[string]string
	MsgEventTime  int64

	OutKey        *string
	OutProperties map[string]string
	OutEventTime  int64
}

// Host is the TestHost the host API uses in non-wasm builds.
var Host = NewTestHost()

// NewTestHost returns an empty TestHost.
func NewTestHost() *TestHost {
	return &TestHost{State: map[string][]byte{}, Config: map[string]string{}}
}

// ResetTestHost empties Host and sets its config; call it at the start of a test.
func ResetTestHost(config map[string]string) {
	Host = NewTestHost()
	for k, v := range config {
		Host.Config[k] = v
	}
}

// Result is the outcome of one input of RunBatch: its records, or why it failed.
type Result struct {
	Records [][]byte
	Err     string // not empty: the input failed with this text
}

// RunBatch runs the registered function on inputs through the same framing as
// the exported process_batch, and decodes the results.
func RunBatch(inputs ...[]byte) ([]Result, error) {
	in := binary.LittleEndian.AppendUint32(nil, uint32(len(inputs)))
	for _, b := range inputs {
		in = binary.LittleEndian.AppendUint32(in, uint32(len(b)))
		in = append(in, b...)
	}
	out, ok := runBatch(in, nil)
	if !ok {
		return nil, errors.New("process_batch rejected its input")
	}
	return decodeBatch(out, len(inputs))
}

// RunOne runs the registered function on one input like the exported process:
// ok is false when it failed or gave more than one record.
func RunOne(input []byte) (record []byte, ok bool) {
	out, start, ok := runOne(input, nil)
	if !ok {
		return nil, false
	}
	return out[start:], true
}

func decodeBatch(out []byte, count int) ([]Result, error) {
	results := make([]Result, 0, count)
	u32 := func() (int, error) {
		if len(out) < 4 {
			return 0, errors.New("process_batch output is truncated")
		}
		v := binary.LittleEndian.Uint32(out)
		out = out[4:]
		return int(v), nil
	}
	bytesOf := func(n int) ([]byte, error) {
		if n > len(out) {
			return nil, errors.New("process_batch output is truncated")
		}
		b := out[:n:n]
		out = out[n:]
		return b, nil
	}
	for range count {
		n, err := u32()
		if err != nil {
			return nil, err
		}
		if int32(n) < 0 {
			l, err := u32()
			if err != nil {
				return nil, err
			}
			text, err := bytesOf(l)
			if err != nil {
				return nil, err
			}
			results = append(results, Result{Err: string(text)})
			continue
		}
		var r Result
		for range n {
			l, err := u32()
			if err != nil {
				return nil, err
			}
			rec, err := bytesOf(l)
			if err != nil {
				return nil, err
			}
			r.Records = append(r.Records, rec)
		}
		results = append(results, r)
	}
	if len(out) != 0 {
		return nil, errors.New("process_batch output has " + strconv.Itoa(len(out)) + " bytes too many")
	}
	return results, nil
}

// The host API against Host.

func hostStateGet(key string, buf unsafe.Pointer, capacity uint32) int32 {
	v, ok := Host.State[key]
	return reply(string(v), ok, buf, capacity)
}

func hostConfigGet(key string, buf unsafe.Pointer, capacity uint32) int32 {
	v, ok := Host.Config[key]
	return reply(v, ok, buf, capacity)
}

func hostMsgKey(_ string, buf unsafe.Pointer, capacity uint32) int32 {
	if Host.MsgKey == nil {
		return -1
	}
	return reply(*Host.MsgKey, true, buf, capacity)
}

func hostMsgProperty(name string, buf unsafe.Pointer, capacity uint32) int32 {
	v, ok := Host.MsgProperties[name]
	return reply(v, ok, buf, capacity)
}

// reply follows the value convention: up to capacity bytes at buf, the full
// length returned, -1 when missing.
func reply(v string, ok bool, buf unsafe.Pointer, capacity uint32) int32 {
	if !ok {
		return -1
	}
	if capacity > 0 {
		copy(unsafe.Slice((*byte)(buf), capacity), v)
	}
	return int32(len(v))
}

func hostStatePut(key string, value []byte) { Host.State[key] = append([]byte{}, value...) }
func hostStateDelete(key string)            { delete(Host.State, key) }

func hostStateAdd(key string, delta int64) int64 {
	old := int64(0)
	if b, ok := Host.State[key]; ok {
		v, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			panic("fs.state_add: cannot add to a value that is not a decimal integer: " + strconv.Quote(string(b)))
		}
		old = v
	}
	Host.State[key] = strconv.AppendInt(nil, old+delta, 10)
	return old + delta
}

func hostLog(level int32, msg string) { Host.Logs = append(Host.Logs, LogLine{Level(level), msg}) }

func hostMsgEventTime() int64 { return Host.MsgEventTime }

func hostSetOutputKey(key string) { Host.OutKey = &key }

func hostSetOutputProperty(name, value string) {
	if Host.OutProperties == nil {
		Host.OutProperties = map[string]string{}
	}
	Host.OutProperties[name] = value
}

func hostSetOutputEventTime(ms int64) { Host.OutEventTime = ms }
