//! The "basic" example's record: a strict, hand-written JSON reader for
//! `{"name":string,"money":int[,"expected":int|null]}` and its writer.
//!
//! The function has no dependencies (it must build offline), so this is the
//! little of JSON it needs: any JSON object is read (unknown keys of any type
//! are checked and skipped); the last value of a repeated key wins, and the
//! types are checked on those last values.

use std::borrow::Cow;
use std::fmt;

/// Why an input is not a person; the text goes into the failed message.
#[derive(Debug, PartialEq, Eq)]
pub struct Error(&'static str);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "malformed input: {} (expected {{\"name\":string,\"money\":int[,\"expected\":int]}})",
            self.0
        )
    }
}

/// A parsed person.
#[derive(Debug, PartialEq, Eq)]
pub struct Person<'a> {
    pub name: Cow<'a, str>,
    pub money: i64,
    pub expected: i64,
}

/// How deep unknown values may nest.
const MAX_DEPTH: usize = 128;

/// What a value was, as far as the person's fields care.
enum Value<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Null,
    Other,
}

struct Reader<'a> {
    text: &'a str,
    s: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self, w: &str) -> Result<(), Error> {
        if self.s[self.at..].starts_with(w.as_bytes()) {
            self.at += w.len();
            Ok(())
        } else {
            Err(Error("not JSON"))
        }
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let digits = self
            .s
            .get(self.at..self.at + 4)
            .ok_or(Error("bad \\u escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char).to_digit(16).ok_or(Error("bad \\u escape"))?;
            v = v * 16 + n;
        }
        self.at += 4;
        Ok(v)
    }

    /// A string starting at the opening quote, decoded; borrowed from the
    /// input when it has no escapes (the common case: no allocation).
    fn string(&mut self) -> Result<Cow<'a, str>, Error> {
        if self.peek() != Some(b'"') {
            return Err(Error("expected a string"));
        }
        self.at += 1;
        let start = self.at;
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    self.at += 1;
                    // Both ends are at ASCII quotes, so on char boundaries;
                    // get() rather than [..] keeps str's panic path out of the
                    // module (8 KB).
                    let text = self.text.get(start..self.at - 1);
                    return text.map(Cow::Borrowed).ok_or(Error("not UTF-8"));
                }
                b'\\' => break,
                0..=0x1f => return Err(Error("control character in a string")),
                _ => self.at += 1,
            }
        }
        let mut out = self.s[start..self.at].to_vec();
        loop {
            let c = self.peek().ok_or(Error("unterminated string"))?;
            self.at += 1;
            match c {
                b'"' => break,
                0..=0x1f => return Err(Error("control character in a string")),
                b'\\' => {
                    let e = self.peek().ok_or(Error("unterminated string"))?;
                    self.at += 1;
                    let simple = match e {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => 0,
                        _ => return Err(Error("bad escape in a string")),
                    };
                    if e != b'u' {
                        out.push(simple);
                        continue;
                    }
                    let mut code = self.hex4()?;
                    if (0xd800..0xdc00).contains(&code) {
                        // A high surrogate must be followed by a low one.
                        if !self.s[self.at..].starts_with(b"\\u") {
                            return Err(Error("lone surrogate in a string"));
                        }
                        self.at += 2;
                        let low = self.hex4()?;
                        if !(0xdc00..0xe000).contains(&low) {
                            return Err(Error("lone surrogate in a string"));
                        }
                        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                    }
                    let ch = char::from_u32(code).ok_or(Error("lone surrogate in a string"))?;
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                }
                _ => out.push(c),
            }
        }
        // The input was checked to be UTF-8 and escapes give UTF-8.
        String::from_utf8(out)
            .map(Cow::Owned)
            .map_err(|_| Error("not UTF-8"))
    }

    /// A number: Some(value) when it is an integer that fits i64.
    fn number(&mut self) -> Result<Option<i64>, Error> {
        let neg = self.peek() == Some(b'-');
        if neg {
            self.at += 1;
        }
        let digits_at = self.at;
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.at += 1;
                }
            }
            _ => return Err(Error("not JSON")),
        }
        let digits_end = self.at;
        let mut integral = true;
        if self.peek() == Some(b'.') {
            integral = false;
            self.at += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            integral = false;
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.digits()?;
        }
        if !integral {
            return Ok(None);
        }
        // Accumulate negatively so i64::MIN fits.
        let mut v: i64 = 0;
        for &d in &self.s[digits_at..digits_end] {
            v = match v
                .checked_mul(10)
                .and_then(|v| v.checked_sub((d - b'0') as i64))
            {
                Some(v) => v,
                None => return Ok(None),
            };
        }
        Ok(if neg { Some(v) } else { v.checked_neg() })
    }

    fn digits(&mut self) -> Result<(), Error> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(Error("not JSON"));
        }
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        Ok(())
    }

    /// Any value (after whitespace), checked; strings and integers kept.
    fn value(&mut self, depth: usize) -> Result<Value<'a>, Error> {
        self.skip_ws();
        match self.peek().ok_or(Error("not JSON"))? {
            b'"' => Ok(Value::Str(self.string()?)),
            b't' => self.word("true").map(|_| Value::Other),
            b'f' => self.word("false").map(|_| Value::Other),
            b'n' => self.word("null").map(|_| Value::Null),
            b'-' | b'0'..=b'9' => Ok(match self.number()? {
                Some(v) => Value::Int(v),
                None => Value::Other,
            }),
            open @ (b'{' | b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(Error("nested too deep"));
                }
                self.at += 1;
                let close = if open == b'{' { b'}' } else { b']' };
                if self.eat(close) {
                    return Ok(Value::Other);
                }
                loop {
                    if open == b'{' {
                        self.skip_ws();
                        self.string()?;
                        if !self.eat(b':') {
                            return Err(Error("not JSON"));
                        }
                    }
                    self.value(depth + 1)?;
                    if self.eat(close) {
                        return Ok(Value::Other);
                    }
                    if !self.eat(b',') {
                        return Err(Error("not JSON"));
                    }
                }
            }
            _ => Err(Error("not JSON")),
        }
    }
}

