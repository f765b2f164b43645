//! Argument decoding, one value at a time, under the tool's schema: the JSON structure is
//! forced, and the model only decides what the schema leaves open. Enums and booleans are
//! chosen among their alternatives by likelihood; numbers among those the user wrote (or
//! digit by digit when there are none); strings token by token, biased toward copying a
//! span of the user's message; optional properties are written only when the model prefers
//! them to closing the object.

use llama_cpp_2::token::LlamaToken;
use serde_json::{Map, Value};

use super::cursor::{Cursor, Mark};
use super::schema::{Prop, Ty};
use super::values;
use crate::error::Result;
use crate::llama::Logits;
use crate::template::py_json;

/// Who writes argument values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgMode {
    /// `generate` for models trained on tool calls (`ChooseOptions::trained_on_tools`; by
    /// default those whose chat template has a tool section), `decode` for the others.
    #[default]
    Auto,
    /// The per-type decoder: structure forced, values chosen among the request's numbers
    /// and spans or decoded under a copy bias.
    Decode,
    /// The model writes the arguments object itself under a grammar from the schema.
    Generate,
}

impl std::str::FromStr for ArgMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(ArgMode::Auto),
            "decode" => Ok(ArgMode::Decode),
            "generate" => Ok(ArgMode::Generate),
            other => Err(format!(
                "unknown argument mode `{other}` (use `auto`, `decode` or `generate`)"
            )),
        }
    }
}

/// Knobs of the argument decoder.
#[derive(Debug, Clone)]
pub struct ArgOptions {
    /// Who writes the values.
    pub mode: ArgMode,
    /// Most tokens of a generated arguments object.
    pub max_generated_tokens: usize,
    /// Most guessed tokens checked with each generated one (0: one token per evaluation);
    /// guesses change the cost of generation, never its output.
    pub guess_tokens: usize,
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
    /// The same for an optional string property while the request holds a name (a quoted
    /// phrase, capitalized words, a code) that no argument has taken: a value is at hand.
    pub optional_span_margin: f32,
}

impl Default for ArgOptions {
    fn default() -> Self {
        ArgOptions {
            mode: ArgMode::Auto,
            max_generated_tokens: 160,
            guess_tokens: 8,
            copy_penalty: 4.0,
            max_string_tokens: 24,
            max_items: 12,
            reuse_penalty: 3.0,
            optional_margin: 0.0,
            optional_span_margin: -4.5,
        }
    }
}

/// Words of parameter names that say nothing about the value's kind.
const GENERIC_WORDS: &[&str] = &[
    "type", "name", "data", "value", "values", "number", "list", "info", "format", "the", "for", "and", "new",
];

/// Decodes argument objects for one call.
pub struct ArgDecoder<'o> {
    /// The user's words (string spans and numbers come from here).
    pub source: String,
    source_lower: String,
    numbers: Vec<values::Found>,
    lists: Vec<Vec<f64>>,
    used: Vec<f64>,
    spans: Vec<values::Span>,
    span_lists: Vec<Vec<usize>>,
    /// Strings already given to an argument (lowercase).
    used_strings: Vec<String>,
    /// Name and description of the property being decoded (lowercase).
    about: String,
    /// Whether the request names the property being decoded.
    named: bool,
    /// Words of the property's name that say what kind of thing it is ("county" of
    /// `county`, "act" of `act_name`).
    kind_words: Vec<String>,
    opts: &'o ArgOptions,
    /// Diagnostics: one line per decision.
    pub trace: Vec<String>,
}

