//! The raw document: every TOML value with its byte span.
//!
//! The configuration is first deserialised (with serde and `toml`) into a
//! tree of [`Node`]s whose every value and key carries its
//! [`serde_spanned::Spanned`] byte range. The typed layer in
//! `validate.rs` then walks that tree with a known field path, so every
//! error can name file, line, column and field, and every error can be
//! collected rather than only the first one.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_spanned::Spanned;

/// A TOML value with the spans of its parts.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float (never valid in this schema).
    Float,
    /// A boolean (never valid in this schema).
    Bool,
    /// An offset or local date or time (never valid in this schema).
    Datetime,
    /// An array.
    Array(Vec<Spanned<Node>>),
    /// A table, keys in document order.
    Table(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl Node {
    /// The TOML type name, for "expected X, found Y" messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Str(_) => "string",
            Node::Int(_) => "integer",
            Node::Float => "float",
            Node::Bool => "boolean",
            Node::Datetime => "datetime",
            Node::Array(_) => "array",
            Node::Table(_) => "table",
        }
    }
}

impl Drop for Node {
    /// Strings may hold key material: wipe them. (`toml`'s own transient
    /// copies of the text are outside our reach; `Config::load` at least
    /// wipes the file text it read.)
    fn drop(&mut self) {
        if let Node::Str(s) = self {
            zeroize::Zeroize::zeroize(s);
        }
    }
}

/// Parses a whole document. The error is `toml`'s, with its byte span.
pub(crate) fn parse_document(text: &str) -> Result<Node, toml::de::Error> {
    toml::from_str(text)
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Bool)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Float)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<MaybeSpanned>()? {
            items.push(Spanned::new(item.span.unwrap_or_default(), item.node));
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Node, A::Error> {
        read_table(None, map)
    }
}

/// Reads a table's entries; `first` is a key the caller already took.
fn read_table<'de, A: MapAccess<'de>>(first: Option<Key>, mut map: A) -> Result<Node, A::Error> {
    let mut entries = Vec::new();
    let mut next = first;
    if next.is_none() {
        next = map.next_key::<Key>()?;
    }
    while let Some(key) = next {
        let value = map.next_value::<MaybeSpanned>()?;
        // Implicit tables (`a.b = 1`) have no span of their own: they are
        // placed at their key, and a key without a span at its value.
        let key_span = key.span.or_else(|| value.span.clone()).unwrap_or_default();
        let value_span = value.span.unwrap_or_else(|| key_span.clone());
        entries.push((
            Spanned::new(key_span, key.name),
            Spanned::new(value_span, value.node),
        ));
        next = map.next_key::<Key>()?;
    }
    if let [(key, _)] = entries.as_slice() {
        if key.get_ref() == DATETIME_KEY {
            return Ok(Node::Datetime);
        }
    }
    Ok(Node::Table(entries))
}

/// The key under which `toml` passes a datetime to `visit_map`.
const DATETIME_KEY: &str = "$__toml_private_datetime";

/// A node and, where the deserializer knows it, its span.
struct MaybeSpanned {
    node: Node,
    span: Option<Span>,
}

impl<'de> Deserialize<'de> for MaybeSpanned {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde_spanned::__unstable::{END_FIELD, NAME, START_FIELD, VALUE_FIELD};
        static FIELDS: [&str; 3] = [START_FIELD, END_FIELD, VALUE_FIELD];
        deserializer.deserialize_struct(NAME, &FIELDS, MaybeSpannedVisitor)
    }
}

/// Accepts the spanned form (a map of start, end, value) or a bare value.
struct MaybeSpannedVisitor;

impl MaybeSpannedVisitor {
    fn bare<E>(node: Result<Node, E>) -> Result<MaybeSpanned, E> {
        node.map(|node| MaybeSpanned { node, span: None })
    }
}

