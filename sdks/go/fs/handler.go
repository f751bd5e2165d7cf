package fs

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
)

// Output collects the records a handler emits for one input. Emit copies the
// record, so the caller may reuse its buffer right away.
type Output struct {
	buf []byte // the call's whole output: framing plus records
	n   int    // records emitted for the current input
}

// Emit adds one output record for the current input.
func (o *Output) Emit(record []byte) {
	o.buf = binary.LittleEndian.AppendUint32(o.buf, uint32(len(record)))
	o.buf = append(o.buf, record...)
	o.n++
}

// EmitString adds one output record holding s.
func (o *Output) EmitString(s string) {
	o.buf = binary.LittleEndian.AppendUint32(o.buf, uint32(len(s)))
	o.buf = append(o.buf, s...)
	o.n++
}

// Len is how many records have been emitted for the current input.
func (o *Output) Len() int { return o.n }

// handler is the registered function; nil until Handle or HandleEmit is called.
var handler func(input []byte, out *Output) error

// Handle registers fn as the module's function. Call it once, from init().
//
// fn gets one input (valid only during the call: copy it to keep it) and
// returns its output records (none filters the input out) or an error, which
// fails the input with the error's text.
func Handle(fn func(input []byte) ([][]byte, error)) {
	if fn == nil {
		panic("fs.Handle: the function is nil")
	}
	setHandler(func(input []byte, out *Output) error {
		records, err := fn(input)
		if err != nil {
			return err
		}
		for _, r := range records {
			out.Emit(r)
		}
		return nil
	})
}

// HandleEmit registers fn as the module's function, like Handle, but fn emits
// its records through out instead of returning them, which allocates nothing
// per record. When fn returns an error, the records it emitted for that input
// are dropped.
func HandleEmit(fn func(input []byte, out *Output) error) {
	if fn == nil {
		panic("fs.HandleEmit: the function is nil")
	}
	setHandler(fn)
}

func setHandler(fn func(input []byte, out *Output) error) {
	if handler != nil {
		panic("fs.Handle: a function is already registered; register exactly one, from init()")
	}
	handler = fn
}

var errNoHandler = errors.New("no function registered: call fs.Handle or fs.HandleEmit from init()")

// invoke runs the handler on one input, turning a panic into an error (the
// message then fails like any other error, instead of the Go runtime exiting).
func invoke(input []byte, out *Output) (err error) {
	if handler == nil {
		return errNoHandler
	}
	defer func() {
		if r := recover(); r != nil {
			err = panicError(r)
		}
	}()
	return handler(input, out)
}

func panicError(r any) error {
	switch v := r.(type) {
	case runtime.Error:
		return errors.New("panic: " + v.Error())
	case error:
		return errors.New("panic: " + v.Error())
	case string:
		return errors.New("panic: " + v)
	default:
		return errors.New("panic (with a value that is neither an error nor a string)")
	}
}

// maxErrorText caps the failure text per input; the host shows one line.
const maxErrorText = 4096

// runBatch processes a process_batch input (u32 count, then count times u32
// length + bytes) and appends the framed results to out (for each input: i32
// n then n times u32 length + bytes, or i32 -1, u32 length and the error
// text). ok is false when the input's framing is malformed.
func runBatch(in []byte, out []byte) (result []byte, ok bool) {
	if len(in) < 4 {
		return out, false
	}
	count := binary.LittleEndian.Uint32(in)
	off := 4
	o := Output{buf: out}
	for i := uint32(0); i < count; i++ {
		if len(in)-off < 4 {
			return o.buf, false
		}
		n := int(binary.LittleEndian.Uint32(in[off:]))
		off += 4
		if n > len(in)-off {
			return o.buf, false
		}
		input := in[off : off+n : off+n] // no append into the next input
		off += n
		mark := len(o.buf)
		o.buf = append(o.buf, 0, 0, 0, 0) // i32 n, set below
		o.n = 0
		if err := invoke(input, &o); err != nil {
			o.buf = appendFailure(o.buf[:mark], err)
			continue
		}
		binary.LittleEndian.PutUint32(o.buf[mark:], uint32(o.n))
	}
	if off != len(in) {
		return o.buf, false
	}
	return o.buf, true
}

func appendFailure(out []byte, err error) []byte {
	text := strings.ToValidUTF8(err.Error(), "\uFFFD")
	if len(text) > maxErrorText {
		text = strings.ToValidUTF8(text[:maxErrorText], "")
	}
	if text == "" {
		text = "error"
	}
	out = binary.LittleEndian.AppendUint32(out, 0xFFFFFFFF) // i32 -1
	out = binary.LittleEndian.AppendUint32(out, uint32(len(text)))
	return append(out, text...)
}

// runOne processes a process input: at most one record (an empty record is
// indistinguishable from none there). It appends the framed record to out and
// returns where the record's bytes start, or ok false when the input failed or
// gave more than one record (those need process_batch, which the host prefers).
func runOne(input []byte, out []byte) (result []byte, start int, ok bool) {
	o := Output{buf: out}
	if err := invoke(input, &o); err != nil || o.n > 1 {
		return o.buf, 0, false
	}
	if o.n == 0 {
		return o.buf[:0], 0, true
	}
	return o.buf, 4, true
}
