//! YAML (and JSON, which the YAML parser also reads) into a `serde_json::Value` plus a map
//! from each value's path to its line and column, so every later error can point at the
//! source.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

/// A position in a source file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// Where a scalar's text came from, so positions inside it (a Rhai error at character 12 of
/// an expression) can be mapped back to the file.
#[derive(Debug, Clone, Copy)]
pub struct ScalarInfo {
    pub pos: Pos,
    pub style: ScalarStyle,
}

/// Paths (`/steps/2/tool`) to positions. A key's own position is stored under the path with
/// a `#` suffix (`/steps/2/tol#`), which is where "unknown field" errors point.
#[derive(Debug, Default, Clone)]
pub struct SpanMap {
    values: HashMap<String, ScalarInfo>,
    source: String,
}

impl SpanMap {
    /// Position of the value at `path`, or of the closest enclosing value that has one.
    pub fn pos(&self, path: &str) -> Pos {
        let mut p = path.to_string();
        loop {
            if let Some(i) = self.values.get(&p) {
                return i.pos;
            }
            match p.rfind('/') {
                Some(idx) => p.truncate(idx),
                None => return Pos { line: 1, col: 1 },
            }
        }
    }

    /// Whether the scalar at `path` is a plain (unquoted, single-line) YAML scalar whose
    /// source line holds a ` #` — YAML read everything after it as a comment.
    pub fn lost_to_comment(&self, path: &str) -> bool {
        self.values.get(path).is_some_and(|i| {
            i.style == ScalarStyle::Plain
                && self
                    .source
                    .lines()
                    .nth(i.pos.line.saturating_sub(1))
                    .is_some_and(|l| l[l.len().min(i.pos.col.saturating_sub(1))..].contains(" #"))
        })
    }

    /// Position of the key that ends `path` (falls back to the value).
    pub fn key_pos(&self, path: &str) -> Pos {
        match self.values.get(&format!("{path}#")) {
            Some(i) => i.pos,
            None => self.pos(path),
        }
    }

    /// Position of character `offset` (in chars) inside the scalar at `path`, for errors
    /// reported by a parser that only saw the scalar's text (`line`/`col` are 1-based
    /// within that text).
    pub fn pos_in_scalar(&self, path: &str, line: usize, col: usize) -> Pos {
        let Some(info) = self.values.get(path) else {
            return self.pos(path);
        };
        match info.style {
            ScalarStyle::Literal | ScalarStyle::Folded => {
                // Content starts on the line after the `|`/`>` indicator (the span may start
                // at the indicator or at the content); find its indentation.
                let at_indicator = self
                    .source
                    .lines()
                    .nth(info.pos.line.saturating_sub(1))
                    .and_then(|l| l.chars().nth(info.pos.col.saturating_sub(1)))
                    .is_some_and(|c| c == '|' || c == '>');
                let first = if at_indicator { info.pos.line + 1 } else { info.pos.line };
                let target = first + line.saturating_sub(1);
                let indent = self
                    .source
                    .lines()
                    .nth(first.saturating_sub(1))
                    .map(|l| l.len() - l.trim_start().len())
                    .unwrap_or(0);
                Pos {
                    line: target,
                    col: indent + col,
                }
            }
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Pos {
                line: info.pos.line + line.saturating_sub(1),
                col: if line <= 1 { info.pos.col + col } else { col },
            },
            _ => Pos {
                line: info.pos.line + line.saturating_sub(1),
                col: if line <= 1 {
                    info.pos.col + col.saturating_sub(1)
                } else {
                    col
                },
            },
        }
    }
}

