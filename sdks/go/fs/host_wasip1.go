//go:build wasip1

package fs

import "unsafe"

// The host API, version 1 (docs/abi.md): imports from wasm module "fs". A Go
// string parameter is passed as (pointer, length), two i32. None returns a
// value; results go to the out-pointers. The linker keeps only the imports a
// module calls.

//go:wasmimport fs state_get
//go:noescape
func fsStateGet(key string, buf unsafe.Pointer, capacity uint32, outLen *int32)

//go:wasmimport fs state_put
//go:noescape
func fsStatePut(key string, value unsafe.Pointer, valueLen uint32)

//go:wasmimport fs state_delete
//go:noescape
func fsStateDelete(key string)

//go:wasmimport fs state_add
//go:noescape
func fsStateAdd(key string, delta int64, out *int64)

//go:wasmimport fs config_get
//go:noescape
func fsConfigGet(key string, buf unsafe.Pointer, capacity uint32, outLen *int32)

//go:wasmimport fs log
//go:noescape
func fsLog(level int32, msg string)

//go:wasmimport fs msg_key
//go:noescape
func fsMsgKey(buf unsafe.Pointer, capacity uint32, outLen *int32)

//go:wasmimport fs msg_property
//go:noescape
func fsMsgProperty(name string, buf unsafe.Pointer, capacity uint32, outLen *int32)

//go:wasmimport fs msg_event_time
//go:noescape
func fsMsgEventTime(out *int64)

//go:wasmimport fs set_output_key
//go:noescape
func fsSetOutputKey(key string)

//go:wasmimport fs set_output_property
//go:noescape
func fsSetOutputProperty(name, value string)

//go:wasmimport fs set_output_event_time
func fsSetOutputEventTime(ms int64)

func hostStateGet(key string, buf unsafe.Pointer, capacity uint32) int32 {
	var n int32
	fsStateGet(key, buf, capacity, &n)
	return n
}

func hostConfigGet(key string, buf unsafe.Pointer, capacity uint32) int32 {
	var n int32
	fsConfigGet(key, buf, capacity, &n)
	return n
}

func hostMsgKey(_ string, buf unsafe.Pointer, capacity uint32) int32 {
	var n int32
	fsMsgKey(buf, capacity, &n)
	return n
}

func hostMsgProperty(name string, buf unsafe.Pointer, capacity uint32) int32 {
	var n int32
	fsMsgProperty(name, buf, capacity, &n)
	return n
}

func hostStatePut(key string, value []byte) {
	fsStatePut(key, unsafe.Pointer(unsafe.SliceData(value)), uint32(len(value)))
}

func hostStateDelete(key string) { fsStateDelete(key) }

func hostStateAdd(key string, delta int64) int64 {
	var v int64
	fsStateAdd(key, delta, &v)
	return v
}

func hostLog(level int32, msg string) { fsLog(level, msg) }

func hostMsgEventTime() int64 {
	var ms int64
	fsMsgEventTime(&ms)
	return ms
}

func hostSetOutputKey(key string)              { fsSetOutputKey(key) }
func hostSetOutputProperty(name, value string) { fsSetOutputProperty(name, value) }
func hostSetOutputEventTime(ms int64)          { fsSetOutputEventTime(ms) }