impl<'de> Visitor<'de> for MaybeSpannedVisitor {
    type Value = MaybeSpanned;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<MaybeSpanned, E> {
        Self::bare(NodeVisitor.visit_bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<MaybeSpanned, E> {
        Self::bare(NodeVisitor.visit_i64(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<MaybeSpanned, E> {
        Self::bare(NodeVisitor.visit_u64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<MaybeSpanned, E> {
        Self::bare(NodeVisitor.visit_f64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<MaybeSpanned, E> {
        Self::bare(NodeVisitor.visit_str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeSpanned, A::Error> {
        Self::bare(NodeVisitor.visit_seq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeSpanned, A::Error> {
        use serde_spanned::__unstable::{END_FIELD, START_FIELD, VALUE_FIELD};
        let first = match map.next_key::<Key>()? {
            Some(first) => first,
            None => return Self::bare(Ok(Node::Table(Vec::new()))),
        };
        if first.span.is_some() || first.name != START_FIELD {
            return Self::bare(read_table(Some(first), map));
        }
        let start: usize = map.next_value()?;
        let (mut end, mut node) = (None::<usize>, None::<Node>);
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                END_FIELD => end = Some(map.next_value()?),
                VALUE_FIELD => node = Some(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, &[])),
            }
        }
        let node = node.ok_or_else(|| de::Error::missing_field(VALUE_FIELD))?;
        let end = end.ok_or_else(|| de::Error::missing_field(END_FIELD))?;
        Ok(MaybeSpanned {
            node,
            span: Some(start..end),
        })
    }
}

/// A table key and, where the deserializer knows it, its span.
struct Key {
    name: String,
    span: Option<Span>,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde_spanned::__unstable::{END_FIELD, NAME, START_FIELD, VALUE_FIELD};
        static FIELDS: [&str; 3] = [START_FIELD, END_FIELD, VALUE_FIELD];
        deserializer.deserialize_struct(NAME, &FIELDS, KeyVisitor)
    }
}

/// Accepts a spanned key (a map of start, end, value) or a plain string.
struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a table key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key {
            name: v.to_owned(),
            span: None,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        use serde_spanned::__unstable::{END_FIELD, START_FIELD, VALUE_FIELD};
        let (mut start, mut end, mut name) = (None::<usize>, None::<usize>, None::<String>);
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                START_FIELD => start = Some(map.next_value()?),
                END_FIELD => end = Some(map.next_value()?),
                VALUE_FIELD => name = Some(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, &[])),
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field(VALUE_FIELD))?;
        let span = match (start, end) {
            (Some(start), Some(end)) => Some(start..end),
            _ => None,
        };
        Ok(Key { name, span })
    }
}

/// A byte span, as `Spanned::span` returns it.
pub(crate) type Span = Range<usize>;

#[cfg(test)]
mod tests {
    use super::*;

    fn table(node: &Node) -> &[(Spanned<String>, Spanned<Node>)] {
        match node {
            Node::Table(entries) => entries,
            other => panic!("not a table: {other:?}"),
        }
    }

    #[test]
    fn spans_of_keys_and_values() {
        let text = "[a]\nx = \"s\"\ny = [1, {z = true}]\n";
        let root = parse_document(text).expect("parses");
        let a = &table(&root)[0];
        assert_eq!(a.0.get_ref(), "a");
        assert_eq!(a.0.span(), 1..2);
        let entries = table(a.1.get_ref());
        assert_eq!(entries[0].0.span(), 4..5);
        assert_eq!(&text[entries[0].1.span()], "\"s\"");
        let Node::Array(items) = entries[1].1.get_ref() else {
            panic!("not an array");
        };
        assert_eq!(&text[items[1].span()], "{z = true}");
        assert_eq!(items[0].get_ref().kind(), "integer");
    }

    #[test]
    fn dotted_keys_and_datetimes() {
        let text = "[t]\na.b = 1.5\nd = 1979-05-27T07:32:00Z\n";
        let root = parse_document(text).expect("parses");
        let t = table(table(&root)[0].1.get_ref());
        assert_eq!(t[0].0.get_ref(), "a");
        // The implicit table `a` is placed at its key.
        assert_eq!(t[0].1.span(), 4..5);
        let inner = table(t[0].1.get_ref());
        assert_eq!(inner[0].0.get_ref(), "b");
        assert_eq!(inner[0].1.get_ref().kind(), "float");
        assert_eq!(t[1].1.get_ref().kind(), "datetime");
        assert_eq!(&text[t[1].1.span()], "1979-05-27T07:32:00Z");
    }
}
