//! Argument decoding, one value at a time, under the tool's schema: the JSON structure is
//! forced, and the model only decides what the schema leaves open. Enums and booleans are
//! chosen among their alternatives by likelihood; numbers among those the user wrote (or
//! digit by digit when there are none); strings token by token, biased toward copying a
//! span of the user's message; optional properties are written only when the model prefers
//! them to closing the object.

use llama_cpp_2::token::LlamaToken;
use serde_json::{Map, Value};

use super::cursor::Cursor;
use super::schema::{Prop, Ty};
use super::values;
use crate::error::Result;
use crate::llama::Logits;
use crate::template::py_json;

/// Knobs of the argument decoder.
#[derive(Debug, Clone)]
pub struct ArgOptions {
    /// Log-probability penalty for a string token that does not continue a span of the
    /// user's text (0 = free text, large = copy only).
    pub copy_penalty: f32,
    /// Longest string, in tokens.
    pub max_string_tokens: usize,
    /// Most array items.
    pub max_items: usize,
    /// Penalty for reusing a number another argument already took.
    pub reuse_penalty: f32,
    /// Margin (nats) by which writing an optional property must beat closing the object.
    pub optional_margin: f32,
}

impl Default for ArgOptions {
    fn default() -> Self {
        ArgOptions {
            copy_penalty: 4.0,
            max_string_tokens: 24,
            max_items: 12,
            reuse_penalty: 3.0,
            optional_margin: 0.0,
        }
    }
}

/// Decodes argument objects for one call.
pub struct ArgDecoder<'o> {
    /// The user's words (string spans and numbers come from here).
    pub source: String,
    source_lower: String,
    numbers: Vec<values::Found>,
    lists: Vec<Vec<f64>>,
    used: Vec<f64>,
    opts: &'o ArgOptions,
    /// Diagnostics: one line per decision.
    pub trace: Vec<String>,
}

impl<'o> ArgDecoder<'o> {
    pub fn new(source: &str, opts: &'o ArgOptions) -> Self {
        ArgDecoder {
            source: source.to_string(),
            source_lower: source.to_lowercase(),
            numbers: values::numbers(source),
            lists: values::number_lists(source),
            used: Vec::new(),
            opts,
            trace: Vec::new(),
        }
    }

