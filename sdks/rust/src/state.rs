//! This function's key-value store (docs/state.md): bytes to bytes, keys up to
//! 4096 bytes, values up to 4 MiB, shared by the function's replicas.
//!
//! Writes are visible to this function's later reads at once and committed
//! with the batch, before its inputs are acknowledged; a failed input leaves
//! none of its writes behind. A bad key (too long) or a failed store
//! operation traps: the input fails with kind `trap`.
//!
//! ```ignore
//! use function_stream::state;
//! let seen = state::add("visits", 1);           // counters: decimal ASCII
//! state::put("last", b"alice");
//! assert_eq!(state::get("last").as_deref(), Some(&b"alice"[..]));
//! state::delete("last");
//! ```

use crate::host;

/// The value of `key`, or None when the key is missing (an empty value is
/// `Some(vec![])`).
pub fn get<K: AsRef<[u8]>>(key: K) -> Option<Vec<u8>> {
    let key = key.as_ref();
    host::read_owned(|buf, cap, out_len| unsafe {
        host::state_get(key.as_ptr(), key.len(), buf, cap, out_len)
    })
}

/// Reads the value of `key` into `buf` (replacing its contents, reusing its
/// capacity): true when present, false (and `buf` empty) when missing.
pub fn get_into<K: AsRef<[u8]>>(key: K, buf: &mut Vec<u8>) -> bool {
    let key = key.as_ref();
    host::read_value(buf, |b, cap, out_len| unsafe {
        host::state_get(key.as_ptr(), key.len(), b, cap, out_len)
    })
}

/// Sets `key` to `value` (last writer wins between replicas).
pub fn put<K: AsRef<[u8]>, V: AsRef<[u8]>>(key: K, value: V) {
    let (key, value) = (key.as_ref(), value.as_ref());
    unsafe { host::state_put(key.as_ptr(), key.len(), value.as_ptr(), value.len()) }
}

/// Removes `key` (nothing happens when it is missing).
pub fn delete<K: AsRef<[u8]>>(key: K) {
    let key = key.as_ref();
    unsafe { host::state_delete(key.as_ptr(), key.len()) }
}

/// Adds `delta` to the counter `key` and returns its new value.
///
/// Counters are decimal ASCII integers (`"42"`); a missing key counts as 0;
/// adding to any other value traps. Adds are applied as deltas at commit, so
/// replicas adding to one key lose nothing.
pub fn add<K: AsRef<[u8]>>(key: K, delta: i64) -> i64 {
    let key = key.as_ref();
    let mut value: i64 = 0;
    unsafe { host::state_add(key.as_ptr(), key.len(), delta, &mut value) };
    value
}
