//! Expressions and templates inside plans.
//!
//! * An *expression* is Rhai (`inputs.count > 3`, `steps.fetch.output.items`), compiled once
//!   when the plan is checked.
//! * A *template* is any JSON value whose strings may hold `${expression}`. A string that is
//!   exactly one `${…}` takes the expression's value and type; otherwise the pieces are joined
//!   as text. `$${` writes a literal `${`.
//!
//! Expressions are pure: they cannot call tools. That is what makes replay on resume safe.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use regex::Regex;
use rhai::{AST, Dynamic, Engine};
use serde_json::{Map, Value};

/// A compiled Rhai expression and the step ids it reads.
#[derive(Debug, Clone)]
pub struct Expr {
    pub source: String,
    pub ast: Arc<AST>,
    /// Step ids read through `steps.<id>` / `steps["<id>"]`.
    pub step_refs: BTreeSet<String>,
    /// Root variables it reads (`inputs`, `steps`, `item`, …).
    pub vars: BTreeSet<String>,
}

/// A JSON value with `${…}` holes.
#[derive(Debug, Clone)]
pub enum Template {
    /// No expressions inside: used as is.
    Const(Value),
    /// A string that is exactly `${expr}`: keeps the value's type.
    Expr(Box<Expr>),
    /// Text with holes, always a string.
    Interp(Vec<Part>),
    Array(Vec<Template>),
    Object(Vec<(String, Template)>),
}

/// One piece of an interpolated string.
#[derive(Debug, Clone)]
pub enum Part {
    Text(String),
    Expr(Box<Expr>),
}

/// A problem found while compiling: message and (line, column) inside the text, 1-based.
#[derive(Debug, Clone)]
pub struct ExprError {
    pub message: String,
    pub line: usize,
    pub col: usize,
}

fn step_ref_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"\bsteps\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*"([^"]*)"\s*\])"#)
            .unwrap_or_else(|_| unreachable!())
    })
}

fn var_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?:^|[^.\w])([A-Za-z_][A-Za-z0-9_]*)").unwrap_or_else(|_| unreachable!()))
}

/// Compile a Rhai expression (`script == false`) or script (`script == true`).
pub fn compile(engine: &Engine, source: &str, script: bool) -> Result<Expr, ExprError> {
    let ast = if script {
        engine.compile(source)
    } else {
        engine.compile_expression(source)
    }
    .map_err(|e| {
        let p = e.position();
        ExprError {
            message: e.err_type().to_string(),
            line: p.line().unwrap_or(1),
            col: p.position().unwrap_or(1),
        }
    })?;
    let stripped = strip_string_literals(source);
    let step_refs = step_ref_regex()
        .captures_iter(&stripped)
        .filter_map(|c| c.get(1).or(c.get(2)).map(|m| source[m.range()].to_string()))
        .collect();
    let vars = var_regex()
        .captures_iter(&stripped)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
        .collect();
    Ok(Expr {
        source: source.to_string(),
        ast: Arc::new(ast),
        step_refs,
        vars,
    })
}

/// Blank out the contents of string literals (keeping byte offsets) so references inside
/// quoted text are not mistaken for real ones. `steps["x"]` keeps its key.
fn strip_string_literals(src: &str) -> String {
    let bytes = src.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' || c == b'`' || c == b'\'' {
            let quote = c;
            let keep = quote == b'"' && src[..i].trim_end().ends_with('[');
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != quote {
                if bytes[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            if !keep {
                for b in out.iter_mut().take(j.min(bytes.len())).skip(i + 1) {
                    if b.is_ascii() {
                        *b = b' ';
                    }
                }
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| src.to_string())
}

/// If `s` is exactly `${ … }` return the inner expression text.
pub fn whole_expr(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("${")?;
    let end = scan_hole(inner)?;
    if end + 1 == inner.len() {
        Some(&inner[..end])
    } else {
        None
    }
}

/// Find the `}` closing a `${` hole, honouring nested braces and string literals.
/// Returns the byte index of the closing brace within `s`.
fn scan_hole(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '`' | '\'' => quote = Some(c),
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Compile every `${…}` in a JSON value. Errors carry (line, col) inside the string that
/// holds them, and the JSON path below `value` where that string is (`/a/0`).
pub fn compile_template(engine: &Engine, value: &Value) -> Result<Template, Vec<(String, ExprError)>> {
    let mut errors = Vec::new();
    let t = compile_value(engine, value, "", &mut errors);
    if errors.is_empty() { Ok(t) } else { Err(errors) }
}

fn compile_value(engine: &Engine, value: &Value, path: &str, errors: &mut Vec<(String, ExprError)>) -> Template {
    match value {
        Value::String(s) if s.contains("${") => compile_string(engine, s, path, errors),
        Value::Array(items) => {
            let ts: Vec<Template> = items
                .iter()
                .enumerate()
                .map(|(i, v)| compile_value(engine, v, &format!("{path}/{i}"), errors))
                .collect();
            if ts.iter().all(|t| matches!(t, Template::Const(_))) {
                Template::Const(value.clone())
            } else {
                Template::Array(ts)
            }
        }
        Value::Object(map) => {
            let ts: Vec<(String, Template)> = map
                .iter()
                .map(|(k, v)| (k.clone(), compile_value(engine, v, &format!("{path}/{k}"), errors)))
                .collect();
            if ts.iter().all(|(_, t)| matches!(t, Template::Const(_))) {
                Template::Const(value.clone())
            } else {
                Template::Object(ts)
            }
        }
        Value::String(s) if s.contains("$${") => Template::Const(Value::String(s.replace("$${", "${"))),
        other => Template::Const(other.clone()),
    }
}

fn compile_string(engine: &Engine, s: &str, path: &str, errors: &mut Vec<(String, ExprError)>) -> Template {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    let mut offset = 0usize; // byte offset of `rest` in `s`
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            // `$${` is an escaped literal `${`.
            text.push_str(&rest[..i - 1]);
            text.push_str("${");
            rest = &rest[i + 2..];
            offset += i + 2;
            continue;
        }
        text.push_str(&rest[..i]);
        let inner_start = i + 2;
        let Some(end) = scan_hole(&rest[inner_start..]) else {
            let (line, col) = line_col(s, offset + i);
            errors.push((
                path.to_string(),
                ExprError {
                    message: "`${` is never closed with `}`".into(),
                    line,
                    col,
                },
            ));
            return Template::Const(Value::String(s.to_string()));
        };
        let src = &rest[inner_start..inner_start + end];
        match compile(engine, src.trim(), false) {
            Ok(e) => {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Expr(Box::new(e)));
            }
            Err(mut e) => {
                let lead = src.len() - src.trim_start().len();
                let (line, col) = line_col(s, offset + inner_start + lead);
                if e.line <= 1 {
                    e.col += col - 1;
                }
                e.line += line - 1;
                errors.push((path.to_string(), e));
            }
        }
        rest = &rest[inner_start + end + 1..];
        offset += inner_start + end + 1;
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    match parts.as_slice() {
        [Part::Expr(e)] if s.trim() == s && s.starts_with("${") && s.ends_with('}') => Template::Expr(e.clone()),
        _ => Template::Interp(parts),
    }
}