/// A syntax error with its position.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parse a YAML or JSON document.
pub fn parse(source: &str) -> Result<(Value, SpanMap), SyntaxError> {
    let mut b = Builder {
        stack: Vec::new(),
        spans: SpanMap {
            values: HashMap::new(),
            source: source.to_string(),
        },
        anchors: HashMap::new(),
        root: None,
    };
    let mut parser = Parser::new_from_str(source);
    let mut docs = 0;
    while let Some(ev) = parser.next_event() {
        let (ev, span) = ev.map_err(|e| SyntaxError {
            pos: Pos {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
        if let Event::DocumentStart(_) = ev {
            docs += 1;
            if docs > 1 {
                return Err(SyntaxError {
                    pos: pos_of(&span),
                    message: "more than one YAML document in the file; a plan is one document".into(),
                });
            }
        }
        b.event(ev, span)?;
    }
    match b.root {
        Some(v) => Ok((v, b.spans)),
        None => Err(SyntaxError {
            pos: Pos { line: 1, col: 1 },
            message: "the file is empty".into(),
        }),
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

enum Frame {
    Seq {
        path: String,
        items: Vec<Value>,
        anchor: usize,
    },
    Map {
        path: String,
        map: Map<String, Value>,
        key: Option<String>,
        anchor: usize,
    },
}

struct Builder {
    stack: Vec<Frame>,
    spans: SpanMap,
    anchors: HashMap<usize, Value>,
    root: Option<Value>,
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl Builder {
    /// Path of the value about to be produced in the current container.
    fn child_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq { path, items, .. }) => format!("{path}/{}", items.len()),
            Some(Frame::Map { path, key, .. }) => format!("{path}/{}", escape(key.as_deref().unwrap_or(""))),
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn event(&mut self, ev: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let pos = pos_of(&span);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if self.expecting_key() {
                    let Some(Frame::Map { path, map, key, .. }) = self.stack.last_mut() else {
                        return Ok(());
                    };
                    if map.contains_key(text.as_ref()) {
                        return Err(SyntaxError {
                            pos,
                            message: format!("duplicate key `{text}`"),
                        });
                    }
                    let kp = format!("{path}/{}#", escape(&text));
                    self.spans.values.insert(kp, ScalarInfo { pos, style });
                    *key = Some(text.into_owned());
                    return Ok(());
                }
                let path = self.child_path();
                self.spans.values.insert(path, ScalarInfo { pos, style });
                let tagged_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let v = if style == ScalarStyle::Plain && !tagged_str {
                    resolve_plain(&text)
                } else {
                    Value::String(text.into_owned())
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                self.push_value(v, pos)
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(v) => {
                    if self.expecting_key() {
                        return Err(SyntaxError {
                            pos,
                            message: "aliases cannot be used as keys".into(),
                        });
                    }
                    let path = self.child_path();
                    self.spans.values.insert(
                        path,
                        ScalarInfo {
                            pos,
                            style: ScalarStyle::Plain,
                        },
                    );
                    self.push_value(v, pos)
                }
                None => Err(SyntaxError {
                    pos,
                    message: "alias to an unknown anchor".into(),
                }),
            },
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.expecting_key() {
                    return Err(SyntaxError {
                        pos,
                        message: "keys must be plain strings, not lists or maps".into(),
                    });
                }
                let path = self.child_path();
                self.spans.values.insert(
                    path.clone(),
                    ScalarInfo {
                        pos,
                        style: ScalarStyle::Plain,
                    },
                );
                let is_seq = matches!(ev, Event::SequenceStart(..));
                self.stack.push(if is_seq {
                    Frame::Seq {
                        path,
                        items: Vec::new(),
                        anchor,
                    }
                } else {
                    Frame::Map {
                        path,
                        map: Map::new(),
                        key: None,
                        anchor,
                    }
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (v, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                    Some(Frame::Map { map, anchor, .. }) => (Value::Object(map), anchor),
                    None => return Ok(()),
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                self.push_value(v, pos)
            }
            _ => Ok(()),
        }
    }

    fn push_value(&mut self, v: Value, _pos: Pos) -> Result<(), SyntaxError> {
        match self.stack.last_mut() {
            None => self.root = Some(v),
            Some(Frame::Seq { items, .. }) => items.push(v),
            Some(Frame::Map { map, key, .. }) => {
                if let Some(k) = key.take() {
                    map.insert(k, v);
                }
            }
        }
        Ok(())
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let t = s.strip_prefix('+').unwrap_or(s);
    if let Ok(i) = t.parse::<i64>() {
        return Value::Number(i.into());
    }
    if let Some(h) = t.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(h, 16)
    {
        return Value::Number(i.into());
    }
    if let Some(o) = t.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(o, 8)
    {
        return Value::Number(i.into());
    }
    let looks_numeric = t
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '.')
        && t.chars().all(|c| c.is_ascii_digit() || "-+.eE".contains(c));
    if looks_numeric
        && let Ok(f) = t.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_values_and_keys() {
        let src = "version: 1\nsteps:\n  - id: a\n    tol: x\n";
        let (v, spans) = parse(src).unwrap();
        assert_eq!(v["steps"][0]["id"], "a");
        assert_eq!(spans.key_pos("/steps/0/tol"), Pos { line: 4, col: 5 });
        assert_eq!(spans.pos("/steps/0/tol"), Pos { line: 4, col: 10 });
    }

    #[test]
    fn json_is_read_too() {
        let (v, spans) = parse("{\n  \"version\": 1,\n  \"name\": \"x\"\n}").unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(spans.key_pos("/name").line, 3);
    }

    #[test]
    fn scalars_resolve_like_yaml_1_2() {
        let (v, _) = parse("a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: hello\ng: -3").unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(v["b"], 1.5);
        assert_eq!(v["c"], true);
        assert!(v["d"].is_null());
        assert_eq!(v["e"], "1");
        assert_eq!(v["f"], "hello");
        assert_eq!(v["g"], -3);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("duplicate key"));
        assert_eq!(e.pos.line, 2);
    }
}
