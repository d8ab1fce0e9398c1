//! A TOML document as a tree that keeps the byte span of every key and value.
//!
//! serde's derive stops at the first error; the policy checker wants every error of a file
//! in one run. So the document is first read into this loose tree (only TOML syntax can fail
//! here), and the walker (`walk/`) reads it, collecting all problems with their spans.
//!
//! Spans come from toml's own span-keeping parser (`toml::de::DeTable`). Tables that only
//! exist implicitly (`interfaces` in `[interfaces.wan]`) have no span of their own; the
//! walker then points at the key.

use std::ops::Range;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

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

/// A TOML syntax error: toml's own message and where it points.
#[derive(Debug, Clone)]
pub struct ParseError {
    message: String,
    span: Span,
}

impl ParseError {
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn span(&self) -> Span {
        self.span.clone()
    }
}

/// Parses TOML text into the spanned tree: the fast way ([`parse_fast`]) when the text is
/// plainly valid, else by [`parse_by_detable`], whose tree is the same and whose errors
/// are toml's own.
pub fn parse(src: &str) -> Result<Node, ParseError> {
    parse_fast(src).map_or_else(|| parse_by_detable(src), Ok)
}

/// The tree read without `DeTable` (`events.rs`: plain lines, else toml_parser's events),
/// or `None` where `DeTable` must decide; also for the fuzz target's differential check.
pub fn parse_fast(src: &str) -> Option<Node> {
    super::events::parse(src)
}

/// The tree by way of toml's span-keeping parser (`DeTable`), converted into ours in file
/// order: the reference the fast way is tested against, and the one for every error.
pub fn parse_by_detable(src: &str) -> Result<Node, ParseError> {
    let root = DeTable::parse(src).map_err(|e| ParseError {
        message: e.message().to_string(),
        span: e.span(),
    })?;
    let span = root.span();
    table(root.get_ref(), Some(span))
}

fn table(t: &DeTable<'_>, span: Span) -> Result<Node, ParseError> {
    let mut entries = Vec::with_capacity(t.len());
    for (k, v) in t.iter() {
        let key = Key {
            name: k.get_ref().to_string(),
            span: Some(k.span()),
        };
        entries.push((key, value(v)?));
    }
    Ok(Node {
        span,
        value: Value::Table(entries),
    })
}

fn value(v: &Spanned<DeValue<'_>>) -> Result<Node, ParseError> {
    let span = v.span();
    // A table that only exists through a dotted header (`interfaces` in
    // `[interfaces.wan]`) has no text of its own: toml gives it its key's span (the
    // first header naming it). An empty span (none of toml's tables has one today) is
    // no span.
    let own = (!span.is_empty()).then_some(span.clone());
    let value = match v.get_ref() {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => match integer(i.as_str(), i.radix()) {
            Some(n) => Value::Integer(n),
            None => {
                return Err(ParseError {
                    message: "integer out of range: at most 9223372036854775807".into(),
                    span: Some(span),
                })
            }
        },
        DeValue::Float(f) => match float(f.as_str()) {
            Some(x) => Value::Float(x),
            None => {
                return Err(ParseError {
                    message: "invalid float".into(),
                    span: Some(span),
                })
            }
        },
        DeValue::Boolean(b) => Value::Boolean(*b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(a) => Value::Array(a.iter().map(value).collect::<Result<_, _>>()?),
        DeValue::Table(t) => return table(t, own),
    };
    Ok(Node { span: own, value })
}

/// A TOML integer's decoded digits as ours: one conversion for every reader of the tree.
pub(super) fn integer(digits: &str, radix: u32) -> Option<i64> {
    i64::from_str_radix(digits, radix).ok()
}

/// A TOML float's decoded text as ours (toml keeps the `_` separators).
pub(super) fn float(text: &str) -> Option<f64> {
    text.replace('_', "").parse().ok()
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

    #[test]
    fn an_implicit_table_spans_its_key_in_both_readers() {
        let src = "[interfaces.wan]\nrate = \"1mbit\"\n";
        for root in [parse(src).unwrap(), parse_by_detable(src).unwrap()] {
            let ifaces = &root.as_table().unwrap()[0].1;
            assert_eq!(&src[ifaces.span.clone().unwrap()], "interfaces");
            let wan = &ifaces.as_table().unwrap()[0].1;
            assert_eq!(&src[wan.span.clone().unwrap()], "[interfaces.wan]");
        }
    }
}
