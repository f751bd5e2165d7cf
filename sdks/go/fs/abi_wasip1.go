//go:build wasip1

package fs

import "unsafe"

// The buffers the host reads and writes. They are package variables so the
// garbage collector always sees them referenced (Go's heap does not move
// objects, so their addresses stay valid between calls), and they are reused:
// a call allocates only when an input or an output is larger than any before.
var (
	inBuf  []byte // alloc's buffer: the host copies the next input here
	outBuf []byte // the last call's output; valid until the next call
)

const minBuf = 4096

// wasmAlloc returns a pointer to n writable bytes for the next input.
//
//go:wasmexport alloc
func wasmAlloc(n int32) int32 {
	if n < 0 {
		return 0
	}
	if len(inBuf) < int(n) || len(inBuf) == 0 {
		// Double, so that slowly growing inputs reallocate rarely; a larger
		// input gets exactly its size.
		inBuf = make([]byte, max(int(n), 2*len(inBuf), minBuf))
	}
	return int32(uintptr(unsafe.Pointer(&inBuf[0])))
}

// input returns the n bytes at ptr, which must lie in alloc's buffer (the ABI
// has the host call alloc, copy the input there, then call process).
func input(ptr, n int32) ([]byte, bool) {
	if n < 0 {
		return nil, false
	}
	if n == 0 {
		return nil, true
	}
	if len(inBuf) == 0 {
		return nil, false
	}
	off := uintptr(uint32(ptr)) - uintptr(unsafe.Pointer(&inBuf[0])) // wraps when below
	if off > uintptr(len(inBuf)) || uintptr(n) > uintptr(len(inBuf))-off {
		return nil, false
	}
	return inBuf[off : off+uintptr(n) : off+uintptr(n)], true
}

func packResult(start, n int) int64 {
	if n == 0 {
		return 0
	}
	ptr := uintptr(unsafe.Pointer(&outBuf[start]))
	return int64(uint64(ptr)<<32 | uint64(uint32(n)))
}

func outScratch() []byte {
	if outBuf == nil {
		outBuf = make([]byte, 0, minBuf)
	}
	return outBuf[:0]
}

// wasmProcess handles one input: at most one record, -1 when it fails.
//
//go:wasmexport process
func wasmProcess(ptr, n int32) int64 {
	in, ok := input(ptr, n)
	if !ok {
		return -1
	}
	out, start, ok := runOne(in, outScratch())
	outBuf = out
	if !ok {
		return -1
	}
	return packResult(start, len(out)-start)
}

// wasmProcessBatch handles a batch of inputs (docs/abi.md, process_batch).
//
//go:wasmexport process_batch
func wasmProcessBatch(ptr, n int32) int64 {
	in, ok := input(ptr, n)
	if !ok {
		return -1
	}
	out, ok := runBatch(in, outScratch())
	outBuf = out
	if !ok {
		return -1
	}
	return packResult(0, len(out))
}