/// 1-based (line, column) of byte `offset` in `s`.
fn line_col(s: &str, offset: usize) -> (usize, usize) {
    let before = &s[..offset.min(s.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

impl Template {
    /// Every expression inside, for reference checks.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Expr>) {
        match self {
            Template::Const(_) => {}
            Template::Expr(e) => out.push(e),
            Template::Interp(parts) => {
                for p in parts {
                    if let Part::Expr(e) = p {
                        out.push(e);
                    }
                }
            }
            Template::Array(items) => items.iter().for_each(|t| t.collect(out)),
            Template::Object(items) => items.iter().for_each(|(_, t)| t.collect(out)),
        }
    }

    /// Render with `eval` evaluating each expression.
    pub fn render<E>(&self, eval: &mut impl FnMut(&Expr) -> Result<Value, E>) -> Result<Value, E> {
        Ok(match self {
            Template::Const(v) => v.clone(),
            Template::Expr(e) => eval(e)?,
            Template::Interp(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        Part::Text(t) => s.push_str(t),
                        Part::Expr(e) => match eval(e)? {
                            Value::String(v) => s.push_str(&v),
                            Value::Null => {}
                            other => s.push_str(&other.to_string()),
                        },
                    }
                }
                Value::String(s)
            }
            Template::Array(items) => Value::Array(items.iter().map(|t| t.render(eval)).collect::<Result<_, _>>()?),
            Template::Object(items) => {
                let mut m = Map::new();
                for (k, t) in items {
                    m.insert(k.clone(), t.render(eval)?);
                }
                Value::Object(m)
            }
        })
    }
}

/// Convert a JSON value for Rhai.
pub fn to_dynamic(v: &Value) -> Dynamic {
    rhai::serde::to_dynamic(v).unwrap_or(Dynamic::UNIT)
}

/// Convert a Rhai value to JSON. `()` becomes null; floats that are whole stay floats.
pub fn from_dynamic(d: &Dynamic) -> Result<Value, String> {
    if d.is_unit() {
        return Ok(Value::Null);
    }
    // Ranges (`range(0, 10)`, `0..10`) become lists.
    if let Some(r) = d.clone().try_cast::<std::ops::Range<rhai::INT>>() {
        return Ok(Value::Array(r.map(Value::from).collect()));
    }
    if let Some(r) = d.clone().try_cast::<std::ops::RangeInclusive<rhai::INT>>() {
        return Ok(Value::Array(r.map(Value::from).collect()));
    }
    rhai::serde::from_dynamic::<Value>(d).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        stepwise_plugins::rhai_sandbox::expression_engine(&Default::default())
    }

    #[test]
    fn whole_string_expression_keeps_type() {
        let t = compile_template(&engine(), &serde_json::json!("${inputs.n + 1}")).unwrap();
        assert!(matches!(t, Template::Expr(_)));
    }

    #[test]
    fn interpolation_and_escape() {
        let t = compile_template(&engine(), &serde_json::json!("a ${x} b $${y}")).unwrap();
        let v = t
            .render(&mut |e: &Expr| -> Result<Value, ()> { Ok(Value::String(format!("<{}>", e.source))) })
            .unwrap();
        assert_eq!(v, "a <x> b ${y}");
    }

    #[test]
    fn refs_are_found_outside_strings_only() {
        let e = compile(&engine(), r#"steps.a.output + steps["b"].output + "steps.c""#, false).unwrap();
        assert_eq!(e.step_refs.iter().cloned().collect::<Vec<_>>(), vec!["a", "b"]);
    }

    #[test]
    fn syntax_error_position_is_inside_the_string() {
        let errs = compile_template(&engine(), &serde_json::json!({"k": "abc ${ 1 + } d"})).unwrap_err();
        assert_eq!(errs[0].0, "/k");
        assert_eq!(errs[0].1.line, 1);
        assert!(errs[0].1.col >= 7, "{:?}", errs[0].1);
    }
}
