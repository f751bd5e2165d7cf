//! Write Function Stream functions in Rust.
//!
//! A function is one Rust function from input bytes to zero or more output
//! records, or an error. [`export!`] (or [`export_records!`]) turns it into a
//! WebAssembly module speaking the Function Stream ABI, lane 1
//! (`docs/abi.md`): the macro defines the exports `alloc`, `process` and
//! `process_batch` (rustc exports `memory`), and does all the framing. The host
//! calls `process_batch` with up to 256 messages per call, the fast path.
//!
//! ```ignore
//! use function_stream::Output;
//!
//! fn shout(input: &[u8]) -> Result<Output, String> {
//!     let text = std::str::from_utf8(input).map_err(|e| format!("not UTF-8: {}", e))?;
//!     Ok(text.to_uppercase().into())
//! }
//!
//! function_stream::export!(shout);
//! ```
//!
//! Build it as a `cdylib` for `wasm32-wasip1` (`wasm32-wasi` on rustc before
//! 1.78). An `Err` fails that input only (it is retried, then dead-lettered,
//! with the error text in the message); a panic traps, which fails the input
//! too and makes the host rebuild the instance.
//!
//! The host API (module `fs`) is in [`state`], [`config`], [`log`] and
//! [`msg`]. Only what a function calls is imported by its module. Calling
//! anything in [`msg`] makes the host call the function one message at a time
//! (the metadata belongs to one input).

#![warn(missing_docs)]

mod abi;
mod host;
mod output;

pub mod config;
pub mod log;
pub mod msg;
pub mod state;

pub use output::{Output, Records};

/// What the export macros call; not part of the API.
#[doc(hidden)]
pub mod __rt {
    pub use crate::abi::{alloc, collect, process, process_batch};
}

/// Export `fn(&[u8]) -> Result<O, E>` as this module's function.
///
/// `O` is anything that converts into an [`Output`]: `()` or `None` for no
/// record, a `Vec<u8>`, `String` or `&str` for one, a `Vec<Vec<u8>>` or
/// [`Output::Many`] for several. `E` is anything that implements
/// [`std::fmt::Display`]; its text goes into the failed message.
///
/// ```ignore
/// fn double(input: &[u8]) -> Result<Vec<u8>, &'static str> {
///     let mut out = input.to_vec();
///     out.extend_from_slice(input);
///     Ok(out)
/// }
/// function_stream::export!(double);
/// ```
///
/// Use it once per crate: it defines the exports `alloc`, `process` and
/// `process_batch`.
#[macro_export]
macro_rules! export {
    ($handler:expr) => {
        $crate::__export_abi!(|input: &[u8], out: &mut $crate::Records| {
            $crate::__rt::collect(($handler)(input), out)
        });
    };
}

/// Export `fn(&[u8], &mut Records) -> Result<(), E>` as this module's function.
///
/// The function pushes its output records into [`Records`], which writes them
/// straight into the reused output buffer (no allocation per record). When it
/// returns `Err`, the records it pushed for that input are dropped.
///
/// ```ignore
/// use function_stream::Records;
///
/// fn split(input: &[u8], out: &mut Records) -> Result<(), String> {
///     for part in input.split(|&b| b == b',') {
///         out.push(part);
///     }
///     Ok(())
/// }
/// function_stream::export_records!(split);
/// ```
#[macro_export]
macro_rules! export_records {
    ($handler:expr) => {
        $crate::__export_abi!($handler);
    };
}

/// Defines the ABI exports around a `Fn(&[u8], &mut Records) -> Result<(), E>`.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_abi {
    ($handler:expr) => {
        // What crt1-reactor.o does for C: run the static constructors of
        // any linked C code (wasi-libc's) once, as WASI reactors do. Rust
        // itself has none, but a module without it would skip them.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[export_name = "_initialize"]
        pub extern "C" fn __function_stream_initialize() {
            extern "C" {
                fn __wasm_call_ctors();
            }
            // SAFETY: the host calls _initialize once, before anything else.
            unsafe { __wasm_call_ctors() }
        }

        #[doc(hidden)]
        #[export_name = "alloc"]
        pub extern "C" fn __function_stream_alloc(len: i32) -> i32 {
            $crate::__rt::alloc(len)
        }

        #[doc(hidden)]
        #[export_name = "process"]
        pub extern "C" fn __function_stream_process(ptr: i32, len: i32) -> i64 {
            $crate::__rt::process(ptr, len, $handler)
        }

        #[doc(hidden)]
        #[export_name = "process_batch"]
        pub extern "C" fn __function_stream_process_batch(ptr: i32, len: i32) -> i64 {
            $crate::__rt::process_batch(ptr, len, $handler)
        }
    };
}
