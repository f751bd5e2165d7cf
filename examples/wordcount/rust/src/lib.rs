//! The "wordcount" Function Stream example in Rust (stateful; the same as
//! examples/wordcount/wordcount.c, see examples/wordcount/README.md).
//!
//! Each input is a line. A word is a run of ASCII letters and digits,
//! lowercased. Every word at least config `min_length` long (default 1) adds 1
//! to its state counter and outputs `{"word":"<w>","count":<new count>}`, so an
//! input gives 0..N records. A line without any word logs
//! `wordcount: empty line` at info level.

use std::sync::atomic::{AtomicU32, Ordering};

use function_stream::{config, log, state, Records};

/// The state key limit: a longer word fails the input.
const MAX_WORD: usize = 4096;

/// Config `min_length`, read on first use (0: not read yet).
static MIN_LENGTH: AtomicU32 = AtomicU32::new(0);

fn min_length() -> usize {
    let cached = MIN_LENGTH.load(Ordering::Relaxed);
    if cached != 0 {
        return cached as usize;
    }
    let value = match config::get("min_length") {
        None => 1,
        Some(text) => match parse_min_length(&text) {
            Some(v) => v,
            None => {
                let shown: String = text.chars().take(40).collect();
                log::info(&format!(
                    "wordcount: config min_length=\"{}\" is not an integer from 1 to 1000000; using 1",
                    shown
                ));
                1
            }
        },
    };
    MIN_LENGTH.store(value, Ordering::Relaxed);
    value as usize
}

/// Only plain decimal digits, 1..=1000000.
fn parse_min_length(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 7 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u32 = text.parse().ok()?;
    if (1..=1_000_000).contains(&v) {
        Some(v)
    } else {
        None
    }
}

/// The words of a line: runs of ASCII letters and digits.
fn words(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| !b.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
}

const HEAD: &[u8] = b"{\"word\":\"";

fn wordcount(line: &[u8], out: &mut Records) -> Result<(), String> {
    let min = min_length();
    let mut any = false;
    // One buffer per input: the record, whose word part is also the state key.
    let mut record = Vec::with_capacity(64);
    for word in words(line) {
        any = true;
        if word.len() < min {
            continue;
        }
        if word.len() > MAX_WORD {
            return Err(format!(
                "wordcount: a word of {} bytes is longer than {} (the state key limit)",
                word.len(),
                MAX_WORD
            ));
        }
        record.clear();
        record.extend_from_slice(HEAD);
        record.extend(word.iter().map(u8::to_ascii_lowercase));
        let count = state::add(&record[HEAD.len()..], 1);
        record.extend_from_slice(b"\",\"count\":");
        record.extend_from_slice(count.to_string().as_bytes());
        record.push(b'}');
        out.push(&record);
    }
    if !any {
        log::info("wordcount: empty line");
    }
    Ok(())
}

function_stream::export_records!(wordcount);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_like_the_c_example() {
        let got: Vec<&[u8]> = words(b"The cat, the_end  x9\xc3\xa9z!").collect();
        assert_eq!(got, [&b"The"[..], b"cat", b"the", b"end", b"x9", b"z"]);
        assert_eq!(words(b" .,- ").count(), 0);
    }

    #[test]
    fn min_length_values() {
        assert_eq!(parse_min_length("3"), Some(3));
        assert_eq!(parse_min_length("1000000"), Some(1_000_000));
        for bad in ["0", "1000001", "", "+3", " 3", "3x", "-1", "99999999"] {
            assert_eq!(parse_min_length(bad), None, "{}", bad);
        }
    }
}
