package fs

import "unsafe"

// Level is a log level of Log.
type Level int32

// The log levels; Debug lines show only when the worker logs at debug level.
const (
	Debug   Level = 0
	Info    Level = 1
	Warning Level = 2
	Error   Level = 3
)

// reader reads a value with the value convention (docs/abi.md): it writes up
// to capacity bytes at buf and returns the value's full length, or -1 when the
// value is missing. One function per import, so that a module imports from the
// host only what it uses (a msg_* import changes how the host calls it).
type reader func(name string, buf unsafe.Pointer, capacity uint32) int32

// appendValue appends the value that read gives for name to dst, growing dst and
// reading again while the value is larger than dst's spare capacity (it may
// change between two reads). ok is false when the value is missing.
func appendValue(dst []byte, read reader, name string) ([]byte, bool) {
	for {
		spare := dst[len(dst):cap(dst)]
		var buf unsafe.Pointer
		if len(spare) > 0 {
			buf = unsafe.Pointer(&spare[0])
		}
		n := read(name, buf, uint32(len(spare)))
		if n < 0 {
			return dst, false
		}
		if int(n) <= len(spare) {
			return dst[:len(dst)+int(n)], true
		}
		grown := make([]byte, len(dst), len(dst)+int(n))
		copy(grown, dst)
		dst = grown
	}
}

// value returns a fresh copy of a value: nil and false when it is missing, a
// non-nil (maybe empty) slice and true when it exists.
func value(read reader, name string) ([]byte, bool) {
	v, ok := appendValue(nil, read, name)
	if ok && v == nil {
		v = []byte{}
	}
	return v, ok
}

// StateGet returns the value of key in this function's state store, and false
// when the key is missing (a missing key is not an empty value).
func StateGet(key string) ([]byte, bool) { return value(hostStateGet, key) }

// AppendState appends the value of key to dst and returns the extended slice,
// and false (with dst unchanged) when the key is missing. Reusing dst across
// calls reads without allocating.
func AppendState(dst []byte, key string) ([]byte, bool) { return appendValue(dst, hostStateGet, key) }

// StatePut sets key to value (keys up to 4096 bytes, values up to 4 MiB).
func StatePut(key string, value []byte) { hostStatePut(key, value) }

// StateDelete removes key; removing a missing key does nothing.
func StateDelete(key string) { hostStateDelete(key) }

// StateAdd adds delta to the counter at key (a decimal integer; missing counts
// as 0) and returns the new value. Replicas adding to one key lose nothing.
func StateAdd(key string, delta int64) int64 { return hostStateAdd(key, delta) }

// Config returns a value of the function's --config map, and false when the
// key is not set.
func Config(key string) (string, bool) {
	v, ok := appendValue(nil, hostConfigGet, key)
	return string(v), ok
}

// Log writes one line to the worker's log (source=guest). The host drops
// trailing whitespace and cuts the line at 4096 characters.
func Log(level Level, msg string) { hostLog(int32(level), msg) }

// MsgKey returns the current input's key, and false when it has none.
// Calling it makes the host call the module one message at a time.
func MsgKey() (string, bool) {
	v, ok := appendValue(nil, hostMsgKey, "")
	return string(v), ok
}

// MsgProperty returns a property of the current input, and false when it does
// not have it. Calling it makes the host call the module one message at a time.
func MsgProperty(name string) (string, bool) {
	v, ok := appendValue(nil, hostMsgProperty, name)
	return string(v), ok
}

// MsgEventTime returns the current input's event time in milliseconds since
// the epoch, and false when it has none. Calling it makes the host call the
// module one message at a time.
func MsgEventTime() (int64, bool) {
	ms := hostMsgEventTime()
	return ms, ms != 0
}

// SetOutputKey sets the key of the current input's output records (UTF-8),
// replacing a passed-through key.
func SetOutputKey(key string) { hostSetOutputKey(key) }

// SetOutputProperty adds a property to the current input's output records
// (UTF-8; the last value of a name wins).
func SetOutputProperty(name, value string) { hostSetOutputProperty(name, value) }

// SetOutputEventTime sets the event time of the current input's output
// records, in milliseconds since the epoch (>= 0).
func SetOutputEventTime(ms int64) { hostSetOutputEventTime(ms) }
