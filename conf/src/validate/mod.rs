//! The typed layer: walks the spanned document with a field path, decodes
//! every field, checks every rule, and collects every error.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_spanned::Spanned;

use crate::cidr::Cidr;
use crate::error::{ConfError, ConfErrors, LineIndex, Location};
use crate::keys::PrivateKey;
use crate::schema::{parse_document, Node, Span};
use crate::Config;

mod groups;
mod peers;
mod sections;

/// Whether `s` is a Linux interface name (IFNAMSIZ: 1..=15 bytes, not `.`
/// or `..`) made of ASCII letters, digits and the bytes in `punct`.
pub(crate) fn is_interface_name(s: &str, punct: &[u8]) -> bool {
    (1..=15).contains(&s.len())
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || punct.contains(&b))
}

/// The punctuation `wg`/wg-quick allow in an interface name.
pub(crate) const WG_NAME_PUNCT: &[u8] = b"_.=+-";

/// Why a private key file could not be used.
#[derive(Debug)]
pub(crate) enum KeyFileProblem {
    /// It could not be read.
    Read(PathBuf, io::Error),
    /// Its mode lets group or others read or write it.
    Mode(PathBuf, u32),
    /// Its content is not a key.
    Content(PathBuf),
    /// The caller reads no files.
    NotLoaded,
}

/// Reads the key file named in the configuration (path as written).
pub(crate) type KeyLoader<'a> = dyn FnMut(&Path) -> Result<PrivateKey, KeyFileProblem> + 'a;

/// Parses and validates `text`; `origin` names it in errors.
pub(crate) fn parse(
    text: &str,
    origin: &str,
    load_key: &mut KeyLoader,
) -> Result<Config, ConfErrors> {
    let mut ctx = Ctx {
        origin,
        text,
        lines: LineIndex::new(text),
        errors: Vec::new(),
    };
    let root = match parse_document(text) {
        Ok(root) => Spanned::new(0..0, root),
        Err(e) => {
            let at = ctx.at(&e.span().unwrap_or(0..0));
            let message = e.message().replace('\n', "; ");
            return Err(ConfError::Syntax { at, message }.into());
        }
    };
    let config = ctx.config(&root, load_key);
    match config {
        Some(config) if ctx.errors.is_empty() => Ok(config),
        _ => Err(ConfErrors(ctx.errors)),
    }
}

/// Joins a field path and a key. A key that is not a bare TOML key (only
/// an unknown one can be) is quoted, so that control characters in the
/// input never reach an error message raw.
fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// A table being decoded.
struct Table<'n> {
    path: String,
    span: Span,
    entries: &'n [(Spanned<String>, Spanned<Node>)],
}

impl<'n> Table<'n> {
    fn get(&self, key: &str) -> Option<&'n Spanned<Node>> {
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(_, v)| v)
    }

    fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

/// The decoding state: the text for positions and the errors so far.
struct Ctx<'a> {
    origin: &'a str,
    text: &'a str,
    lines: LineIndex,
    errors: Vec<ConfError>,
}

