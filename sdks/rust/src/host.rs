//! The imports of wasm module `fs` (docs/abi.md, "Host API, version 1") and the
//! value convention's grow-and-retry read.
//!
//! Outside wasm32 (e.g. `cargo test` of a function's own logic) the imports do
//! not exist: calling the host API there panics with a line saying so.

use crate::abi::Global;

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "fs")]
extern "C" {
    pub fn state_get(key: *const u8, key_len: usize, buf: *mut u8, cap: usize, out_len: *mut i32);
    pub fn state_put(key: *const u8, key_len: usize, value: *const u8, value_len: usize);
    pub fn state_delete(key: *const u8, key_len: usize);
    pub fn state_add(key: *const u8, key_len: usize, delta: i64, out: *mut i64);
    pub fn config_get(key: *const u8, key_len: usize, buf: *mut u8, cap: usize, out_len: *mut i32);
    pub fn log(level: i32, msg: *const u8, len: usize);
    pub fn msg_key(buf: *mut u8, cap: usize, out_len: *mut i32);
    pub fn msg_property(
        name: *const u8,
        name_len: usize,
        buf: *mut u8,
        cap: usize,
        out_len: *mut i32,
    );
    pub fn msg_event_time(out_ms: *mut i64);
    pub fn set_output_key(key: *const u8, len: usize);
    pub fn set_output_property(
        name: *const u8,
        name_len: usize,
        value: *const u8,
        value_len: usize,
    );
    pub fn set_output_event_time(ms: i64);
}

#[cfg(not(target_arch = "wasm32"))]
pub use self::native::*;

#[cfg(not(target_arch = "wasm32"))]
#[allow(unused_variables, clippy::missing_safety_doc)]
mod native {
    fn missing(name: &str) -> ! {
        panic!(
            "fs.{} is only available inside Function Stream: build for wasm32-wasip1 (or wasm32-wasi)",
            name
        )
    }
    pub unsafe fn state_get(
        key: *const u8,
        key_len: usize,
        buf: *mut u8,
        cap: usize,
        out_len: *mut i32,
    ) {
        missing("state_get")
    }
    pub unsafe fn state_put(key: *const u8, key_len: usize, value: *const u8, value_len: usize) {
        missing("state_put")
    }
    pub unsafe fn state_delete(key: *const u8, key_len: usize) {
        missing("state_delete")
    }
    pub unsafe fn state_add(key: *const u8, key_len: usize, delta: i64, out: *mut i64) {
        missing("state_add")
    }
    pub unsafe fn config_get(
        key: *const u8,
        key_len: usize,
        buf: *mut u8,
        cap: usize,
        out_len: *mut i32,
    ) {
        missing("config_get")
    }
    pub unsafe fn log(level: i32, msg: *const u8, len: usize) {
        missing("log")
    }
    pub unsafe fn msg_key(buf: *mut u8, cap: usize, out_len: *mut i32) {
        missing("msg_key")
    }
    pub unsafe fn msg_property(
        name: *const u8,
        name_len: usize,
        buf: *mut u8,
        cap: usize,
        out_len: *mut i32,
    ) {
        missing("msg_property")
    }
    pub unsafe fn msg_event_time(out_ms: *mut i64) {
        missing("msg_event_time")
    }
    pub unsafe fn set_output_key(key: *const u8, len: usize) {
        missing("set_output_key")
    }
    pub unsafe fn set_output_property(
        name: *const u8,
        name_len: usize,
        value: *const u8,
        value_len: usize,
    ) {
        missing("set_output_property")
    }
    pub unsafe fn set_output_event_time(ms: i64) {
        missing("set_output_event_time")
    }
}

/// A scratch buffer for reads whose result is copied out at once.
static SCRATCH: Global<Vec<u8>> = Global::new(Vec::new());

/// The first read's buffer size: most values fit, so most reads are one call.
const FIRST_CAP: usize = 256;

/// Reads a value with the value convention into `buf` (replacing its
/// contents): the host writes `min(len, cap)` bytes and the full length, or -1
/// when the value is missing. A longer value means: grow and read again (it
/// may change in between, hence the loop). Returns whether it is present.
pub fn read_value<F: Fn(*mut u8, usize, *mut i32)>(buf: &mut Vec<u8>, call: F) -> bool {
    buf.clear();
    if buf.capacity() < FIRST_CAP {
        buf.reserve(FIRST_CAP);
    }
    loop {
        let cap = buf.capacity();
        let mut len: i32 = -1;
        call(buf.as_mut_ptr(), cap, &mut len);
        if len < 0 {
            return false;
        }
        let len = len as usize;
        if len <= cap {
            // SAFETY: the host wrote len <= cap bytes at buf.
            unsafe { buf.set_len(len) };
            return true;
        }
        buf.reserve(len);
    }
}

/// [`read_value`] into the shared scratch buffer, copied out.
pub fn read_owned<F: Fn(*mut u8, usize, *mut i32)>(call: F) -> Option<Vec<u8>> {
    // SAFETY: no callback runs while the scratch buffer is borrowed.
    let scratch = unsafe { SCRATCH.get() };
    if read_value(scratch, call) {
        Some(scratch.to_vec())
    } else {
        None
    }
}

/// Bytes as a String, replacing invalid UTF-8 (the host's keys, properties
/// and config values are UTF-8 strings, so this never happens in practice).
pub fn into_string(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}
