//! The spanned tree built without toml's `DeTable`: the fast ways to the same tree
//! `node::parse` gets from it. Plain lines (most policies are nothing else) are read
//! directly (`plain`); any other text goes through toml_parser's grammar, one table section
//! at a time (`by_grammar`). Both feed one builder, which keeps TOML's table rules.
//!
//! `DeTable::parse` lexes the whole file into one token vector, turns it into one event
//! vector, then builds its tables, which `node` copies into ours. For the 2 MB policy of
//! 10,000 subscribers that is 606,000 tokens (14.6 MB) and 1.1 million events (27.3 MB) of
//! fresh memory, most of the no-op re-apply's page clearing, and the parse took 46 to 200 ms
//! of a 150 to 300 ms no-op beside tc's dumps (bench/results/issue10.md). Here the lexer's
//! tokens are taken one section (`[header]` and its lines) at a time into one reused buffer,
//! toml_parser's own grammar turns each into events, and the events go straight into our
//! tree: no whole-file vector, no second tree. Plain lines skip even the grammar.
//!
//! Only what is plainly valid is built here. Anything else gives `None` and `node::parse`
//! hands the whole text to `DeTable`, so every error, and every corner of TOML's table rules
//! this builder does not take on, is toml's own: any syntax or decoding error; a `[table]`
//! header naming a table that already exists (a duplicate, or one first made implicitly by
//! a longer header, which toml moves to its new place); a header through a table made by
//! dotted keys. A differential test (and the fuzz target) checks that whenever
//! this returns a tree, it is the tree `DeTable` gives, spans included.

use rustc_hash::FxHashMap as HashMap;
use std::borrow::Cow;
use std::ops::Range;

use toml_parser::decoder::{Encoding, ScalarKind};
use toml_parser::lexer::{Token, TokenKind};
use toml_parser::parser::{EventReceiver, RecursionGuard, ValidateWhitespace};
use toml_parser::{ErrorSink, ParseError, Raw, Source, Span as TSpan};

use super::node::{Key, Node, Value};

/// toml's own nesting limit (its `LIMIT`): deeper input goes to `DeTable`, which refuses it.
const LIMIT: u32 = 80;

/// The tree of `src`, or `None` when `DeTable` must decide (see the module documentation).
pub fn parse(src: &str) -> Option<Node> {
    // Most policies are nothing but plain lines: read those without the grammar.
    match plain(src, Builder::new(Source::new(src))) {
        Plain::Built(root) => Some(root),
        Plain::LeftToToml => None,
        Plain::Other => by_grammar(src),
    }
}

/// The tree by toml_parser's grammar, one section at a time.
fn by_grammar(src: &str) -> Option<Node> {
    let source = Source::new(src);
    // A section's tokens end where the next header begins; the parser wants an end-of-file
    // token after them, and only the lexer makes tokens: this is the one of an empty text.
    let eof = Source::new("").lex().next()?;
    let mut b = Builder::new(source);
    let mut sink = Failed(false);
    let mut tokens: Vec<Token> = Vec::with_capacity(512);
    // Brackets and braces open at this token: a `[` first on its line outside all of them
    // starts a header (TOML puts a value on its key's line, so nothing else starts a line
    // with `[` there).
    let mut depth = 0u32;
    let mut line_start = true;
    for t in source.lex() {
        let kind = t.kind();
        match kind {
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => {
                if kind == TokenKind::LeftSquareBracket
                    && depth == 0
                    && line_start
                    && !tokens.is_empty()
                {
                    tokens.push(eof);
                    b.section(&tokens, &mut sink);
                    tokens.clear();
                    if b.bail || sink.0 {
                        return None;
                    }
                }
                depth += 1;
            }
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth = depth.saturating_sub(1)
            }
            _ => {}
        }
        line_start = match kind {
            TokenKind::Newline => true,
            TokenKind::Whitespace => line_start,
            _ => false,
        };
        tokens.push(t);
    }
    // The lexer's own end-of-file token is the last one here.
    b.section(&tokens, &mut sink);
    if sink.0 || !b.stack.is_empty() {
        return None;
    }
    b.finish()
}