/// Parses one JSON object into a person.
pub fn parse(input: &[u8]) -> Result<Person<'_>, Error> {
    let text = match std::str::from_utf8(input) {
        Ok(text) => text,
        Err(_) => return Err(Error("not UTF-8")),
    };
    let mut r = Reader {
        text,
        s: input,
        at: 0,
    };
    let (mut name, mut money, mut expected) = (None, None, None);
    if !r.eat(b'{') {
        return Err(Error("not a JSON object"));
    }
    if !r.eat(b'}') {
        loop {
            r.skip_ws();
            let key = r.string()?;
            if !r.eat(b':') {
                return Err(Error("not JSON"));
            }
            let value = r.value(1)?;
            // A repeated key: the last value wins.
            match &*key {
                "name" => name = Some(value),
                "money" => money = Some(value),
                "expected" => expected = Some(value),
                _ => {}
            }
            if r.eat(b'}') {
                break;
            }
            if !r.eat(b',') {
                return Err(Error("not JSON"));
            }
        }
    }
    r.skip_ws();
    if r.at != input.len() {
        return Err(Error("more than one JSON value"));
    }
    let name = match name {
        Some(Value::Str(s)) => s,
        Some(_) => return Err(Error("\"name\" is not a string")),
        None => return Err(Error("\"name\" is missing")),
    };
    let money = match money {
        Some(Value::Int(v)) => v,
        Some(_) => return Err(Error("\"money\" is not a 64-bit integer")),
        None => return Err(Error("\"money\" is missing")),
    };
    let expected = match expected {
        None | Some(Value::Null) => 0,
        Some(Value::Int(v)) => v,
        Some(_) => return Err(Error("\"expected\" is not a 64-bit integer or null")),
    };
    Ok(Person {
        name,
        money,
        expected,
    })
}

