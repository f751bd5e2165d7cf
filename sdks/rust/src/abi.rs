//! The lane-1 exports behind the macros: `alloc`, `process`, `process_batch`
//! and their framing (docs/abi.md). All integers are little-endian.

use std::cell::UnsafeCell;
use std::fmt::{self, Display, Write};

use crate::output::{Output, Records};

/// A buffer owned by the module for its whole life.
///
/// The host calls into a module from one thread, one call at a time, and the
/// SDK never hands a buffer out across calls, so no two `&mut` to one buffer
/// exist at once. (`OnceLock`/`Mutex` would cost more and `OnceLock` needs a
/// newer rustc than 1.63.)
pub(crate) struct Global<T>(UnsafeCell<T>);

// SAFETY: wasm32 modules here run single-threaded; see the type's comment.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    pub(crate) const fn new(value: T) -> Self {
        Global(UnsafeCell::new(value))
    }

    /// SAFETY: the caller must not let the reference outlive the current
    /// export call, nor take a second one to the same buffer meanwhile.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get(&self) -> &mut T {
        &mut *self.0.get()
    }
}

/// Where the host writes the next input (or batch of inputs).
static INPUT: Global<Vec<u8>> = Global::new(Vec::new());
/// What `process`/`process_batch` return; valid until the next call.
static OUTPUT: Global<Vec<u8>> = Global::new(Vec::new());

/// The result of a `process_batch` call whose input is not well framed.
const MALFORMED_BATCH: i64 = -1;

fn pack(ptr: *const u8, len: usize) -> i64 {
    (((ptr as usize as u64) << 32) | (len as u32 as u64)) as i64
}

/// `alloc(len)`: the reused input buffer with room for `len` bytes, or 0.
pub fn alloc(len: i32) -> i32 {
    if len < 0 {
        return 0;
    }
    // SAFETY: only the host calls alloc, never while process runs.
    let input = unsafe { INPUT.get() };
    input.clear();
    // At least one byte, so the pointer is a real one even for len 0.
    let need = (len as usize).max(1);
    if input.try_reserve(need).is_err() {
        return 0;
    }
    input.as_mut_ptr() as usize as i32
}

/// The input the host wrote at `ptr`/`len`, or None when that is no input.
///
/// SAFETY: `ptr`/`len` must come from the host after an `alloc`, i.e. lie in
/// memory and not change during the call.
unsafe fn input<'a>(ptr: i32, len: i32) -> Option<&'a [u8]> {
    if len < 0 || (ptr == 0 && len != 0) {
        return None;
    }
    if len == 0 {
        return Some(&[]);
    }
    Some(std::slice::from_raw_parts(
        ptr as u32 as usize as *const u8,
        len as usize,
    ))
}

/// Adapts an [`Output`]-returning function to [`Records`].
pub fn collect<O: Into<Output>, E>(result: Result<O, E>, out: &mut Records) -> Result<(), E> {
    match result?.into() {
        Output::Nothing => {}
        Output::One(record) => out.push(record),
        Output::Many(records) => {
            for record in records {
                out.push(record);
            }
        }
    }
    Ok(())
}

