//! A configuration text and the name it came from: turns byte spans into
//! lines and columns, and TOML errors into [`Diagnostic`]s that name the key.

use super::error::{Diagnostic, Position};
use core::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

/// A file's text, for locating spans in it.
pub(super) struct Source<'a> {
    /// The file name, as given.
    pub(super) path: &'a Path,
    /// Its text.
    pub(super) text: &'a str,
}

impl Source<'_> {
    /// The line and column of byte `offset`.
    pub(super) fn position(&self, offset: usize) -> Position {
        position(self.text, offset)
    }

    /// A diagnostic at the start of `span`.
    pub(super) fn diag(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.path.to_path_buf(),
            position: Some(self.position(span.start)),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// A diagnostic about the whole file.
    pub(super) fn file_diag(&self, key: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.path.to_path_buf(),
            position: None,
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// A TOML syntax or schema error as a diagnostic; the key is found from
    /// the error's position in the document tree.
    pub(super) fn toml_error(&self, err: &toml::de::Error) -> Diagnostic {
        let (tree, _) = DeTable::parse_recoverable(self.text);
        let key = match err.span() {
            Some(span) => {
                let mut path = Vec::new();
                if key_at(tree.get_ref(), span.start, &mut path) {
                    path.concat()
                } else {
                    // A syntax error inside a value the parser gave up on:
                    // name the last key before it on its line.
                    let mut keys = Vec::new();
                    all_keys(tree.get_ref(), &mut Vec::new(), &mut keys);
                    let line_start =
                        self.text.get(..span.start).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
                    keys.into_iter()
                        .filter(|(start, _)| (line_start..=span.start).contains(start))
                        .max_by_key(|(start, _)| *start)
                        .map(|(_, key)| key)
                        .unwrap_or_default()
                }
            }
            None => String::new(),
        };
        // toml's messages can run over several lines ("..., expected ...").
        let message = err.message().trim().replace('\n', "; ");
        Diagnostic {
            file: self.path.to_path_buf(),
            position: err.span().map(|s| self.position(s.start)),
            key,
            message,
        }
    }

    /// A path named in this file: relative paths are taken from the file's
    /// directory.
    pub(super) fn resolve(&self, name: &str) -> PathBuf {
        let p = Path::new(name);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        match self.path.parent() {
            Some(dir) => dir.join(p),
            None => p.to_path_buf(),
        }
    }
}

/// Line and column (from 1; the column in characters) of byte `offset` of
/// `text`; offsets past the end or inside a character are clamped.
pub(super) fn position(text: &str, offset: usize) -> Position {
    let mut o = offset.min(text.len());
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    let before = &text[..o];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    Position { line, column }
}

/// Whether `offset` is within `span` (an empty span contains its start).
fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start == offset || (span.start..span.end).contains(&offset)
}

/// Pushes the path of the deepest key of `table` whose key or value is at
/// `offset`; returns whether one was found.
fn key_at(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
    for (key, value) in table.iter() {
        path.push(key_segment(key.get_ref(), path.is_empty()));
        // Tables and arrays of tables may be spread over the file, so look
        // inside them whether or not their own span covers `offset`.
        if value_at(value.get_ref(), offset, path)
            || contains(&key.span(), offset)
            || contains(&value.span(), offset)
        {
            return true;
        }
        path.pop();
    }
    false
}

/// Pushes the path below `value` to what is at `offset`.
fn value_at(value: &DeValue<'_>, offset: usize, path: &mut Vec<String>) -> bool {
    match value {
        DeValue::Table(t) => key_at(t, offset, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                // Tables in arrays are numbered; a list of values is one key
                // (the column points at the item).
                if !item.get_ref().is_table() {
                    if contains(&item.span(), offset) {
                        return true;
                    }
                    continue;
                }
                path.push(format!("[{i}]"));
                if value_at(item.get_ref(), offset, path) || contains(&item.span(), offset) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

/// Collects every key of `table` (recursively) with the offset it starts at.
fn all_keys(table: &DeTable<'_>, path: &mut Vec<String>, out: &mut Vec<(usize, String)>) {
    for (key, value) in table.iter() {
        path.push(key_segment(key.get_ref(), path.is_empty()));
        out.push((key.span().start, path.concat()));
        match value.get_ref() {
            DeValue::Table(t) => all_keys(t, path, out),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(t) = item.get_ref() {
                        path.push(format!("[{i}]"));
                        all_keys(t, path, out);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
        path.pop();
    }
}

/// A key as a path segment: `.name`, or `."quoted name"` if it is not a
/// bare TOML key; no dot at the start of the path.
pub(super) fn key_segment(key: &str, first: bool) -> String {
    let bare = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let dot = if first { "" } else { "." };
    if bare { format!("{dot}{key}") } else { format!("{dot}{key:?}") }
}