/// What the plain-line reader made of a text.
enum Plain {
    Built(Node),
    /// Every line plain, but a table rule left to toml (a duplicate, a reopened table).
    LeftToToml,
    /// A line it does not read: the grammar reads the text.
    Other,
}

/// The policy read line by line when every line is one of the plain kinds most policies
/// are made of, into the same builder as the events: blank, a comment, `[a.b]`, `[[a.b]]`,
/// `a.b = value` with bare keys and a value that is a string without escapes, a decimal
/// integer without underscores, or a boolean, each line maybe ending in a comment. These
/// are the 2 MB of the 10,000-subscriber policy, which toml_parser's grammar took 180 M
/// instructions over (callgrind); any other line, even valid, is `Other` and the grammar
/// reads the whole text: what this accepts is a strict subset of TOML, read the same way.
fn plain<'i>(src: &'i str, mut b: Builder<'i>) -> Plain {
    let bytes = src.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let end = src[at..].find('\n').map_or(bytes.len(), |i| at + i);
        // A line ends in \n or \r\n; a \r anywhere else (even last in the file) is not plain.
        let stop = if end < bytes.len() && end > at && bytes[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        match plain_line(src, at, stop, &mut b) {
            Some(true) => {}
            Some(false) => return Plain::LeftToToml,
            None => return Plain::Other,
        }
        at = end + 1;
    }
    b.finish().map_or(Plain::LeftToToml, Plain::Built)
}

/// One line, `src[start..stop]`: `None` when it is not plain; `Some(false)` when the
/// builder left it to toml.
fn plain_line<'i>(src: &'i str, start: usize, stop: usize, b: &mut Builder<'i>) -> Option<bool> {
    let line = &src.as_bytes()[..stop];
    let mut i = skip_ws(line, start);
    if i == stop || line[i] == b'#' {
        return comment(line, i).then_some(true);
    }
    if line[i] == b'[' {
        let open = i;
        let array = line.get(i + 1) == Some(&b'[');
        i += if array { 2 } else { 1 };
        i = keys(src, line, i, b)?;
        let close = if array { &b"]]"[..] } else { &b"]"[..] };
        if !line[i..].starts_with(close) {
            return None;
        }
        i += close.len();
        let after = skip_ws(line, i);
        if !comment(line, after) {
            return None;
        }
        return Some(b.header(array, open..i).is_some());
    }
    i = keys(src, line, i, b)?;
    if line.get(i) != Some(&b'=') {
        return None;
    }
    i = skip_ws(line, i + 1);
    let (value, end) = plain_value(src, line, i)?;
    if !comment(line, skip_ws(line, end)) {
        return None;
    }
    b.key = Some(std::mem::take(&mut b.parts));
    let r = b.value(Item {
        span: i..end,
        value: Val::Scalar(value),
    });
    Some(r.is_some())
}

fn skip_ws(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && (line[i] == b' ' || line[i] == b'\t') {
        i += 1;
    }
    i
}

/// True when `line[i..]` is empty or a comment TOML allows (no control character but tab).
fn comment(line: &[u8], i: usize) -> bool {
    i == line.len()
        || (line[i] == b'#'
            && line[i + 1..]
                .iter()
                .all(|&c| c == b'\t' || (c >= 0x20 && c != 0x7f)))
}

/// Bare keys joined by dots, into the builder's parts; the index after them and the
/// whitespace that follows.
fn keys<'i>(src: &'i str, line: &[u8], mut i: usize, b: &mut Builder<'i>) -> Option<usize> {
    b.parts.clear();
    loop {
        i = skip_ws(line, i);
        let from = i;
        while i < line.len()
            && (line[i].is_ascii_alphanumeric() || line[i] == b'_' || line[i] == b'-')
        {
            i += 1;
        }
        if i == from {
            return None;
        }
        b.parts.push((Cow::Borrowed(&src[from..i]), from..i));
        i = skip_ws(line, i);
        if line.get(i) != Some(&b'.') {
            return Some(i);
        }
        i += 1;
    }
}

