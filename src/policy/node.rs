//! A TOML document as a tree that keeps the byte span of every key and value.
//!
//! serde's derive stops at the first error; the policy checker wants every error of a file
//! in one run. So the document is first read into this loose tree (only TOML syntax can fail
//! here), and `schema.rs` walks it, collecting all problems with their spans.
//!
//! Spans come from toml's `Spanned` protocol (the magic struct name below, the same one
//! `toml::Spanned` uses). Tables that only exist implicitly (`interfaces` in
//! `[interfaces.wan]`) have no span of their own; the walker then points at the key.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::ops::Range;

const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];
const DATETIME_FIELD: &str = "$__toml_private_datetime";

pub type Span = Option<Range<usize>>;

/// A key with where it was written.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

/// A value with where it was written.
#[derive(Debug, Clone)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

#[derive(Debug, Clone)]
pub enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime(String),
    Array(Vec<Node>),
    /// In file order (the `preserve_order` feature of toml keeps it).
    Table(Vec<(Key, Node)>),
}

impl Value {
    /// The TOML type name, for "expected a string, found an integer".
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

impl Node {
    pub fn as_table(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Table(t) => Some(t),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key {
            name: v.to_owned(),
            span: None,
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        let (span, name) = read_spanned::<A, String>(&mut map)?;
        Ok(Key { name, span })
    }
}

/// Reads the three fields of toml's span protocol; the first key has not been read yet.
fn read_spanned<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
) -> Result<(Span, T), A::Error> {
    let mut start = None;
    let mut end = None;
    let mut value = None;
    while let Some(k) = map.next_key::<String>()? {
        match k.as_str() {
            SPANNED_START => start = Some(map.next_value::<usize>()?),
            SPANNED_END => end = Some(map.next_value::<usize>()?),
            SPANNED_VALUE => value = Some(map.next_value::<T>()?),
            other => return Err(de::Error::custom(format!("unexpected span field {other}"))),
        }
    }
    let value = value.ok_or_else(|| de::Error::custom("span without value"))?;
    let span = match (start, end) {
        (Some(s), Some(e)) if s <= e => Some(s..e),
        _ => None,
    };
    Ok((span, value))
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_struct(
            SPANNED_NAME,
            SPANNED_FIELDS,
            NodeVisitor { spanned_ok: true },
        )
    }
}

/// The value inside a span wrapper: asking for a span again would loop forever.
struct Bare(Node);

impl<'de> Deserialize<'de> for Bare {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bare, D::Error> {
        d.deserialize_any(NodeVisitor { spanned_ok: false })
            .map(Bare)
    }
}

struct NodeVisitor {
    spanned_ok: bool,
}

fn plain(value: Value) -> Node {
    Node { span: None, value }
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TOML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(plain(Value::Boolean(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(plain(Value::Integer(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        match i64::try_from(v) {
            Ok(i) => Ok(plain(Value::Integer(i))),
            Err(_) => Ok(plain(Value::Float(v as f64))),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(plain(Value::Float(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(plain(Value::String(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(plain(Value::String(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(plain(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let Some(first) = map.next_key::<Key>()? else {
            return Ok(plain(Value::Table(Vec::new())));
        };
        if first.name == SPANNED_START && self.spanned_ok {
            let start = map.next_value::<usize>()?;
            let mut end = None;
            let mut inner = None;
            while let Some(k) = map.next_key::<String>()? {
                match k.as_str() {
                    SPANNED_END => end = Some(map.next_value::<usize>()?),
                    SPANNED_VALUE => inner = Some(map.next_value::<Bare>()?.0),
                    other => {
                        return Err(de::Error::custom(format!("unexpected span field {other}")))
                    }
                }
            }
            let mut node = inner.ok_or_else(|| de::Error::custom("span without value"))?;
            node.span = end.filter(|e| *e >= start).map(|e| start..e);
            return Ok(node);
        }
        if first.name == DATETIME_FIELD {
            let s = map.next_value::<String>()?;
            return Ok(plain(Value::Datetime(s)));
        }
        let mut entries = vec![(first, map.next_value::<Node>()?)];
        while let Some(k) = map.next_key::<Key>()? {
            let v = map.next_value::<Node>()?;
            entries.push((k, v));
        }
        Ok(plain(Value::Table(entries)))
    }
}

/// Parses TOML text into the spanned tree; the error is toml's own (message + span).
pub fn parse(src: &str) -> Result<Node, toml::de::Error> {
    toml::from_str::<Node>(src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_spans_of_keys_and_values() {
        let src = "[interfaces.wan]\nrate = \"20mbit\"\nmarks = [0x10, 2]\n";
        let root = parse(src).unwrap();
        let t = root.as_table().unwrap();
        assert_eq!(t[0].0.name, "interfaces");
        let wan = &t[0].1.as_table().unwrap()[0];
        assert_eq!(&src[wan.0.span.clone().unwrap()], "wan");
        let rate = &wan.1.as_table().unwrap()[0];
        assert_eq!(&src[rate.0.span.clone().unwrap()], "rate");
        assert_eq!(&src[rate.1.span.clone().unwrap()], "\"20mbit\"");
        let marks = &wan.1.as_table().unwrap()[1].1;
        let Value::Array(items) = &marks.value else {
            panic!("not an array")
        };
        assert_eq!(&src[items[0].span.clone().unwrap()], "0x10");
        assert!(matches!(items[0].value, Value::Integer(16)));
    }
}