    /// Decode an object's properties; the cursor is right after its `{`, and is left after `}`.
    pub fn object(&mut self, cur: &mut Cursor<'_, '_>, props: &[Prop]) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        for (i, p) in props.iter().enumerate() {
            let sep = if out.is_empty() { "" } else { ", " };
            let key = format!("{sep}{}:", py_json(&Value::String(p.name.clone())));
            if !p.required {
                // A number the user did not write cannot be what they asked for.
                if is_numeric(&p.ty) && !self.has_unused_number() {
                    self.trace.push(format!("optional {}: no number left", p.name));
                    continue;
                }
                let close = "}".to_string();
                let ch = cur.score(&[key.clone(), close])?;
                let margin = ch.scores[0] - ch.scores[1];
                self.trace
                    .push(format!("optional {}: key-vs-close {margin:.2}", p.name));
                if margin <= self.opts.optional_margin {
                    continue;
                }
            }
            cur.force(&key);
            let terms: &[&str] = if props[i + 1..].iter().any(|q| q.required) {
                &[","]
            } else {
                &[",", "}"]
            };
            let v = self.value(cur, &p.ty, " ", terms)?;
            out.insert(p.name.clone(), v);
        }
        cur.force("}");
        Ok(out)
    }

    /// Decode one value of type `ty`, written after `lead` (a space or nothing). `terms` are
    /// what may follow the value (for numbers, whose end is otherwise ambiguous).
    pub fn value(&mut self, cur: &mut Cursor<'_, '_>, ty: &Ty, lead: &str, terms: &[&str]) -> Result<Value> {
        match ty {
            Ty::Boolean => {
                let alts = vec![format!("{lead}true"), format!("{lead}false")];
                let ch = cur.choose(&alts, None)?;
                Ok(Value::Bool(ch.best == 0))
            }
            Ty::Enum(vals) => {
                let alts: Vec<String> = vals.iter().map(|v| format!("{lead}{}", py_json(v))).collect();
                let ch = cur.choose(&alts, None)?;
                Ok(vals[ch.best].clone())
            }
            Ty::Integer | Ty::Number => self.number(cur, matches!(ty, Ty::Integer), lead, terms),
            Ty::String | Ty::Any => self.string(cur, lead),
            Ty::Array(item) if is_numeric(item) && !self.lists.is_empty() => self.number_list(cur, item, lead),
            Ty::Array(item) => {
                cur.force(&format!("{lead}["));
                let mut items = Vec::new();
                loop {
                    let lead = if items.is_empty() { "" } else { " " };
                    items.push(self.value(cur, item, lead, &[",", "]"])?);
                    let numeric = is_numeric(item) || matches!(&**item, Ty::Array(i) if is_numeric(i));
                    if items.len() >= self.opts.max_items || (numeric && !self.has_unused_number()) {
                        cur.force("]");
                        break;
                    }
                    let ch = cur.choose(&[",".to_string(), "]".to_string()], None)?;
                    if ch.best == 1 {
                        break;
                    }
                }
                Ok(Value::Array(items))
            }
            Ty::Object(props) => {
                cur.force(&format!("{lead}{{"));
                Ok(Value::Object(self.object(cur, props)?))
            }
        }
    }

    /// A list of numbers: one of the lists the user wrote, chosen by likelihood (lists
    /// already taken by another argument are penalized).
    fn number_list(&mut self, cur: &mut Cursor<'_, '_>, item: &Ty, lead: &str) -> Result<Value> {
        let integer = matches!(item, Ty::Integer);
        let mut alts = Vec::new();
        let mut bonus = Vec::new();
        let mut kept = Vec::new();
        for l in &self.lists {
            let texts: Option<Vec<String>> = l.iter().map(|v| values::number_text(*v, integer)).collect();
            let Some(texts) = texts else { continue };
            alts.push(format!("{lead}[{}]", texts.join(", ")));
            let taken = l.iter().all(|v| self.used.contains(v));
            bonus.push(if taken { -self.opts.reuse_penalty } else { 0.0 });
            kept.push((l.clone(), texts));
        }
        if alts.is_empty() {
            // No written list fits the item type: decode item by item.
            let lists = std::mem::take(&mut self.lists);
            let v = self.value(cur, &Ty::Array(Box::new(item.clone())), lead, &[]);
            self.lists = lists;
            return v;
        }
        let ch = cur.choose(&alts, Some(&bonus))?;
        let (list, texts) = &kept[ch.best];
        self.used.extend(list.iter().copied());
        self.trace
            .push(format!("number list: {} of {}", alts[ch.best].trim(), alts.len()));
        Ok(Value::Array(
            list.iter()
                .zip(texts)
                .map(|(v, t)| json_number(t, *v, integer))
                .collect(),
        ))
    }

    /// Whether the user wrote a number no argument has taken yet.
    fn has_unused_number(&self) -> bool {
        self.mentions() > self.used.len()
    }

    /// How many separate numbers the user wrote (a scaled variant counts once).
    fn mentions(&self) -> usize {
        let mut at: Vec<usize> = self.numbers.iter().map(|f| f.at).collect();
        at.dedup();
        at.len()
    }

    fn number(&mut self, cur: &mut Cursor<'_, '_>, integer: bool, lead: &str, terms: &[&str]) -> Result<Value> {
        let mut cands: Vec<(String, f64)> = Vec::new();
        for f in &self.numbers {
            if let Some(t) = values::number_text(f.value, integer)
                && !cands.iter().any(|(c, _)| *c == t)
            {
                cands.push((t, f.value));
            }
        }
        if cands.is_empty() {
            return self.free_number(cur, integer, lead);
        }
        let mut alts = Vec::new();
        let mut bonus = Vec::new();
        for (t, v) in &cands {
            let times_written = self.numbers.iter().filter(|f| f.value == *v).count();
            let times_used = self.used.iter().filter(|u| *u == v).count();
            let pen = if times_used >= times_written {
                -self.opts.reuse_penalty
            } else {
                0.0
            };
            for term in terms {
                alts.push(format!("{lead}{t}{term}"));
                bonus.push(pen);
            }
        }
        let ch = cur.score(&alts)?;
        let best = (0..alts.len())
            .max_by(|&a, &b| (ch.scores[a] + bonus[a]).total_cmp(&(ch.scores[b] + bonus[b])))
            .unwrap_or(0);
        let (text, v) = &cands[best / terms.len().max(1)];
        self.trace.push(format!("number: {text} of {}", cands.len()));
        cur.force(&format!("{lead}{text}"));
        self.used.push(*v);
        Ok(json_number(text, *v, integer))
    }

    fn free_number(&mut self, cur: &mut Cursor<'_, '_>, integer: bool, lead: &str) -> Result<Value> {
        cur.force(lead);
        let mut text = String::new();
        for _ in 0..12 {
            let m = cur.s.m;
            let mut chosen: Option<LlamaToken> = None;
            let mut stop = false;
            cur.step(&mut |lg: &Logits| {
                for (t, _) in lg.top(48) {
                    let p = m.piece(t);
                    let Ok(p) = std::str::from_utf8(p) else { continue };
                    let numeric = !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_digit() || (!integer && c == '.') || (text.is_empty() && c == '-'));
                    if numeric {
                        chosen = Some(t);
                        return Some(t);
                    }
                    if !text.is_empty() {
                        stop = true;
                        return None;
                    }
                }
                None
            })?;
            match chosen {
                Some(t) if !stop => text.push_str(&String::from_utf8_lossy(m.piece(t))),
                _ => break,
            }
        }
        let v: f64 = text.parse().unwrap_or(0.0);
        if text.parse::<f64>().is_err() {
            cur.force("0");
            text = "0".into();
        }
        self.trace.push(format!("free number: {text}"));
        Ok(json_number(&text, v, integer))
    }

    fn string(&mut self, cur: &mut Cursor<'_, '_>, lead: &str) -> Result<Value> {
        cur.force(&format!("{lead}\""));
        let mut value = String::new();
        let m = cur.s.m;
        let penalty = self.opts.copy_penalty;
        for _ in 0..self.opts.max_string_tokens {
            let mut close = false;
            let src = &self.source_lower;
            let cur_val = value.to_lowercase();
            let picked = cur.step(&mut |lg: &Logits| {
                let mut best: Option<(LlamaToken, f32, bool)> = None;
                for (t, lp) in lg.top(64) {
                    if m.is_eog(t) {
                        continue;
                    }
                    let Ok(p) = std::str::from_utf8(m.piece(t)) else {
                        continue;
                    };
                    let (score, is_close) = if p.starts_with('"') {
                        if cur_val.is_empty() {
                            continue;
                        }
                        (lp, true)
                    } else if p.is_empty() || p.contains(['"', '\\', '\n', '\r', '<']) {
                        continue;
                    } else {
                        let cand = format!("{cur_val}{}", p.to_lowercase());
                        let copy = src.contains(cand.as_str());
                        (if copy { lp } else { lp - penalty }, false)
                    };
                    if best.is_none_or(|b| score > b.1) {
                        best = Some((t, score, is_close));
                    }
                }
                match best {
                    Some((_, _, true)) | None => {
                        close = true;
                        None
                    }
                    Some((t, _, false)) => Some(t),
                }
            })?;
            match picked {
                Some(t) => value.push_str(&String::from_utf8_lossy(m.piece(t))),
                None => break,
            }
            if close {
                break;
            }
        }
        cur.force("\"");
        let value = value.trim().to_string();
        self.trace.push(format!("string: {value:?}"));
        Ok(Value::String(value))
    }
}

fn is_numeric(ty: &Ty) -> bool {
    matches!(ty, Ty::Integer | Ty::Number)
}

fn json_number(text: &str, v: f64, integer: bool) -> Value {
    if integer && let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    serde_json::Number::from_f64(v)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}