/// A plain value at `line[i..]` and the index after it.
fn plain_value(src: &str, line: &[u8], i: usize) -> Option<(Value, usize)> {
    match *line.get(i)? {
        b'"' => {
            let body = i + 1;
            let mut j = body;
            while j < line.len() && line[j] != b'"' {
                let c = line[j];
                // An escape, or a control character (tab aside) TOML forbids: the grammar.
                if c == b'\\' || (c < 0x20 && c != b'\t') || c == 0x7f {
                    return None;
                }
                j += 1;
            }
            (j < line.len()).then(|| (Value::String(src[body..j].to_string()), j + 1))
        }
        b't' if line[i..].starts_with(b"true") => Some((Value::Boolean(true), i + 4)),
        b'f' if line[i..].starts_with(b"false") => Some((Value::Boolean(false), i + 5)),
        _ => {
            let mut j = i;
            if matches!(line[j], b'+' | b'-') {
                j += 1;
            }
            let digits = j;
            while j < line.len() && line[j].is_ascii_digit() {
                j += 1;
            }
            // TOML's decimal integer: no leading zero; and something that is not a digit,
            // blank or comment after it (`1.5`, `1_000`, `0x10`, a date) is for the grammar.
            let n = j - digits;
            if n == 0 || (n > 1 && line[digits] == b'0') {
                return None;
            }
            if j < line.len() && !matches!(line[j], b' ' | b'\t' | b'#') {
                return None;
            }
            Some((Value::Integer(super::node::integer(&src[i..j], 10)?), j))
        }
    }
}

/// Any error toml_parser reports: then `DeTable` reports it properly.
struct Failed(bool);

impl ErrorSink for Failed {
    fn report_error(&mut self, _error: ParseError) {
        self.0 = true;
    }
}

/// What a table is, for TOML's rules on what may extend it.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Made by a `[header]` or `[[header]]`.
    Header,
    /// Made on the way to a header (`interfaces` in `[interfaces.wan]`).
    Implicit,
    /// Made by a dotted key (`a` in `a.b = 1`).
    Dotted,
    /// An inline table `{ … }`.
    Inline,
}

struct Table {
    entries: Vec<(Key, Item)>,
    /// Key → entry, once a table has many entries (a `classes` table of thousands).
    /// Boxed: most tables have none, and every table is an item of its parent, so the
    /// 48 bytes of an empty map would be in every item of the tree.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<String, usize>>>,
    kind: Kind,
}

/// Entries looked up by a scan below this many, by the index from here on.
const INDEX_FROM: usize = 16;

impl Table {
    fn new(kind: Kind) -> Table {
        Table {
            entries: Vec::new(),
            index: None,
            kind,
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.get(name).copied(),
            None => self.entries.iter().position(|(k, _)| k.name == name),
        }
    }

    fn push(&mut self, key: Key, item: Item) -> usize {
        let i = self.entries.len();
        match &mut self.index {
            Some(ix) => {
                ix.insert(key.name.clone(), i);
            }
            None if i + 1 >= INDEX_FROM => {
                // FxHash: see Cargo.toml.
                let mut ix: HashMap<String, usize> = self
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(j, (k, _))| (k.name.clone(), j))
                    .collect();
                ix.insert(key.name.clone(), i);
                self.index = Some(Box::new(ix));
            }
            None => {}
        }
        self.entries.push((key, item));
        i
    }

    /// The table a dotted key's next part leads to, made if new: only through tables
    /// made by dotted keys (anything else is an error or a rule left to toml).
    fn dotted(&mut self, name: &str, span: Range<usize>) -> Option<&mut Table> {
        let i = match self.find(name) {
            Some(i) => i,
            None => self.push(key(name, span.clone()), Item::table(span, Kind::Dotted)),
        };
        match &mut self.entries[i].1.value {
            Val::Table(t) if t.kind == Kind::Dotted => Some(t),
            _ => None,
        }
    }

    /// `path = value` in this table; `None` on a duplicate or a path through a value.
    fn insert(&mut self, path: &[Part<'_>], item: Item) -> Option<()> {
        if path.len() > LIMIT as usize {
            return None;
        }
        let ((name, span), through) = path.split_last()?;
        let mut t = self;
        for (n, s) in through {
            t = t.dotted(n, s.clone())?;
        }
        if t.find(name).is_some() {
            return None;
        }
        t.push(key(name, span.clone()), item);
        Some(())
    }

    fn into_value(self) -> Value {
        // A loop, not `map().collect()`: that collects in place into the old buffer and
        // then moves it to fit the smaller items, which cost more than the whole build.
        let mut entries = Vec::with_capacity(self.entries.len());
        for (k, v) in self.entries {
            entries.push((k, v.into_node()));
        }
        Value::Table(entries)
    }
}

