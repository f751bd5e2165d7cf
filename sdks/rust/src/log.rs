//! One line into the worker's log (`source=guest`, with the function and
//! replica). Trailing whitespace is dropped and a line is cut at 4096
//! characters; debug lines show only when the worker logs at debug level.
//!
//! ```ignore
//! function_stream::log::info(&format!("skipped {} bytes", n));
//! ```

use crate::host;

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Shown only when the worker logs at debug level.
    Debug = 0,
    /// Informational.
    Info = 1,
    /// Something looks wrong.
    Warning = 2,
    /// Something is wrong.
    Error = 3,
}

/// Writes `line` at `level`.
pub fn write(level: Level, line: &str) {
    unsafe { host::log(level as i32, line.as_ptr(), line.len()) }
}

/// Writes `line` at debug level.
pub fn debug(line: &str) {
    write(Level::Debug, line)
}

/// Writes `line` at info level.
pub fn info(line: &str) {
    write(Level::Info, line)
}

/// Writes `line` at warning level.
pub fn warn(line: &str) {
    write(Level::Warning, line)
}

/// Writes `line` at error level.
pub fn error(line: &str) {
    write(Level::Error, line)
}
