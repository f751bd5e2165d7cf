//! The current input's metadata, and the metadata of its output records.
//!
//! **Cost:** a module that calls any of these imports `fs.msg_*` or
//! `fs.set_output_*`, and the host then calls it one message at a time
//! (the metadata belongs to one input), which is slower than the batches
//! (docs/abi.md, "Message metadata"). What is set applies to every output
//! record of the current input.

use crate::host;

/// The input's key, or None when it has none.
pub fn key() -> Option<String> {
    host::read_owned(|buf, cap, out_len| unsafe { host::msg_key(buf, cap, out_len) })
        .map(host::into_string)
}

/// The input's property `name`, or None when it has no such property.
pub fn property(name: &str) -> Option<String> {
    host::read_owned(|buf, cap, out_len| unsafe {
        host::msg_property(name.as_ptr(), name.len(), buf, cap, out_len)
    })
    .map(host::into_string)
}

/// The input's event time in milliseconds since the epoch, or None when it
/// has none.
pub fn event_time() -> Option<i64> {
    let mut ms: i64 = 0;
    unsafe { host::msg_event_time(&mut ms) };
    if ms == 0 {
        None
    } else {
        Some(ms)
    }
}

/// Sets the key of this input's output records (replaces a passed-through
/// key).
pub fn set_output_key(key: &str) {
    unsafe { host::set_output_key(key.as_ptr(), key.len()) }
}

/// Adds a property to this input's output records (added to the
/// passed-through ones; the last value of a name wins).
pub fn set_output_property(name: &str, value: &str) {
    unsafe { host::set_output_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) }
}

/// Sets the event time of this input's output records, in milliseconds since
/// the epoch. It must be >= 0: a negative time traps (the input fails).
pub fn set_output_event_time(ms: i64) {
    unsafe { host::set_output_event_time(ms) }
}