fn key(name: &str, span: Range<usize>) -> Key {
    Key {
        name: name.to_string(),
        span: Some(span),
    }
}

struct Item {
    span: Range<usize>,
    value: Val,
}

enum Val {
    Scalar(Value),
    /// `aot`: an array of tables, made by `[[headers]]`.
    Array {
        items: Vec<Item>,
        aot: bool,
    },
    Table(Table),
}

impl Item {
    fn table(span: Range<usize>, kind: Kind) -> Item {
        Item {
            span,
            value: Val::Table(Table::new(kind)),
        }
    }

    /// As `node` converts `DeTable`'s values: an empty span is no span.
    fn into_node(self) -> Node {
        let span = (!self.span.is_empty()).then_some(self.span);
        let value = match self.value {
            Val::Scalar(v) => v,
            Val::Array { items, .. } => {
                let mut nodes = Vec::with_capacity(items.len());
                for i in items {
                    nodes.push(i.into_node());
                }
                Value::Array(nodes)
            }
            Val::Table(t) => t.into_value(),
        };
        Node { span, value }
    }
}

/// One step from a table to the current section's table: an entry, and in an array of
/// tables its element.
#[derive(Clone, Copy)]
struct Step {
    entry: usize,
    element: Option<usize>,
}

/// A part of a key, decoded (borrowed from the text unless it was quoted), and its span.
type Part<'i> = (Cow<'i, str>, Range<usize>);

/// An array or inline table still open.
enum Frame<'i> {
    Array {
        start: usize,
        items: Vec<Item>,
    },
    Inline {
        start: usize,
        table: Table,
        /// The key of the value being read, from its `=` on.
        key: Option<Vec<Part<'i>>>,
    },
}

struct Builder<'i> {
    source: Source<'i>,
    root: Table,
    /// From the root to the table key/value lines go in (the last header's).
    current: Vec<Step>,
    /// The parts of the key being read (header or key/value): a header's are looked up
    /// and copied only where they make a new table.
    parts: Vec<Part<'i>>,
    /// The key of the top-level value being read, from its `=` on.
    key: Option<Vec<Part<'i>>>,
    /// A header being read: an array of tables?, and where its `[` is.
    header: Option<(bool, usize)>,
    stack: Vec<Frame<'i>>,
    /// Left to `DeTable` (see the module documentation).
    bail: bool,
}

impl<'i> Builder<'i> {
    fn new(source: Source<'i>) -> Builder<'i> {
        Builder {
            source,
            root: Table::new(Kind::Header),
            current: Vec::new(),
            parts: Vec::new(),
            key: None,
            header: None,
            stack: Vec::new(),
            bail: false,
        }
    }

    /// The whole tree, unless something was left to toml.
    fn finish(self) -> Option<Node> {
        (!self.bail).then(|| Node {
            span: Some(0..0),
            value: self.root.into_value(),
        })
    }

    fn section(&mut self, tokens: &[Token], sink: &mut Failed) {
        let source = self.source;
        let mut ws = ValidateWhitespace::new(self, source);
        let mut guard = RecursionGuard::new(&mut ws, LIMIT);
        toml_parser::parser::parse_document(tokens, &mut guard, sink);
    }

    fn raw(&self, span: TSpan, encoding: Option<Encoding>) -> Option<Raw<'i>> {
        let text = self.source.input().get(span.start()..span.end())?;
        Some(Raw::new_unchecked(text, encoding, span))
    }