/// `process(ptr, len)`: one input, at most one record (`-1` on error or for
/// more records, which only `process_batch` can return).
pub fn process<F, E>(ptr: i32, len: i32, handler: F) -> i64
where
    F: Fn(&[u8], &mut Records) -> Result<(), E>,
    E: Display,
{
    // SAFETY: the host passes what it wrote after alloc.
    let input = match unsafe { input(ptr, len) } {
        Some(input) => input,
        None => return -1,
    };
    // SAFETY: one export call at a time; the buffer is not handed out.
    let out = unsafe { OUTPUT.get() };
    out.clear();
    let mut records = Records::new(out);
    if handler(input, &mut records).is_err() {
        return -1;
    }
    match records.count() {
        0 => pack(out.as_ptr(), 0),
        // Skip the record's u32 length: process returns the bare bytes.
        1 => pack(out[4..].as_ptr(), out.len() - 4),
        _ => -1,
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Appends a `Display` value's text to a byte buffer.
struct TextWriter<'a>(&'a mut Vec<u8>);

impl Write for TextWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `process_batch(ptr, len)`: `u32 count`, then per input `u32 length` +
/// bytes; returns per input `i32 n` + n records, or `-1` + the error text.
pub fn process_batch<F, E>(ptr: i32, len: i32, handler: F) -> i64
where
    F: Fn(&[u8], &mut Records) -> Result<(), E>,
    E: Display,
{
    // SAFETY: the host passes what it wrote after alloc.
    let batch = match unsafe { input(ptr, len) } {
        Some(batch) => batch,
        None => return MALFORMED_BATCH,
    };
    // SAFETY: one export call at a time; the buffer is not handed out.
    let out = unsafe { OUTPUT.get() };
    if !run_batch(batch, out, handler) {
        return MALFORMED_BATCH;
    }
    pack(out.as_ptr(), out.len())
}

/// The framing of `process_batch`: false when `batch` is not well framed.
fn run_batch<F, E>(batch: &[u8], out: &mut Vec<u8>, handler: F) -> bool
where
    F: Fn(&[u8], &mut Records) -> Result<(), E>,
    E: Display,
{
    let count = match read_u32(batch, 0) {
        Some(count) => count,
        None => return false,
    };
    out.clear();
    let mut at = 4usize;
    for _ in 0..count {
        let rec_len = match read_u32(batch, at) {
            Some(n) => n as usize,
            None => return false,
        };
        at += 4;
        let rec = match at.checked_add(rec_len).and_then(|end| batch.get(at..end)) {
            Some(rec) => rec,
            None => return false,
        };
        at += rec_len;
        let n_at = out.len();
        out.extend_from_slice(&[0; 4]); // i32 n, set below
        let mut records = Records::new(out);
        match handler(rec, &mut records) {
            Ok(()) => {
                let n = records.count();
                out[n_at..n_at + 4].copy_from_slice(&n.to_le_bytes());
            }
            Err(err) => {
                // Drop the records of the failed input; then -1 and the text.
                out.truncate(n_at);
                out.extend_from_slice(&(-1i32).to_le_bytes());
                let text_at = out.len();
                out.extend_from_slice(&[0; 4]);
                let _ = write!(TextWriter(out), "{}", err);
                let text_len = (out.len() - text_at - 4) as u32;
                out[text_at..text_at + 4].copy_from_slice(&text_len.to_le_bytes());
            }
        }
    }
    at == batch.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(inputs: &[&[u8]]) -> Vec<u8> {
        let mut b = (inputs.len() as u32).to_le_bytes().to_vec();
        for i in inputs {
            b.extend_from_slice(&(i.len() as u32).to_le_bytes());
            b.extend_from_slice(i);
        }
        b
    }

    fn echo_twice(input: &[u8], out: &mut Records) -> Result<(), String> {
        out.push(input);
        if input == b"bad" {
            return Err("bad input".to_string());
        }
        out.push(input);
        Ok(())
    }

    #[test]
    fn batch_framing() {
        let mut out = Vec::new();
        assert!(run_batch(
            &frame(&[b"a", b"bad", b""]),
            &mut out,
            echo_twice
        ));
        let mut want = Vec::new();
        want.extend_from_slice(&2i32.to_le_bytes());
        want.extend_from_slice(&[1, 0, 0, 0, b'a', 1, 0, 0, 0, b'a']);
        want.extend_from_slice(&(-1i32).to_le_bytes());
        want.extend_from_slice(&9u32.to_le_bytes());
        want.extend_from_slice(b"bad input");
        want.extend_from_slice(&2i32.to_le_bytes());
        want.extend_from_slice(&[0; 8]);
        assert_eq!(out, want);
    }

    #[test]
    fn batch_output_form() {
        let mut out = Vec::new();
        let f = |i: &[u8], o: &mut Records| {
            collect(
                if i.is_empty() {
                    Ok(Output::Nothing)
                } else {
                    Ok::<_, &str>(i.to_vec().into())
                },
                o,
            )
        };
        assert!(run_batch(&frame(&[b"", b"xy"]), &mut out, f));
        assert_eq!(out, [0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'x', b'y']);
    }

    #[test]
    fn malformed_batches() {
        let mut out = Vec::new();
        assert!(!run_batch(b"", &mut out, echo_twice));
        assert!(!run_batch(&[1, 0, 0, 0], &mut out, echo_twice));
        assert!(!run_batch(
            &[1, 0, 0, 0, 5, 0, 0, 0, b'a'],
            &mut out,
            echo_twice
        ));
        let mut extra = frame(&[b"a"]);
        extra.push(0);
        assert!(!run_batch(&extra, &mut out, echo_twice));
        assert!(run_batch(&frame(&[]), &mut out, echo_twice));
        assert!(out.is_empty());
    }
}