impl<'o> ArgDecoder<'o> {
    pub fn new(source: &str, opts: &'o ArgOptions) -> Self {
        let spans = values::spans(source);
        ArgDecoder {
            source: source.to_string(),
            source_lower: source.to_lowercase(),
            numbers: values::numbers(source),
            lists: values::number_lists(source),
            used: Vec::new(),
            span_lists: values::span_lists(source, &spans),
            spans,
            used_strings: Vec::new(),
            about: String::new(),
            named: false,
            kind_words: Vec::new(),
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
            self.named = self.named_in_request(&p.name);
            self.kind_words = name_words(&p.name)
                .into_iter()
                .filter(|w| w.chars().count() >= 3 && !GENERIC_WORDS.contains(&w.as_str()))
                .collect();
            if !p.required {
                // A number the user did not write cannot be what they asked for.
                if is_numeric(&p.ty) && !self.has_unused_number() {
                    self.trace.push(format!("optional {}: no number left", p.name));
                    continue;
                }
                if matches!(&p.ty, Ty::Array(item) if is_numeric(item)) && !self.has_unused_list() {
                    self.trace.push(format!("optional {}: no list of numbers left", p.name));
                    continue;
                }
                // A choice among set values the request mentions none of is left to the default.
                if let Ty::Enum(vals) = &p.ty
                    && !self.mentions_any(vals)
                {
                    self.trace.push(format!("optional {}: no choice mentioned", p.name));
                    continue;
                }
                if self.named {
                    self.trace.push(format!("optional {}: named in the request", p.name));
                } else {
                    let close = "}".to_string();
                    let ch = cur.score(&[key.clone(), close])?;
                    let margin = ch.scores[0] - ch.scores[1];
                    self.trace
                        .push(format!("optional {}: key-vs-close {margin:.2}", p.name));
                    let at_hand = matches!(p.ty, Ty::String) && self.unused_name();
                    let need = if at_hand {
                        self.opts.optional_span_margin
                    } else {
                        self.opts.optional_margin
                    };
                    if margin <= need {
                        continue;
                    }
                }
            }
            self.about = format!("{} {}", p.name, p.description).to_lowercase();
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
                // A flag the user names is one they want set ("include the owner's name",
                // "assuming equal variance"), unless they say otherwise.
                let bonus = if self.named && !self.negated() {
                    [self.opts.reuse_penalty, 0.0]
                } else {
                    [0.0, 0.0]
                };
                let ch = cur.choose(&alts, Some(&bonus))?;
                Ok(Value::Bool(ch.best == 0))
            }
            Ty::Enum(vals) => {
                let alts: Vec<String> = vals.iter().map(|v| format!("{lead}{}", py_json(v))).collect();
                // A choice the request mentions ("in detail" of `detailed`) is likelier meant.
                let bonus: Vec<f32> = vals
                    .iter()
                    .map(|v| {
                        if self.mentions_any(std::slice::from_ref(v)) {
                            self.opts.reuse_penalty
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let ch = cur.choose(&alts, Some(&bonus))?;
                Ok(vals[ch.best].clone())
            }
            Ty::Integer | Ty::Number => self.number(cur, matches!(ty, Ty::Integer), lead, terms),
            Ty::String | Ty::Any => self.string(cur, lead),
            Ty::Array(item) if is_numeric(item) && !self.lists.is_empty() => self.number_list(cur, item, lead),
            Ty::Array(item) => {
                cur.force(&format!("{lead}["));
                let mut items = Vec::new();
                // Where the last separator was written (to take it back).
                let mut before_sep: Option<Mark> = None;
                loop {
                    let lead = if items.is_empty() { "" } else { " " };
                    let v = self.value(cur, item, lead, &[",", "]"])?;
                    // A list that repeats an item, or goes from choices the request mentions on
                    // to one it does not, has run past what the user asked for.
                    let asked = |x: &Value| {
                        x.as_str()
                            .is_some_and(|t| self.source_lower.contains(&t.to_lowercase()))
                    };
                    let unasked = matches!(&**item, Ty::Enum(_)) && !asked(&v) && items.iter().any(asked);
                    if let Some(mark) = before_sep.take()
                        && ((v.is_string() || v.is_number()) && items.contains(&v) || unasked)
                    {
                        if v.is_string() && !unasked {
                            self.used_strings.pop();
                        }
                        if v.as_f64().is_some_and(|x| self.used.last() == Some(&x)) {
                            self.used.pop();
                        }
                        cur.rollback(mark)?;
                        cur.force("]");
                        break;
                    }
                    items.push(v);
                    let numeric = is_numeric(item) || matches!(&**item, Ty::Array(i) if is_numeric(i));
                    if items.len() >= self.opts.max_items || (numeric && !self.has_unused_number()) {
                        cur.force("]");
                        break;
                    }
                    before_sep = Some(cur.mark());
                    // Items of a list the user wrote out: go on while it has unused items.
                    if let Some(more) = items.last().and_then(|v| self.list_goes_on(v)) {
                        cur.force(if more { "," } else { "]" });
                        if more {
                            continue;
                        }
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

    /// Whether the user wrote a list of numbers (or, with no list written, a number) that
    /// no argument has taken yet.
    fn has_unused_list(&self) -> bool {
        if self.lists.is_empty() {
            return self.has_unused_number();
        }
        self.lists.iter().any(|l| !l.iter().all(|v| self.used.contains(v)))
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
        // A percentage goes to a fractional parameter as a fraction (rates, yields, returns),
        // unless the parameter says it takes a percentage.
        let wants_percent = integer || self.about.contains("percent");
        for f in &self.numbers {
            if let Some(t) = values::number_text(f.value, integer)
                && !cands.iter().any(|(c, _)| *c == t)
            {
                let other_style = matches!(
                    (f.written, wants_percent),
                    (values::Written::Percent, false) | (values::Written::Fraction, true)
                );
                if !other_style {
                    cands.push((t, f.value));
                }
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
        let mut text = self.digits(cur, integer)?;
        let v: f64 = text.parse().unwrap_or(0.0);
        if text.parse::<f64>().is_err() {
            cur.force("0");
            text = "0".into();
        }
        self.trace.push(format!("free number: {text}"));
        Ok(json_number(&text, v, integer))
    }

    /// Greedy decoding of a number's characters (digits, a leading minus, a decimal point).
    fn digits(&mut self, cur: &mut Cursor<'_, '_>, integer: bool) -> Result<String> {
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
        Ok(text)
    }

    /// A string: decoded freely (biased toward copying the user's words), then weighed
    /// against the spans of the user's text, where a span another argument already took is
    /// penalized.
    fn string(&mut self, cur: &mut Cursor<'_, '_>, lead: &str) -> Result<Value> {
        cur.force(&format!("{lead}\""));
        let mark = cur.mark();
        let free = self.free_string(cur)?;
        // A value cut out of a longer mention is the mention ("AL2562" of "2022/AL2562").
        let free_l = free.to_lowercase();
        // And a mention is written as the user wrote it.
        let free = match self
            .spans
            .iter()
            .filter(|sp| !free_l.is_empty() && sp.text.len() >= free.len() && sp.text.to_lowercase().contains(&free_l))
            .max_by_key(|sp| sp.text.len())
        {
            Some(sp) => sp.text.clone(),
            None => free,
        };
        let mut options = vec![free.clone()];
        for sp in &self.spans {
            if !options.iter().any(|o| o.eq_ignore_ascii_case(&sp.text)) {
                options.push(sp.text.clone());
            }
        }
        let used = &self.used_strings;
        let named_span = |o: &String| o.chars().any(char::is_alphabetic) && !used.contains(&o.to_lowercase());
        let unused_name = options[1..].iter().any(named_span);
        let taken = |o: &String| used.contains(&o.to_lowercase());
        // A bare number is a poor name when the user wrote a name no argument has taken.
        let bare_number = |o: &String| !o.is_empty() && o.chars().all(|c| c.is_ascii_digit());
        let value = if options.len() == 1 || free.is_empty() {
            cur.force("\"");
            free
        } else {
            cur.rollback(mark)?;
            let alts: Vec<String> = options.iter().map(|o| format!("{}\"", json_inner(o))).collect();
            let bonus: Vec<f32> = options
                .iter()
                .map(|o| {
                    let mut b = 0.0;
                    if taken(o) {
                        b -= self.opts.reuse_penalty;
                    }
                    if bare_number(o) && unused_name {
                        b -= self.opts.reuse_penalty;
                    }
                    // "San Diego County" for `county`, "… Amendment Act" for `act_name`.
                    if self
                        .kind_words
                        .iter()
                        .any(|w| has_word(o, w) && has_name_word(&self.source, w))
                    {
                        b += self.opts.reuse_penalty;
                    }
                    b
                })
                .collect();
            let ch = cur.choose(&alts, Some(&bonus))?;
            self.trace.push(format!(
                "string: {:?} of {} (free {free:?})",
                options[ch.best],
                options.len()
            ));
            options.swap_remove(ch.best)
        };
        self.used_strings.push(value.to_lowercase());
        Ok(Value::String(value))
    }

    /// Whether the request mentions one of `vals`: a word of the request starts with the
    /// value's first five letters ("in detail" mentions "detailed").
    fn mentions_any(&self, vals: &[Value]) -> bool {
        let words: Vec<&str> = self
            .source_lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        vals.iter().any(|v| {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            let stem: String = text.to_lowercase().chars().take(5).collect();
            !stem.is_empty() && words.iter().any(|w| w.starts_with(&stem))
        })
    }

    /// Every number the request wrote, in each of its readings.
    pub(crate) fn numbers_found(&self) -> &[values::Found] {
        &self.numbers
    }

    /// Whether the request gives grounds for `v`: a number it wrote (in any of its forms),
    /// a string sharing a word with it, an array with such an item.
    pub(crate) fn grounded(&self, v: &Value) -> bool {
        match v {
            Value::Number(n) => n.as_f64().is_some_and(|x| {
                self.numbers
                    .iter()
                    .any(|f| (f.value - x).abs() <= 1e-9 * x.abs().max(1.0))
            }),
            Value::String(s) => {
                let words: Vec<&str> = self
                    .source_lower
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .collect();
                s.to_lowercase()
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.chars().count() >= 2)
                    .any(|w| {
                        let stem: String = w.chars().take(5).collect();
                        words.iter().any(|r| r.starts_with(&stem))
                    })
            }
            Value::Array(items) => items.iter().any(|i| self.grounded(i)),
            Value::Object(m) => m.values().any(|i| self.grounded(i)),
            Value::Bool(_) | Value::Null => false,
        }
    }

    /// Whether the request holds a name (span with letters) no argument has taken yet.
    fn unused_name(&self) -> bool {
        self.spans
            .iter()
            .any(|sp| sp.text.chars().any(char::is_alphabetic) && !self.used_strings.contains(&sp.text.to_lowercase()))
    }

    /// Whether the request says no to something ("without", "don't", "exclude", …).
    pub(crate) fn negated(&self) -> bool {
        const NO: &[&str] = &[
            "not",
            "no",
            "without",
            "don't",
            "dont",
            "exclude",
            "excluding",
            "never",
            "skip",
        ];
        self.source_lower
            .split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .any(|w| NO.contains(&w))
    }

    /// Whether a list the user wrote goes on after `last`: `Some(true)` if it has an item no
    /// argument took yet, `Some(false)` if it is used up, `None` if `last` is in no list.
    fn list_goes_on(&self, last: &Value) -> Option<bool> {
        let last = last.as_str()?.to_lowercase();
        let list = self
            .span_lists
            .iter()
            .find(|l| l.iter().any(|&i| self.spans[i].text.to_lowercase() == last))?;
        Some(
            list.iter()
                .any(|&i| !self.used_strings.contains(&self.spans[i].text.to_lowercase())),
        )
    }

    /// Whether the request names an optional property: one of the words of its name (of four
    /// letters or more, not a generic one) starts a word of the request.
    pub(crate) fn named_in_request(&self, name: &str) -> bool {
        !self.name_positions(name).is_empty()
    }

    /// Byte offsets of the request's words that name the property `name` (start with the
    /// first six letters of one of its words of four letters or more, not a generic one).
    pub(crate) fn name_positions(&self, name: &str) -> Vec<usize> {
        let stems: Vec<String> = name_words(name)
            .iter()
            .filter(|w| w.chars().count() >= 4 && !GENERIC_WORDS.contains(&w.as_str()))
            .map(|w| w.chars().take(6).collect())
            .collect();
        let src = &self.source_lower;
        let mut out = Vec::new();
        let mut start = None;
        for (i, c) in src.char_indices().chain(std::iter::once((src.len(), ' '))) {
            match (c.is_alphanumeric(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    if stems.iter().any(|st| src[s..i].starts_with(st.as_str())) {
                        out.push(s);
                    }
                    start = None;
                }
                _ => {}
            }
        }
        out
    }

    /// Free decoding of a string's characters (the opening quote is written; the closing one
    /// is not).
    fn free_string(&mut self, cur: &mut Cursor<'_, '_>) -> Result<String> {
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
                        // Words copied from the request end where the request's word ends.
                        (if mid_word(src, &cur_val) { lp - penalty } else { lp }, true)
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
        Ok(value.trim().to_string())
    }
}

/// The words of an identifier, lowercased (`act_name` → act, name; `zipCode` → zip, code).
pub(super) fn name_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut w = String::new();
    for c in name.chars() {
        if (c == '_' || c == '-' || c == '.' || c.is_uppercase()) && !w.is_empty() {
            words.push(std::mem::take(&mut w));
        }
        if c.is_alphanumeric() {
            w.push(c.to_ascii_lowercase());
        }
    }
    if !w.is_empty() {
        words.push(w);
    }
    words
}

/// Whether `text` has `word` as a whole word (case-insensitive).
fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .any(|w| w.eq_ignore_ascii_case(word))
}

/// Whether `text` has `word` as a capitalized whole word: part of a name ("San Diego
/// County"), not a common noun after it ("Santa Clara county").
fn has_name_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .any(|w| w.eq_ignore_ascii_case(word) && w.starts_with(|c: char| c.is_uppercase()))
}

fn mid_word(text: &str, value: &str) -> bool {
    let ends_word = |at: usize| {
        text[at + value.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric())
    };
    let mut any = false;
    for (at, _) in text.match_indices(value) {
        any = true;
        if ends_word(at) {
            return false;
        }
    }
    any && value.chars().last().is_some_and(char::is_alphanumeric)
}

/// A string as it appears between the quotes of a JSON string.
fn json_inner(s: &str) -> String {
    let q = Value::String(s.to_string()).to_string();
    q[1..q.len() - 1].to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_split_into_words() {
        assert_eq!(name_words("act_name"), vec!["act", "name"]);
        assert_eq!(name_words("zipCode"), vec!["zip", "code"]);
        assert_eq!(name_words("court.location-id"), vec!["court", "location", "id"]);
    }

    #[test]
    fn name_words_are_whole_and_capitalized() {
        assert!(has_name_word("San Diego County", "county"));
        assert!(has_name_word("Criminal Law Amendment Act", "act"));
        assert!(!has_name_word("Actual Records", "act"));
        assert!(!has_name_word("Santa Clara county", "county"));
        assert!(has_word("Santa Clara County", "county"));
    }
}