    /// The current section's table.
    fn current_table(&mut self) -> Option<&mut Table> {
        let mut t = &mut self.root;
        for s in &self.current {
            t = match (&mut t.entries.get_mut(s.entry)?.1.value, s.element) {
                (Val::Table(c), None) => c,
                (Val::Array { items, .. }, Some(e)) => match &mut items.get_mut(e)?.value {
                    Val::Table(c) => c,
                    _ => return None,
                },
                _ => return None,
            };
        }
        Some(t)
    }

    /// A header read: its table made, and made the current one.
    fn header(&mut self, array: bool, span: Range<usize>) -> Option<()> {
        let path = std::mem::take(&mut self.parts);
        let done = self.header_at(&path, array, span);
        self.reuse(path);
        done
    }

    /// Gives a read key's buffer back for the next key, unless one is already in use: one
    /// allocation for the whole file instead of one per line (52,000 at 10,000 subscribers).
    fn reuse(&mut self, mut path: Vec<Part<'i>>) {
        if self.parts.capacity() == 0 {
            path.clear();
            self.parts = path;
        }
    }

    fn header_at(&mut self, path: &[Part<'i>], array: bool, span: Range<usize>) -> Option<()> {
        if path.is_empty() || path.len() > LIMIT as usize {
            return None;
        }
        self.current.clear();
        let mut t = &mut self.root;
        let (last, parents) = path.split_last()?;
        for (name, kspan) in parents {
            let i = match t.find(name) {
                Some(i) => i,
                None => t.push(
                    key(name, kspan.clone()),
                    Item::table(kspan.clone(), Kind::Implicit),
                ),
            };
            t = match &mut t.entries[i].1.value {
                Val::Table(c) if matches!(c.kind, Kind::Header | Kind::Implicit) => {
                    self.current.push(Step {
                        entry: i,
                        element: None,
                    });
                    c
                }
                Val::Array { items, aot: true } => {
                    let e = items.len().checked_sub(1)?;
                    self.current.push(Step {
                        entry: i,
                        element: Some(e),
                    });
                    match &mut items[e].value {
                        Val::Table(c) => c,
                        _ => return None,
                    }
                }
                _ => return None,
            };
        }
        let (name, kspan) = last;
        let found = t.find(name);
        let step = match (found, array) {
            (None, false) => Step {
                entry: t.push(key(name, kspan.clone()), Item::table(span, Kind::Header)),
                element: None,
            },
            (None, true) => {
                let element = Item::table(span.clone(), Kind::Header);
                let array = Item {
                    span,
                    value: Val::Array {
                        items: vec![element],
                        aot: true,
                    },
                };
                Step {
                    entry: t.push(key(name, kspan.clone()), array),
                    element: Some(0),
                }
            }
            (Some(i), true) => match &mut t.entries[i].1.value {
                Val::Array { items, aot: true } => {
                    items.push(Item::table(span, Kind::Header));
                    Step {
                        entry: i,
                        element: Some(items.len() - 1),
                    }
                }
                _ => return None,
            },
            // A duplicate, or an implicit table toml moves when it is defined.
            (Some(_), false) => return None,
        };
        self.current.push(step);
        Some(())
    }

    /// A value read: into the array or inline table it is in, or under its key.
    fn value(&mut self, item: Item) -> Option<()> {
        match self.stack.last_mut() {
            Some(Frame::Array { items, .. }) => {
                items.push(item);
                Some(())
            }
            Some(Frame::Inline { table, key, .. }) => table.insert(&key.take()?, item),
            None => {
                let path = self.key.take()?;
                let done = self.current_table()?.insert(&path, item);
                self.reuse(path);
                done
            }
        }
    }

    fn scalar_value(&self, span: TSpan, encoding: Option<Encoding>) -> Option<Value> {
        let raw = self.raw(span, encoding)?;
        let mut decoded = Cow::Borrowed("");
        let mut failed = Failed(false);
        let kind = raw.decode_scalar(&mut decoded, &mut failed);
        if failed.0 {
            return None;
        }
        // As `node` converts DeTable's scalars, so the two trees are the same.
        Some(match kind {
            ScalarKind::String => Value::String(decoded.into_owned()),
            ScalarKind::Boolean(b) => Value::Boolean(b),
            ScalarKind::Integer(radix) => {
                Value::Integer(super::node::integer(&decoded, radix.value())?)
            }
            ScalarKind::Float => Value::Float(super::node::float(&decoded)?),
            // toml's own date-time type reads and prints it, as DeTable's does.
            ScalarKind::DateTime => {
                Value::Datetime(decoded.parse::<toml_datetime::Datetime>().ok()?.to_string())
            }
        })
    }

    fn fail(&mut self, r: Option<()>) {
        if r.is_none() {
            self.bail = true;
        }
    }

    fn table_close(&mut self, span: TSpan) {
        let r = match self.header.take() {
            Some((array, start)) if self.stack.is_empty() && self.key.is_none() => {
                self.header(array, start..span.end())
            }
            _ => None,
        };
        self.fail(r);
    }
}

impl EventReceiver for Builder<'_> {
    fn std_table_open(&mut self, span: TSpan, _error: &mut dyn ErrorSink) {
        self.parts.clear();
        self.header = Some((false, span.start()));
    }
    fn array_table_open(&mut self, span: TSpan, _error: &mut dyn ErrorSink) {
        self.parts.clear();
        self.header = Some((true, span.start()));
    }
    fn std_table_close(&mut self, span: TSpan, _error: &mut dyn ErrorSink) {
        self.table_close(span);
    }
    fn array_table_close(&mut self, span: TSpan, _error: &mut dyn ErrorSink) {
        self.table_close(span);
    }
    fn simple_key(&mut self, span: TSpan, encoding: Option<Encoding>, _error: &mut dyn ErrorSink) {
        let Some(raw) = self.raw(span, encoding) else {
            self.bail = true;
            return;
        };
        let mut decoded = Cow::Borrowed("");
        let mut failed = Failed(false);
        raw.decode_key(&mut decoded, &mut failed);
        if failed.0 {
            self.bail = true;
            return;
        }
        self.parts.push((decoded, span.start()..span.end()));
    }
    fn key_val_sep(&mut self, _span: TSpan, _error: &mut dyn ErrorSink) {
        let path = std::mem::take(&mut self.parts);
        let slot = match self.stack.last_mut() {
            Some(Frame::Inline { key, .. }) => key,
            Some(Frame::Array { .. }) => {
                self.bail = true;
                return;
            }
            None => &mut self.key,
        };
        if path.is_empty() || slot.is_some() {
            self.bail = true;
        }
        *slot = Some(path);
    }
    fn scalar(&mut self, span: TSpan, encoding: Option<Encoding>, _error: &mut dyn ErrorSink) {
        let r = self.scalar_value(span, encoding).and_then(|v| {
            self.value(Item {
                span: span.start()..span.end(),
                value: Val::Scalar(v),
            })
        });
        self.fail(r);
    }
    fn array_open(&mut self, span: TSpan, _error: &mut dyn ErrorSink) -> bool {
        self.stack.push(Frame::Array {
            start: span.start(),
            items: Vec::new(),
        });
        true
    }
    fn array_close(&mut self, span: TSpan, _error: &mut dyn ErrorSink) {
        let r = match self.stack.pop() {
            Some(Frame::Array { start, items }) => self.value(Item {
                span: start..span.end(),
                value: Val::Array { items, aot: false },
            }),
            _ => None,
        };
        self.fail(r);
    }
    fn inline_table_open(&mut self, span: TSpan, _error: &mut dyn ErrorSink) -> bool {
        self.stack.push(Frame::Inline {
            start: span.start(),
            table: Table::new(Kind::Inline),
            key: None,
        });
        true
    }
    fn inline_table_close(&mut self, span: TSpan, _error: &mut dyn ErrorSink) {
        let r = match self.stack.pop() {
            // A key with no value (`{ a = }`) is an error toml reports.
            Some(Frame::Inline {
                start,
                table,
                key: None,
            }) => self.value(Item {
                span: start..span.end(),
                value: Val::Table(table),
            }),
            _ => None,
        };
        self.fail(r);
    }
    fn error(&mut self, _span: TSpan, _error: &mut dyn ErrorSink) {
        self.bail = true;
    }
}