impl Person<'_> {
    /// `{"name":...,"money":...,"expected":...}`, no whitespace; the name with
    /// non-ASCII characters as raw UTF-8 (like Python's `ensure_ascii=False`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"name\":\"");
        for &b in self.name.as_bytes() {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                8 => out.extend_from_slice(b"\\b"),
                12 => out.extend_from_slice(b"\\f"),
                0..=0x1f => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 15) as usize]);
                }
                _ => out.push(b),
            }
        }
        out.extend_from_slice(b"\",\"money\":");
        push_int(out, self.money);
        out.extend_from_slice(b",\"expected\":");
        push_int(out, self.expected);
        out.push(b'}');
    }
}

/// Appends the decimal digits of `v` (no `format!`: it is the hot path).
fn push_int(out: &mut Vec<u8>, v: i64) {
    let mut digits = [0u8; 20];
    let mut n = 0;
    let mut mag = v.unsigned_abs();
    loop {
        digits[n] = b'0' + (mag % 10) as u8;
        n += 1;
        mag /= 10;
        if mag == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend(digits[..n].iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> Option<String> {
        let p = parse(input.as_bytes()).ok()?;
        let p = Person {
            money: p.money.checked_add(1)?,
            ..p
        };
        let mut out = Vec::new();
        p.write_json(&mut out);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn conformance_vectors() {
        let ok = [
            (
                r#"{"name":"rbt","money":2}"#,
                r#"{"name":"rbt","money":3,"expected":0}"#,
            ),
            (
                r#"{"money":41,"name":"alice","expected":7}"#,
                r#"{"name":"alice","money":42,"expected":7}"#,
            ),
            (
                r#" { "name" : "bob" , "money" : -5 , "expected" : null } "#,
                r#"{"name":"bob","money":-4,"expected":0}"#,
            ),
            (
                r#"{"name":"c","money":0,"extra":{"a":[1,2,{"b":null}]},"ok":true}"#,
                r#"{"name":"c","money":1,"expected":0}"#,
            ),
            (
                r#"{"name":"dup","money":1,"money":5}"#,
                r#"{"name":"dup","money":6,"expected":0}"#,
            ),
            (
                r#"{"name":"zoë","money":1}"#,
                r#"{"name":"zoë","money":2,"expected":0}"#,
            ),
            (
                r#"{"name":"say \"hi\"","money":10}"#,
                r#"{"name":"say \"hi\"","money":11,"expected":0}"#,
            ),
            (
                r#"{"name":"big","money":9007199254740990}"#,
                r#"{"name":"big","money":9007199254740991,"expected":0}"#,
            ),
            // Beyond the shared vectors: escapes are decoded and re-encoded.
            (
                r#"{"name":"z\u00f6\ud83d\ude00\/\n\u0001","money":-9223372036854775808}"#,
                "{\"name\":\"zö😀/\\n\\u0001\",\"money\":-9223372036854775807,\"expected\":0}",
            ),
            (
                r#"{"name":5,"name":"x","money":"1","money":1,"expected":null}"#,
                r#"{"name":"x","money":2,"expected":0}"#,
            ),
        ];
        for (input, want) in ok.iter() {
            assert_eq!(run(input).as_deref(), Some(*want), "{}", input);
        }
        let fail = [
            "not json",
            r#"{"name":"x"}"#,
            r#"{"name":5,"money":1}"#,
            r#"{"name":"x","money":1.5}"#,
            r#"{"name":"x","money":"1"}"#,
            "[1,2]",
            r#"{"name":"x","money":1,"expected":"no"}"#,
            r#"{"name":"x","money":9223372036854775807}"#,
            r#"{"name":"x","money":9223372036854775808}"#,
            r#"{"name":"x","money":1}{}"#,
            r#"{"name":"x","money":01}"#,
            r#"{"name":"x","money":1,}"#,
            r#"{"name":"\ud800","money":1}"#,
            r#"{"name":"x","money":1e2}"#,
            r#"{"name":"x","money":true}"#,
            "",
            "{",
            r#"{"name":"x","money":1,"a":[1,]}"#,
        ];
        for input in fail.iter() {
            assert_eq!(run(input), None, "{}", input);
        }
    }
}
