// A strict reader for the "basic" example's JSON person (AssemblyScript's
// standard library has no JSON). It reads bytes, not strings: names stay
// UTF-8 from input to output.

/** A growable byte buffer. */
export class Bytes {
  buf: Uint8Array = new Uint8Array(64);
  length: i32 = 0;

  push(b: u8): void {
    if (this.length == this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    unchecked((this.buf[this.length++] = b));
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

export class Person {
  name: Bytes = new Bytes();
  money: i64 = 0;
  expected: i64 = 0;
}

/** How deep an ignored value may nest (the C example allows 64, Python about 1000). */
const MAX_DEPTH = 512;

/** Parses one JSON object into a Person; `error` says why it could not. */
export class PersonReader {
  s: Uint8Array = new Uint8Array(0);
  pos: i32 = 0;
  error: string | null = null;
  int: i64 = 0;
  // Reused from input to input.
  person: Person = new Person();
  key: Bytes = new Bytes();
  ignored: Bytes = new Bytes();

  /** The person in `input` (valid until the next call), or null with `error` set. */
  read(input: Uint8Array): Person | null {
    this.s = input;
    this.pos = 0;
    this.error = null;
    const p = this.person;
    p.expected = 0;
    let seenName = false;
    let seenMoney = false;
    const key = this.key;
    this.ws();
    if (!this.expect(0x7b /* { */)) return null;
    this.ws();
    if (this.peek() == 0x7d /* } */) {
      this.pos++;
    } else {
      while (true) {
        this.ws();
        key.length = 0;
        if (!this.string(key)) return null;
        this.ws();
        if (!this.expect(0x3a /* : */)) return null;
        this.ws();
        if (is(key, "name")) {
          if (this.peek() != 0x22) return this.fail("\"name\" must be a string");
          p.name.length = 0;
          if (!this.string(p.name)) return null;
          seenName = true;
        } else if (is(key, "money")) {
          if (!this.integer()) return null;
          p.money = this.int;
          seenMoney = true;
        } else if (is(key, "expected")) {
          if (this.peek() == 0x6e /* n */) {
            if (!this.literal("null")) return null;
            p.expected = 0;
          } else {
            if (!this.integer()) return null;
            p.expected = this.int;
          }
        } else if (!this.skip(0)) {
          return null;
        }
        this.ws();
        const c = this.peek();
        this.pos++;
        if (c == 0x7d /* } */) break;
        if (c != 0x2c /* , */) return this.fail("expected ',' or '}'");
      }
    }
    this.ws();
    if (this.pos != this.s.length) return this.fail("text after the object");
    if (!seenName) return this.fail("\"name\" is missing");
    if (!seenMoney) return this.fail("\"money\" is missing");
    return p;
  }

  fail(why: string): Person | null {
    if (this.error === null) this.error = why + " at byte " + this.pos.toString();
    return null;
  }

  ws(): void {
    const s = this.s;
    while (this.pos < s.length) {
      const c = unchecked(s[this.pos]);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.pos++;
    }
  }

  peek(): i32 {
    return this.pos < this.s.length ? <i32>unchecked(this.s[this.pos]) : -1;
  }

  expect(c: i32): bool {
    if (this.peek() != c) {
      this.fail("expected '" + String.fromCharCode(c) + "'");
      return false;
    }
    this.pos++;
    return true;
  }

  literal(word: string): bool {
    for (let i = 0; i < word.length; i++) {
      if (this.peek() != word.charCodeAt(i)) {
        this.fail("invalid literal");
        return false;
      }
      this.pos++;
    }
    return true;
  }

  /** A JSON integer (no fraction or exponent) that fits i64, into `int`. */
  integer(): bool {
    const neg = this.peek() == 0x2d; /* - */
    if (neg) this.pos++;
    const limit: u64 = neg ? 9223372036854775808 : 9223372036854775807;
    let mag: u64 = 0;
    const first = this.pos;
    let c = this.peek();
    if (c < 0x30 || c > 0x39) {
      this.fail("expected an integer");
      return false;
    }
    while (c >= 0x30 && c <= 0x39) {
      const d = <u64>(c - 0x30);
      if (mag > (limit - d) / 10) {
        this.fail("integer does not fit 64 bits");
        return false;
      }
      mag = mag * 10 + d;
      this.pos++;
      c = this.peek();
    }
    if (this.pos - first > 1 && unchecked(this.s[first]) == 0x30) {
      this.fail("leading zero");
      return false;
    }
    if (c == 0x2e || c == 0x65 || c == 0x45) { /* . e E */
      this.fail("expected an integer, not a fraction or exponent");
      return false;
    }
    this.int = neg ? <i64>(0 - mag) : <i64>mag;
    return true;
  }

  /** Any JSON number (validated, value ignored). */
  number(): bool {
    if (this.peek() == 0x2d) this.pos++;
    if (this.peek() == 0x30) {
      this.pos++;
      const next = this.peek();
      if (next >= 0x30 && next <= 0x39) {
        this.fail("leading zero");
        return false;
      }
    } else if (!this.digits()) {
      return false;
    }
    if (this.peek() == 0x2e) {
      this.pos++;
      if (!this.digits()) return false;
    }
    const c = this.peek();
    if (c == 0x65 || c == 0x45) {
      this.pos++;
      const sign = this.peek();
      if (sign == 0x2b || sign == 0x2d) this.pos++;
      if (!this.digits()) return false;
    }
    return true;
  }

  digits(): bool {
    let n = 0;
    let c = this.peek();
    while (c >= 0x30 && c <= 0x39) {
      n++;
      this.pos++;
      c = this.peek();
    }
    if (n == 0) this.fail("invalid number");
    return n > 0;
  }

  /** A JSON string, decoded into `out` as UTF-8. */
  string(out: Bytes): bool {
    if (!this.expect(0x22 /* " */)) return false;
    const s = this.s;
    while (true) {
      if (this.pos >= s.length) {
        this.fail("unterminated string");
        return false;
      }
      const c = unchecked(s[this.pos]);
      if (c == 0x22) {
        this.pos++;
        return true;
      }
      if (c < 0x20) {
        this.fail("raw control character in a string");
        return false;
      }
      if (c == 0x5c /* \ */) {
        if (!this.escape(out)) return false;
      } else if (c < 0x80) {
        out.push(c);
        this.pos++;
      } else if (!this.utf8(out)) {
        return false;
      }
    }
  }

  escape(out: Bytes): bool {
    this.pos++;
    const c = this.peek();
    this.pos++;
    let cp: i32 = -1;
    if (c == 0x22 || c == 0x5c || c == 0x2f) cp = c;
    else if (c == 0x62) cp = 0x08;
    else if (c == 0x66) cp = 0x0c;
    else if (c == 0x6e) cp = 0x0a;
    else if (c == 0x72) cp = 0x0d;
    else if (c == 0x74) cp = 0x09;
    else if (c == 0x75 /* u */) {
      cp = this.hex4();
      if (cp >= 0xd800 && cp <= 0xdbff) {
        if (this.peek() != 0x5c) return this.badSurrogate();
        this.pos++;
        if (this.peek() != 0x75) return this.badSurrogate();
        this.pos++;
        const lo = this.hex4();
        if (lo < 0xdc00 || lo > 0xdfff) return this.badSurrogate();
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        return this.badSurrogate();
      }
    }
    if (cp < 0) {
      this.fail("invalid escape");
      return false;
    }
    encode(out, cp);
    return true;
  }

  badSurrogate(): bool {
    this.fail("unpaired UTF-16 surrogate in an escape");
    return false;
  }

  hex4(): i32 {
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.peek();
      let d = -1;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      if (d < 0) return -1;
      v = (v << 4) | d;
      this.pos++;
    }
    return v;
  }

  /** One multi-byte UTF-8 sequence, checked (no overlongs, surrogates or > U+10FFFF). */
  utf8(out: Bytes): bool {
    const s = this.s;
    const c = <i32>unchecked(s[this.pos]);
    let n = 0;
    let min = 0;
    let cp = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
      min = 0x10000;
    } else {
      this.fail("invalid UTF-8");
      return false;
    }
    if (this.pos + n >= s.length) {
      this.fail("invalid UTF-8");
      return false;
    }
    for (let i = 1; i <= n; i++) {
      const b = <i32>unchecked(s[this.pos + i]);
      if ((b & 0xc0) != 0x80) {
        this.fail("invalid UTF-8");
        return false;
      }
      cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      this.fail("invalid UTF-8");
      return false;
    }
    for (let i = 0; i <= n; i++) out.push(unchecked(s[this.pos + i]));
    this.pos += n + 1;
    return true;
  }

  /** Any JSON value, checked and ignored. */
  skip(depth: i32): bool {
    const c = this.peek();
    if (c == 0x22) {
      this.ignored.length = 0;
      return this.string(this.ignored);
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (c == 0x74) return this.literal("true");
    if (c == 0x66) return this.literal("false");
    if (c == 0x6e) return this.literal("null");
    if (c != 0x7b && c != 0x5b) {
      this.fail("expected a JSON value");
      return false;
    }
    if (depth >= MAX_DEPTH) {
      this.fail("value nested too deeply");
      return false;
    }
    const object = c == 0x7b;
    const close = object ? 0x7d : 0x5d;
    this.pos++;
    this.ws();
    if (this.peek() == close) {
      this.pos++;
      return true;
    }
    while (true) {
      this.ws();
      if (object) {
        this.ignored.length = 0;
        if (!this.string(this.ignored)) return false;
        this.ws();
        if (!this.expect(0x3a)) return false;
        this.ws();
      }
      if (!this.skip(depth + 1)) return false;
      this.ws();
      const d = this.peek();
      this.pos++;
      if (d == close) return true;
      if (d != 0x2c) {
        this.fail("expected ',' or a closing bracket");
        return false;
      }
    }
  }
}

function is(key: Bytes, name: string): bool {
  if (key.length != name.length) return false;
  for (let i = 0; i < name.length; i++) {
    if (<i32>unchecked(key.buf[i]) != name.charCodeAt(i)) return false;
  }
  return true;
}

/** Append code point `cp` as UTF-8. */
function encode(out: Bytes, cp: i32): void {
  if (cp < 0x80) {
    out.push(<u8>cp);
  } else if (cp < 0x800) {
    out.push(<u8>(0xc0 | (cp >> 6)));
    out.push(<u8>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push(<u8>(0xe0 | (cp >> 12)));
    out.push(<u8>(0x80 | ((cp >> 6) & 0x3f)));
    out.push(<u8>(0x80 | (cp & 0x3f)));
  } else {
    out.push(<u8>(0xf0 | (cp >> 18)));
    out.push(<u8>(0x80 | ((cp >> 12) & 0x3f)));
    out.push(<u8>(0x80 | ((cp >> 6) & 0x3f)));
    out.push(<u8>(0x80 | (cp & 0x3f)));
  }
}
