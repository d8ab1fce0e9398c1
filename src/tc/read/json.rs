//! A JSON reader that accepts what `tc -j` really prints.
//!
//! serde_json cannot be used as is: iproute2 prints duplicate keys (u32's `match`, tbf's
//! `mpu`; `serde_json::Value` silently keeps only the last one, a derived struct fails), and
//! before iproute2 6.1 (fw: before 6.8, basic: still) it prints raw text where a member
//! belongs, e.g. `"options":{handle 0xa classid 1:10 }` or `"flowid":"1:1"\n meta(…)\n}`.
//! This reader keeps every member in order and collects such raw text as members under
//! [`RAW`], so the kind-specific code can parse it like tc's text output.
//!
//! The tree borrows from the dump: keys, numbers, raw text and every string without an
//! escape (all tc prints, in practice) are slices of it, so reading 10,000 filters does not
//! allocate a string for each of their keys and values.

use std::borrow::Cow;
use std::fmt;

/// The key under which raw (non-JSON) text inside an object is kept.
pub const RAW: &str = "\u{0}raw";

#[derive(Debug, Clone, PartialEq)]
pub enum J<'a> {
    Null,
    Bool(bool),
    /// The number as printed; converted on use so 64-bit integers stay exact.
    Num(&'a str),
    /// Borrowed unless it had an escape.
    Str(Cow<'a, str>),
    Arr(Vec<J<'a>>),
    /// Members in printed order, duplicates kept.
    Obj(Vec<(Cow<'a, str>, J<'a>)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub offset: usize,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} (byte {})",
            self.message, self.line, self.offset
        )
    }
}

impl std::error::Error for JsonError {}

impl<'a> J<'a> {
    /// The first member named `key` (objects only).
    pub fn get(&self, key: &str) -> Option<&J<'a>> {
        match self {
            J::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    /// Moves the first member named `key` out (objects only), leaving `Null` in its place.
    pub fn take(&mut self, key: &str) -> Option<J<'a>> {
        match self {
            J::Obj(m) => m
                .iter_mut()
                .find(|(k, _)| k == key)
                .map(|(_, v)| std::mem::replace(v, J::Null)),
            _ => None,
        }
    }
    /// Every member named `key`, in order (u32 prints one `match` per key).
    pub fn get_all<'s>(&'s self, key: &'s str) -> impl Iterator<Item = &'s J<'a>> + 's {
        let members: &[(Cow<'a, str>, J<'a>)] = match self {
            J::Obj(m) => m,
            _ => &[],
        };
        members
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v)
    }
    pub fn members(&self) -> &[(Cow<'a, str>, J<'a>)] {
        match self {
            J::Obj(m) => m,
            _ => &[],
        }
    }
    /// Raw text tc printed inside this object, joined; `None` when there was none.
    pub fn raw_text(&self) -> Option<String> {
        let parts: Vec<&str> = self
            .get_all(RAW)
            .filter_map(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            J::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            J::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[J<'a>]> {
        match self {
            J::Arr(a) => Some(a),
            _ => None,
        }
    }
    /// A non-negative integer; also accepts numbers tc quotes (`"bkt":"0"`).
    pub fn as_u64(&self) -> Option<u64> {
        self.number_text()?.parse().ok()
    }
    pub fn as_i64(&self) -> Option<i64> {
        self.number_text()?.parse().ok()
    }
    /// A number's text, or a string's (tc quotes some numbers).
    fn number_text(&self) -> Option<&str> {
        match self {
            J::Num(n) => Some(n),
            J::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            J::Num(n) => n.parse::<f64>().ok().filter(|v| v.is_finite()),
            _ => None,
        }
    }
    /// A hex field tc prints as a string (`"0x10"`, `"ffff"`) or a plain number.
    pub fn as_hex(&self) -> Option<u64> {
        match self {
            J::Str(s) => {
                let s = s.trim();
                let digits = s
                    .strip_prefix("0x")
                    .or_else(|| s.strip_prefix("0X"))
                    .unwrap_or(s);
                u64::from_str_radix(digits, 16).ok()
            }
            J::Num(n) => n.parse().ok(),
            _ => None,
        }
    }
    /// Compact one-line rendering (for summaries of filters qosctl does not manage).
    pub fn compact(&self) -> String {
        let mut s = String::new();
        self.write_compact(&mut s);
        s
    }
    fn write_compact(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(n),
            J::Str(s) => out.push_str(s),
            J::Arr(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_compact(out);
                }
                out.push(']');
            }
            J::Obj(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    if k != RAW {
                        out.push_str(k);
                        out.push('=');
                    }
                    v.write_compact(out);
                }
                out.push('}');
            }
        }
    }
}