#[cfg(test)]
mod tests {
    use super::super::node::parse_by_detable;
    use super::*;

    /// The fast tree, if any, is exactly DeTable's (spans included); returns whether the
    /// fast way took it.
    fn same(src: &str) -> bool {
        // Both fast ways, the plain lines and the grammar's events, on their own.
        let plain = match plain(src, Builder::new(Source::new(src))) {
            Plain::Built(root) => Some(root),
            _ => None,
        };
        let ways = [("plain lines", plain), ("grammar", by_grammar(src))];
        for (way, fast) in &ways {
            let Some(fast) = fast else {
                continue;
            };
            let slow = parse_by_detable(src).unwrap_or_else(|e| {
                panic!(
                    "{way} built a tree where toml says {}: {src:?}",
                    e.message()
                )
            });
            assert_eq!(
                format!("{fast:#?}"),
                format!("{slow:#?}"),
                "{way}, for {src:?}"
            );
        }
        parse(src).is_some()
    }

    #[test]
    fn plain_lines_are_read_without_the_grammar_and_the_rest_with_it() {
        let is_plain =
            |src: &str| matches!(plain(src, Builder::new(Source::new(src))), Plain::Built(_));
        for src in [
            "[interfaces.wan] # c\ndevice = \"eth0\"\nrate = \"20mbit\"\n",
            "  a = 1\r\n\t[[x . y]]\r\nb = -5 # n\nc = true\nd = false\n",
            "n = 0\nm = +0\ns = \"é\t%\"\n# only a comment\n\n",
        ] {
            assert!(is_plain(src), "{src:?}");
            assert!(same(src));
        }
        // Valid, but for the grammar; or invalid, for toml's error.
        for src in [
            "a = [1]\n",
            "a = 1.5\n",
            "a = 1_000\n",
            "a = 0x10\n",
            "a = 'lit'\n",
            "a = \"esc\\t\"\n",
            "\"q\" = 1\n",
            "a = 1\rb = 2\n",
            "a = 1\r",
            "a = 01\n",
            "a = truex\n",
            "a = \"open\n",
            "[ [a]]\n",
            "a = 1 # bell \u{7}\n",
            "a = 99999999999999999999\n",
        ] {
            assert!(!is_plain(src), "{src:?}");
            same(src);
        }
    }