impl Ctx<'_> {
    fn at(&self, span: &Span) -> Location {
        self.lines.locate(self.origin, self.text, span.start)
    }

    fn wrong_type(&mut self, v: &Spanned<Node>, path: String, expected: &'static str) {
        let at = self.at(&v.span());
        self.errors.push(ConfError::WrongType {
            at,
            path,
            expected,
            found: v.get_ref().kind(),
        });
    }

    /// `node` as a table; unknown keys (not in `allowed`) are reported.
    fn table<'n>(
        &mut self,
        node: &'n Spanned<Node>,
        path: String,
        allowed: &[&str],
    ) -> Option<Table<'n>> {
        let Node::Table(entries) = node.get_ref() else {
            self.wrong_type(node, path, "table");
            return None;
        };
        for (key, _) in entries {
            if !allowed.contains(&key.get_ref().as_str()) {
                let at = self.at(&key.span());
                self.errors.push(ConfError::UnknownField {
                    at,
                    path: join(&path, key.get_ref()),
                    expected: allowed.join(", "),
                });
            }
        }
        Some(Table {
            path,
            span: node.span(),
            entries,
        })
    }

    fn required<'n>(&mut self, t: &Table<'n>, key: &str) -> Option<&'n Spanned<Node>> {
        let v = t.get(key);
        if v.is_none() {
            let at = self.at(&t.span);
            self.errors.push(ConfError::MissingField {
                at,
                path: t.path(key),
            });
        }
        v
    }

    fn string<'n>(&mut self, v: &'n Spanned<Node>, path: String) -> Option<&'n str> {
        match v.get_ref() {
            Node::Str(s) => Some(s),
            _ => {
                self.wrong_type(v, path, "string");
                None
            }
        }
    }

    fn int(&mut self, v: &Spanned<Node>, path: String, min: i64, max: i64) -> Option<i64> {
        let Node::Int(i) = v.get_ref() else {
            self.wrong_type(v, path, "integer");
            return None;
        };
        if (min..=max).contains(i) {
            return Some(*i);
        }
        let at = self.at(&v.span());
        self.errors.push(ConfError::OutOfRange {
            at,
            path,
            value: *i,
            min,
            max,
        });
        None
    }

    /// An optional integer field with a default.
    fn int_or(&mut self, t: &Table, key: &str, default: i64, min: i64, max: i64) -> Option<i64> {
        match t.get(key) {
            Some(v) => self.int(v, t.path(key), min, max),
            None => Some(default),
        }
    }

    fn array<'n>(&mut self, v: &'n Spanned<Node>, path: String) -> Option<&'n [Spanned<Node>]> {
        match v.get_ref() {
            Node::Array(items) => Some(items),
            _ => {
                self.wrong_type(v, path, "array");
                None
            }
        }
    }

    /// Decodes each element of an array field; `None` if any failed.
    fn each<'n, T>(
        &mut self,
        v: &'n Spanned<Node>,
        path: &str,
        mut f: impl FnMut(&mut Self, &'n Spanned<Node>, String) -> Option<T>,
    ) -> Option<Vec<T>> {
        let items = self.array(v, path.to_owned())?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match f(self, item, format!("{path}[{i}]")) {
                Some(x) => out.push(x),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn non_empty(&mut self, v: &Spanned<Node>, path: &str, len: usize) -> bool {
        if len == 0 {
            let at = self.at(&v.span());
            self.errors.push(ConfError::Empty {
                at,
                path: path.to_owned(),
            });
        }
        len != 0
    }

    fn duplicate(&mut self, span: &Span, path: String, first: &str, value: String) {
        let at = self.at(span);
        self.errors.push(ConfError::Duplicate {
            at,
            path,
            first: first.to_owned(),
            value,
        });
    }

    fn key<T: std::str::FromStr>(&mut self, v: &Spanned<Node>, path: String) -> Option<T> {
        let s = self.string(v, path.clone())?;
        let key = s.parse().ok();
        if key.is_none() {
            let at = self.at(&v.span());
            self.errors.push(ConfError::BadKey { at, path });
        }
        key
    }

    fn cidr(&mut self, v: &Spanned<Node>, path: String) -> Option<Cidr> {
        let s = self.string(v, path.clone())?;
        match s.parse::<Cidr>() {
            Ok(c) => Some(c),
            Err(e) => {
                let at = self.at(&v.span());
                self.errors.push(ConfError::BadCidr {
                    at,
                    path,
                    value: s.to_owned(),
                    reason: e.to_string(),
                });
                None
            }
        }
    }

    /// A prefix that must have no host bits set (an allowed IP, a group
    /// prefix).
    fn canonical_cidr(&mut self, v: &Spanned<Node>, path: String) -> Option<Cidr> {
        let cidr = self.cidr(v, path.clone())?;
        if cidr.is_canonical() {
            return Some(cidr);
        }
        let at = self.at(&v.span());
        self.errors.push(ConfError::NonCanonicalCidr {
            at,
            path,
            value: cidr.to_string(),
            canonical: cidr.canonical().to_string(),
        });
        None
    }

    fn ip(&mut self, v: &Spanned<Node>, path: String) -> Option<IpAddr> {
        let s = self.string(v, path.clone())?;
        let ip = s.parse().ok();
        if ip.is_none() {
            let at = self.at(&v.span());
            self.errors.push(ConfError::BadAddress {
                at,
                path,
                value: s.to_owned(),
            });
        }
        ip
    }
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn paths_quote_odd_keys() {
        assert_eq!(join("", "interface"), "interface");
        assert_eq!(join("peers[0]", "public_key"), "peers[0].public_key");
        assert_eq!(join("ports", "a b"), "ports.\"a b\"");
        assert_eq!(join("ports", "x\ny"), "ports.\"x\\ny\"");
        assert_eq!(join("ports", ""), "ports.\"\"");
    }
}