/// Parses one JSON value (surrounding whitespace allowed). Empty input is an error: the
/// caller decides what "tc printed nothing" means.
pub fn parse(input: &str) -> Result<J<'_>, JsonError> {
    let mut p = Parser {
        s: input.as_bytes(),
        src: input,
        i: 0,
        depth: 0,
    };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.err("unexpected text after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    depth: usize,
}

/// Deeper nesting than tc ever prints means garbage; stop before the stack does.
const MAX_DEPTH: usize = 128;

impl<'a> Parser<'a> {
    fn err(&self, message: &str) -> JsonError {
        let upto = self.i.min(self.s.len());
        JsonError {
            offset: upto,
            line: 1 + self.s[..upto].iter().filter(|&&b| b == b'\n').count(),
            message: message.to_string(),
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn value(&mut self) -> Result<J<'a>, JsonError> {
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(J::Str(self.string()?)),
            Some(b't') => self.word("true", J::Bool(true)),
            Some(b'f') => self.word("false", J::Bool(false)),
            Some(b'n') => self.word("null", J::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a JSON value")),
        }
    }
    fn word(&mut self, w: &str, v: J<'a>) -> Result<J<'a>, JsonError> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(self.err("expected a JSON value"))
        }
    }
    fn number(&mut self) -> Result<J<'a>, JsonError> {
        let start = self.i;
        while matches!(
            self.peek(),
            Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        ) {
            self.i += 1;
        }
        let n = &self.src[start..self.i];
        if n.parse::<f64>().is_err() {
            self.i = start;
            return Err(self.err("invalid number"));
        }
        Ok(J::Num(n))
    }
    /// A string: a slice of the input up to the closing quote, or, at the first escape,
    /// a copy with the escapes decoded.
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.i += 1; // opening quote
        let start = self.i;
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    self.i += 1;
                    return Ok(Cow::Borrowed(&self.src[start..self.i - 1]));
                }
                b'\\' => break,
                _ => self.i += 1,
            }
        }
        self.i = start;
        self.unescape().map(Cow::Owned)
    }
    fn unescape(&mut self) -> Result<String, JsonError> {
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' {
                    break;
                }
                self.i += 1;
            }
            out.push_str(&self.src[start..self.i]);
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(_) => {
                    self.i += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let code = self
                                .src
                                .get(self.i..self.i + 4)
                                .and_then(|h| u32::from_str_radix(h, 16).ok());
                            let Some(code) = code else {
                                return Err(self.err("invalid \\u escape in string"));
                            };
                            // Surrogate halves (never printed by tc) become U+FFFD.
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                            self.i += 4;
                        }
                        _ => return Err(self.err("invalid escape in string")),
                    }
                }
            }
        }
    }
    fn enter(&mut self) -> Result<(), JsonError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        Ok(())
    }
    fn array(&mut self) -> Result<J<'a>, JsonError> {
        self.enter()?;
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            self.depth -= 1;
            return Ok(J::Arr(items));
        }
        loop {
            self.ws();
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(J::Arr(items));
                }
                _ => return Err(self.err("expected , or ] in array")),
            }
        }
    }
    /// Raw text up to the next `,`, `}` or `"` outside nested braces (not consumed). A
    /// quote ends it because tc 5.4 prints the next key right after its text, without a
    /// comma (`… at 0"actions":[…]`); its raw text never contains quotes.
    fn raw(&mut self) -> Result<&'a str, JsonError> {
        let start = self.i;
        let mut nest = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'{' => nest += 1,
                b'}' | b',' | b'"' if nest == 0 => break,
                b'}' => nest -= 1,
                _ => {}
            }
            self.i += 1;
        }
        if self.peek().is_none() {
            return Err(self.err("unterminated object (text inside JSON)"));
        }
        Ok(&self.src[start..self.i])
    }
    fn object(&mut self) -> Result<J<'a>, JsonError> {
        self.enter()?;
        self.i += 1;
        let mut members = Vec::new();
        loop {
            self.ws();
            match self.peek() {
                Some(b'}') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(J::Obj(members));
                }
                Some(b',') => {
                    self.i += 1;
                    continue;
                }
                Some(b'"') => {
                    let key = self.string()?;
                    self.ws();
                    if self.peek() != Some(b':') {
                        return Err(self.err("expected : after key"));
                    }
                    self.i += 1;
                    self.ws();
                    let v = self.value()?;
                    members.push((key, v));
                    self.ws();
                    // Text tc printed right after a value (`"flowid":"1:1" meta(…)`).
                    if !matches!(self.peek(), Some(b',' | b'}')) {
                        let raw = self.raw()?;
                        members.push((Cow::Borrowed(RAW), J::Str(Cow::Borrowed(raw))));
                    }
                }
                Some(_) => {
                    let raw = self.raw()?;
                    members.push((Cow::Borrowed(RAW), J::Str(Cow::Borrowed(raw))));
                }
                None => return Err(self.err("unterminated object")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duplicate_keys_in_order() {
        let v = parse(r#"{"match":{"off":16},"match":{"off":20},"mpu":0,"mpu":1}"#).unwrap();
        let offs: Vec<u64> = v
            .get_all("match")
            .filter_map(|m| m.get("off")?.as_u64())
            .collect();
        assert_eq!(offs, vec![16, 20]);
        assert_eq!(v.get("mpu").and_then(J::as_u64), Some(0));
    }

    #[test]
    fn serde_json_value_drops_duplicates_silently() {
        // Why this module exists: serde_json::Value keeps only the last duplicate.
        let v: serde_json::Value =
            serde_json::from_str(r#"{"match":{"off":16},"match":{"off":20}}"#).unwrap();
        assert_eq!(v["match"]["off"], 20);
    }

    #[test]
    fn raw_text_as_object_body() {
        let v = parse(r#"[{"kind":"fw","options":{handle 0xa classid 1:10 }}]"#).unwrap();
        let o = v.as_array().unwrap()[0].get("options").unwrap();
        assert_eq!(o.raw_text().as_deref(), Some("handle 0xa classid 1:10"));
    }

    #[test]
    fn raw_text_after_a_value() {
        let v = parse("{\"handle\":\"1\",\"flowid\":\"1:1\"\n  meta(priority eq 6)\n}").unwrap();
        assert_eq!(v.get("flowid").and_then(J::as_str), Some("1:1"));
        assert_eq!(v.raw_text().as_deref(), Some("meta(priority eq 6)"));
        let p = parse(
            r#"{"order": 1 police 0x2 ,"x":{"type":"drop"}overhead 0b
        ref 1
,"y":2}"#,
        )
        .unwrap();
        assert_eq!(p.get("y").and_then(J::as_u64), Some(2));
        assert_eq!(
            p.raw_text().as_deref(),
            Some("police 0x2 overhead 0b\n        ref 1")
        );
    }

    #[test]
    fn raw_text_followed_by_a_key_without_comma() {
        // by-version/5.4.0/filter-v1-ingress-s.json
        let v = parse(
            r#"{fh 800::800 flowid ??? not_in_hw
  match 00000000/00000000 at 0"actions":[{"order":1,"kind":"mirred"}]}"#,
        )
        .unwrap();
        assert_eq!(
            v.raw_text().as_deref(),
            Some("fh 800::800 flowid ??? not_in_hw\n  match 00000000/00000000 at 0")
        );
        let a = v.get("actions").and_then(J::as_array).unwrap();
        assert_eq!(a[0].get("kind").and_then(J::as_str), Some("mirred"));
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let v = parse(r#"{"plain":"1:10","esc":"a\"b\\c\u0041\n","k\u0065y":1}"#).unwrap();
        assert!(matches!(
            v.get("plain"),
            Some(J::Str(Cow::Borrowed("1:10")))
        ));
        assert_eq!(v.get("esc").and_then(J::as_str), Some("a\"b\\cA\n"));
        assert!(matches!(v.get("esc"), Some(J::Str(Cow::Owned(_)))));
        assert_eq!(v.get("key").and_then(J::as_u64), Some(1));
        assert!(parse(r#"["a\"#).is_err());
        assert!(parse(r#"["a\u00"]"#).is_err());
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            "", "[", "{", "[1,", "{\"a\"", "{\"a\":}", "\"x", "nul", "[1 2]", "{a", "-",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        let deep = "[".repeat(1000);
        assert!(parse(&deep).is_err());
    }
}