    #[test]
    fn builds_what_toml_builds() {
        let taken = [
            "",
            "# only a comment\n",
            "a = 1\nb = \"x\"\n",
            "a = 1\r\nb = 'x'\r\n[t]\r\nc = true\r\n",
            "\u{feff}a = 1\n",
            "[interfaces.wan]\ndevice = \"eth0\"\nrate = \"20mbit\"\n",
            "[a]\n[a.b]\nx = 1\n[a.c]\n[[a.m]]\ny = 2\n[[a.m]]\ny = 3\n[a.m.z]\nq = 4\n",
            "[[x]]\n[[x]]\n[[x.y]]\nk = 1\n[[x.y]]\n",
            "[a.b]\n[a.c]\n[d]\n",
            "t = { a = 1, b.c = [1, 2], d = { e = 'f' } }\n",
            "x.y.z = 1\nx.y.w = 2\nx.v = 3\n",
            "[s]\nn.m = 1\nn.o = 2\n",
            "arr = [\n  [1, 2],\n[3],\n  { a = 1 },\n]\n[after]\nk = 1\n",
            "s = \"\"\"\n[not.a.header]\nstill the string\n\"\"\"\n[real]\n",
            "l = '''\n[[nor.this]]\n'''\n",
            "[ spaced . header ] # comment\nk = 1 # c\n",
            "[\"quoted key\".'lit'.bare]\n\"k k\" = 1\n",
            "i = 0x10\no = 0o17\nb = 0b101\nu = 1_000\nn = -5\np = +5\n",
            "f = 1.5\ng = 1e3\nh = -2_0.5\ninf1 = inf\nninf = -inf\nnan1 = nan\n",
            "d = 1979-05-27T07:32:00Z\nt = 07:32:00\n",
            "esc = \"a\\tb\\u00e9\\\"\"\n",
            "e = []\nt = {}\n",
            "[[interfaces.isp.classes.a.match]]\ndst = \"10.0.0.1\"\n[[interfaces.isp.classes.a.match]]\ndst = \"10.0.0.2\"\n",
        ];
        for src in taken {
            assert!(same(src), "not taken by the fast way: {src:?}");
        }
    }

