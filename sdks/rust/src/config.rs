//! The function's configuration: the `--config key=value` map given to
//! `fsctl create`, fixed for the life of the replica.

use crate::host;

/// The value of config `key`, or None when it is not set.
pub fn get(key: &str) -> Option<String> {
    get_bytes(key).map(host::into_string)
}

/// The value of config `key` as bytes, or None when it is not set.
pub fn get_bytes(key: &str) -> Option<Vec<u8>> {
    host::read_owned(|buf, cap, out_len| unsafe {
        host::config_get(key.as_ptr(), key.len(), buf, cap, out_len)
    })
}
