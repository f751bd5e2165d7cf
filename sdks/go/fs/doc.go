// Package fs is the Function Stream SDK for Go: write one function from input
// bytes to zero or more output records, and the package does the WebAssembly
// ABI (docs/abi.md, lane 1) around it.
//
//	package main
//
//	import (
//		"bytes"
//
//		"functionstream.dev/sdk/fs"
//	)
//
//	func init() {
//		fs.Handle(func(input []byte) ([][]byte, error) {
//			return [][]byte{bytes.ToUpper(input)}, nil
//		})
//	}
//
//	func main() {} // required by the Go toolchain, never called
//
// Build it as a WASI reactor (Go 1.24 or later):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o f.wasm .
//
// The module then exports memory, _initialize, alloc, process and
// process_batch. The host calls process_batch with up to 256 inputs at a time
// (the fast path), and the handler runs once per input. A returned error fails
// that input only: it is retried and then dead-lettered with the error's text.
// A panic in the handler is recovered and fails the input the same way.
//
// The host API (state, config, log, message metadata) is a set of plain
// functions: StateGet, StatePut, StateDelete, StateAdd, Config, Log, MsgKey,
// MsgProperty, MsgEventTime, SetOutputKey, SetOutputProperty and
// SetOutputEventTime. A module imports from the host only the functions it
// calls. Calling any Msg* or SetOutput* function makes the host call the
// module one message at a time (the metadata belongs to one input).
//
// Outside WebAssembly (go test on your machine) the host API works against an
// in-memory stand-in; see ResetTestHost and RunBatch in testhost.go.
package fs