    #[test]
    fn leaves_errors_and_rare_rules_to_toml() {
        // Each is an error or a rule the builder leaves to DeTable: `parse` gives None,
        // and `node::parse` still gives toml's answer.
        let left = [
            "a = 1\na = 2\n",
            "[a]\n[a]\n",
            "[a.b]\n[a]\nx = 1\n",
            "[a]\nb.c = 1\n[a.b.d]\n",
            "a = [1]\n[[a]]\n",
            "a = {b = 1}\n[a.c]\n",
            "t = { a = 1, a = 2 }\n",
            "x = 1\nx.y = 2\n",
            "d = 1979-13-27T07:32:00Z\n",
            "big = 9223372036854775808\n",
            "a = \n",
            "[a\n",
            "a = [1,\n",
            "a = \"unterminated\n",
            "= 1\n",
            "a = 1 b = 2\n",
            "[[a]]\n[a]\n",
        ];
        for src in left {
            assert!(parse(src).is_none(), "taken by the fast way: {src:?}");
            // The whole parse still answers, error or tree.
            let _ = super::super::node::parse(src);
        }
        let deep = format!("a = {}1{}\n", "[".repeat(100), "]".repeat(100));
        assert!(parse(&deep).is_none());
        assert!(super::super::node::parse(&deep).is_err());
        let long = format!("[{}]\n", vec!["k"; 100].join("."));
        assert!(parse(&long).is_none());
    }

    #[test]
    fn every_shipped_policy_takes_the_fast_way_to_the_same_tree() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut n = 0;
        for dir in ["examples", "tests/klab/policies", "tests/fixtures"] {
            let mut stack = vec![root.join(dir)];
            while let Some(d) = stack.pop() {
                let Ok(rd) = std::fs::read_dir(&d) else {
                    continue;
                };
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "toml") {
                        let src = std::fs::read_to_string(&p).unwrap();
                        // A policy that is valid TOML must be taken: the fast way is
                        // the way real policies go.
                        let valid = parse_by_detable(&src).is_ok();
                        assert_eq!(same(&src), valid, "{}", p.display());
                        n += 1;
                    }
                }
            }
        }
        assert!(n >= 60, "only {n} policies found");
    }

    #[test]
    fn the_fuzz_corpus_gets_toml_s_tree_or_toml_s_answer() {
        // The fuzzer's policies: valid, broken and odd TOML. Where the fast way builds a
        // tree it must be toml's; and it must build many of them, or this proves nothing.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/policy");
        let (mut taken, mut valid) = (0, 0);
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let Ok(src) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            valid += usize::from(parse_by_detable(&src).is_ok());
            taken += usize::from(same(&src));
        }
        assert!(
            valid >= 100 && taken * 10 >= valid * 9,
            "{taken} of {valid} taken"
        );
    }

    #[test]
    fn a_subscriber_tree_of_thousands_is_the_same_tree() {
        // The shape of bench/gen.py's ISP tree: deep headers, one `classes` table with
        // thousands of entries (looked up by the index), an array of tables per class.
        let mut src = String::from("[interfaces.isp0]\ndevice = \"qb0\"\nrate = \"10gbit\"\n");
        for i in 0..3000 {
            src += &format!(
                "[interfaces.isp0.classes.site.classes.sub{i}]\nrate = \"800kbit\"\n\
                 [[interfaces.isp0.classes.site.classes.sub{i}.match]]\ndst = \"10.0.{}.{}\"\n\
                 [[interfaces.isp0.classes.site.classes.sub{i}.match]]\ndport = {}\n",
                i / 250,
                i % 250 + 1,
                i % 65535
            );
        }
        assert!(same(&src));
    }
}
