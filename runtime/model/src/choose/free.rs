//! Arguments written by the model itself, in its own call format, under a grammar derived
//! from the tool's parameter schema: the values are the model's (a model trained on tool
//! calls knows that a deck has 4 kings and that Apple is `AAPL`), the form is valid by
//! construction. Used for models whose chat template has a tool section; models without
//! that training get the per-type decoder ([`super::args`]).

use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use super::args::{ArgDecoder, ArgOptions, name_words};
use super::cursor::Cursor;
use super::schema::{Prop, Ty};
use super::values;
use crate::error::{ModelError, Result};
use crate::llama::{LoadedModel, Logits, schema_grammar};

/// How many of the likeliest tokens are checked against the grammar before the whole
/// vocabulary is: the grammar check costs per token, and the best allowed token is almost
/// always among the first few.
const TOP: usize = 48;

/// How a generation went, for the trace.
#[derive(Debug, Default, Clone, Copy)]
pub struct GenStats {
    /// Model evaluations (batches).
    pub batches: usize,
    /// Guessed tokens evaluated, and how many of them the model would have written.
    pub guessed: usize,
    pub kept: usize,
}

impl std::fmt::Display for GenStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} evaluations, {} of {} guessed tokens kept",
            self.batches, self.kept, self.guessed
        )
    }
}

/// Generate the arguments object of a call; the cursor stands right before its `{`.
/// `source` is the request (numbers are often copied from it). Returns `None` when the
/// model did not finish an object within `opts.max_generated_tokens` (the caller rolls back
/// and decodes another way).
///
/// Greedy decoding, made cheaper by guessing: with each token the model writes, the tokens
/// it is likely to write next (`guess`: the rest of a property name, the rest of a number
/// the request wrote) are evaluated in the same batch, and kept as far as they are what the
/// model picks at each position. The result is the greedy output. On a 2-core CPU a guessed
/// token costs about half an evaluation of one token, and 95% of the guesses stand (BFCL
/// tuning items), so generation takes ~40% of the evaluations.
pub fn arguments(
    cur: &mut Cursor<'_, '_>,
    schema: &Value,
    source: &str,
    opts: &ArgOptions,
    stats: &mut GenStats,
) -> Result<Option<Value>> {
    let max_tokens = opts.max_generated_tokens;
    let m = cur.s.m;
    let g = schema_grammar(schema)?;
    let mut grammar = LlamaSampler::grammar(&m.model, &g, "root")
        .map_err(|e| ModelError::Grammar(format!("llama.cpp rejected the grammar: {e}")))?;
    let props = super::schema::props(schema);
    let mut bytes: Vec<u8> = Vec::new();
    let mut written = 0;
    let mut next = best_allowed(m, cur.flush()?, &mut grammar);
    while written < max_tokens {
        let Some(t) = next else { return Ok(None) };
        if let Some(v) = take(m, t, &mut grammar, &mut bytes)? {
            cur.force(&String::from_utf8_lossy(m.piece(t)));
            return Ok(Some(v));
        }
        written += 1;
        let text = String::from_utf8_lossy(&bytes);
        let mut batch = vec![t];
        batch.extend(guess(
            m,
            &text,
            &props,
            source,
            opts.guess_tokens.min(max_tokens - written),
        ));
        let lgs = cur.extend_scored(&batch)?;
        stats.batches += 1;
        stats.guessed += batch.len() - 1;
        // The scores after each token of the batch decide whether the next one stands.
        let mut kept = 1;
        next = None;
        for (i, lg) in lgs.iter().enumerate() {
            let pick = best_allowed(m, lg, &mut grammar);
            match (pick, batch.get(i + 1)) {
                (Some(p), Some(&g)) if p == g => {
                    kept += 1;
                    written += 1;
                    stats.kept += 1;
                    if let Some(v) = take(m, g, &mut grammar, &mut bytes)? {
                        return Ok(Some(v));
                    }
                }
                _ => {
                    next = pick;
                    break;
                }
            }
        }
        if kept < batch.len() {
            cur.retract(batch.len() - kept, lgs[kept - 1].clone())?;
        }
    }
    Ok(None)
}

/// Write `t` into the grammar and the text; the arguments object once `t` completes it.
fn take(m: &LoadedModel, t: LlamaToken, grammar: &mut LlamaSampler, bytes: &mut Vec<u8>) -> Result<Option<Value>> {
    grammar
        .try_accept(t)
        .map_err(|e| ModelError::Grammar(format!("the grammar refused its own token: {e}")))?;
    let piece = m.piece(t);
    bytes.extend_from_slice(piece);
    if piece.contains(&b'}')
        && let Ok(text) = std::str::from_utf8(bytes)
        && let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(text.trim())
    {
        return Ok(Some(v));
    }
    Ok(None)
}

/// Up to `n` tokens the model is likely to write after `text`, the arguments so far: the
/// rest of a top-level key (the first property not yet written, then `":` and the opening
/// of its value), the next key after a comma, or the rest of a number the request wrote
/// that a value has begun to copy. Empty when there is no good guess: a wrong guess costs
/// about half a decoding step per token (so where a copied word ends is not guessed: on
/// tuning items such guesses were mostly wrong).
fn guess(m: &LoadedModel, text: &str, props: &[Prop], source: &str, n: usize) -> Vec<LlamaToken> {
    if n == 0 {
        return Vec::new();
    }
    let at = Position::of(text);
    let next_key = |prefix: &str| {
        props
            .iter()
            .find(|p| p.name.starts_with(prefix) && !at.keys.contains(&p.name))
    };
    let mut toks = Vec::new();
    match &at.place {
        Place::Key(prefix) if at.depth == 1 => {
            if let Some(p) = next_key(prefix) {
                toks = m.tokenize(&format!("{}\":", &p.name[prefix.len()..]));
                toks.extend(m.tokenize(opening(&p.ty)));
            }
        }
        Place::AfterComma if at.depth == 1 => {
            if let Some(p) = next_key("") {
                toks = m.tokenize(" \"");
                toks.extend(m.tokenize(&format!("{}\":", p.name)));
                toks.extend(m.tokenize(opening(&p.ty)));
            }
        }
        Place::Number(digits) => {
            if let Some(rest) = continued(source, digits, |c| c.is_ascii_digit() || c == '.') {
                // A full stop after a number ends the sentence.
                toks = m.tokenize(rest.trim_end_matches('.'));
            }
        }
        _ => {}
    }
    toks.truncate(n);
    toks
}

/// How the model opens a value of type `ty` after `":` (Qwen's style: a space, and the
/// quote with it for a string); nothing when it varies.
fn opening(ty: &Ty) -> &'static str {
    match ty {
        Ty::String => " \"",
        Ty::Integer | Ty::Number => " ",
        Ty::Enum(vs) if vs.iter().all(Value::is_string) => " \"",
        _ => "",
    }
}

/// What follows `written` in the request, as long as its characters pass `keep` (at most
/// 40 bytes); `written` must start a word or number there.
fn continued(source: &str, written: &str, keep: impl Fn(char) -> bool) -> Option<String> {
    let mut from = 0;
    while let Some(i) = source[from..].find(written) {
        let at = from + i;
        from = at + written.len();
        let starts = source[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric() && c != '.');
        if !starts {
            continue;
        }
        let rest: String = source[from..].chars().take_while(|&c| keep(c)).take(40).collect();
        let rest = rest.trim_end().to_string();
        return (!rest.is_empty()).then_some(rest);
    }
    None
}

/// Where the text of a partly written JSON object stands.
#[derive(Debug, Default)]
struct Position {
    /// Open objects and arrays.
    depth: usize,
    /// Keys written at the top level.
    keys: Vec<String>,
    place: Place,
}

#[derive(Debug, Default, PartialEq)]
enum Place {
    /// Inside a key, written this far.
    Key(String),
    /// Inside a string value, written this far.
    Value(String),
    /// Inside a number, written this far.
    Number(String),
    /// Right after a comma between the members of an object (spaces allowed).
    AfterComma,
    #[default]
    Other,
}

impl Position {
    fn of(text: &str) -> Position {
        let mut stack: Vec<char> = Vec::new();
        let mut keys = Vec::new();
        let mut place = Place::Other;
        let mut expect_key = false;
        let mut escaped = false;
        for c in text.chars() {
            match &mut place {
                Place::Key(k) | Place::Value(k) => {
                    if escaped {
                        escaped = false;
                        k.push(c);
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        if let Place::Key(k) = &place
                            && stack.len() == 1
                        {
                            keys.push(k.clone());
                        }
                        place = Place::Other;
                    } else {
                        k.push(c);
                    }
                    continue;
                }
                Place::Number(d) if c.is_ascii_digit() || c == '.' || c == '-' => {
                    d.push(c);
                    continue;
                }
                _ => {}
            }
            let after_comma = place == Place::AfterComma;
            place = Place::Other;
            match c {
                '{' | '[' => {
                    stack.push(c);
                    expect_key = c == '{';
                }
                '}' | ']' => {
                    stack.pop();
                    expect_key = false;
                }
                ',' => {
                    expect_key = stack.last() == Some(&'{');
                    if expect_key {
                        place = Place::AfterComma;
                    }
                }
                '"' if expect_key => {
                    place = Place::Key(String::new());
                    expect_key = false;
                }
                '"' => place = Place::Value(String::new()),
                c if c.is_ascii_digit() || c == '-' => place = Place::Number(c.to_string()),
                c if c.is_whitespace() && after_comma => place = Place::AfterComma,
                _ => {}
            }
        }
        Position {
            depth: stack.len(),
            keys,
            place,
        }
    }
}

/// The likeliest token the grammar allows (`None` when it allows only the end). When the
/// grammar refuses the model's own first choice, the start of that choice is written if the
/// grammar allows it: a model trained on calls closes the arguments and the call in one
/// token (`}}`); the grammar, which ends with the arguments, takes its `}`, where the next
/// likeliest allowed token would be a digit, and a `5` went on as `5000000000000000`.
fn best_allowed(m: &LoadedModel, lg: &Logits, grammar: &mut LlamaSampler) -> Option<LlamaToken> {
    let top = lg.top(TOP);
    let mut arr = LlamaTokenDataArray::new(
        top.iter().map(|&(t, lp)| LlamaTokenData::new(t, lp, 0.0)).collect(),
        true,
    );
    arr.apply_sampler(grammar);
    if let Some(t) = argmax(&arr) {
        if let Some(&(want, _)) = top.first()
            && want != t
            && let Some(p) = allowed_start(m, want, grammar)
        {
            return Some(p);
        }
        return (!m.is_eog(t)).then_some(t);
    }
    // None of the likeliest fits: ask the grammar about every token.
    let mut arr = LlamaTokenDataArray::new(
        lg.raw()
            .iter()
            .enumerate()
            .map(|(i, &x)| LlamaTokenData::new(LlamaToken::new(i as i32), x, 0.0))
            .collect(),
        false,
    );
    arr.apply_sampler(grammar);
    argmax(&arr).filter(|&t| !m.is_eog(t))
}

/// The longest start of the token `want`'s text that is one token the grammar allows, where
/// what the grammar cut off only closes objects or arrays (`}}` → `}`): a token refused for
/// what it writes (a word, a digit) is not cut.
fn allowed_start(m: &LoadedModel, want: LlamaToken, grammar: &mut LlamaSampler) -> Option<LlamaToken> {
    let text = String::from_utf8_lossy(m.piece(want)).into_owned();
    let closing = |rest: &str| rest.chars().all(|c| c == '}' || c == ']' || c.is_whitespace());
    let ends: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .filter(|&i| i > 0 && closing(&text[i..]))
        .collect();
    ends.into_iter().rev().find_map(|end| {
        let [t] = m.tokenize(&text[..end])[..] else { return None };
        let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(t, 0.0, 0.0)], false);
        one.apply_sampler(grammar);
        argmax(&one).filter(|&t| !m.is_eog(t))
    })
}

fn argmax(arr: &LlamaTokenDataArray) -> Option<LlamaToken> {
    arr.data
        .iter()
        .filter(|d| d.logit().is_finite())
        .max_by(|a, b| a.logit().total_cmp(&b.logit()))
        .map(LlamaTokenData::id)
}

/// The model's arguments, checked against the request in one pass over one reading of it:
/// numbers as the request wrote them, optional arguments it says nothing about dropped,
/// flags it names set. Returns one line per change, for the trace.
pub fn tidy(args: &mut Value, props: &[Prop], source: &str, opts: &ArgOptions) -> Vec<String> {
    let dec = ArgDecoder::new(source, opts);
    let mut notes = reconcile_numbers(args, props, &dec);
    notes.extend(drop_ungrounded(args, props, &dec));
    notes.extend(set_named_flags(args, props, &dec));
    notes.extend(dates_in_stated_format(args, props));
    notes.extend(ends_in_request_order(args, props, source));
    notes.extend(numbers_each_once(args, props, &dec));
    notes.extend(trimmed_strings(args, props));
    notes.extend(super::conventions::apply(args, props, source, &dec));
    notes
}

/// A number the request wrote once, copied into two arguments while another number it wrote
/// went to none: the argument whose name the request puts next to the unused number takes
/// it ("net income of $2,000,000 … dividends paid of $200,000" with both at 2000000). Only
/// when exactly one number is left over, and that argument's name stands nearer to it than
/// to the number copied twice.
fn numbers_each_once(args: &mut Value, props: &[Prop], dec: &ArgDecoder<'_>) -> Vec<String> {
    use values::Written;
    let Value::Object(map) = args else { return Vec::new() };
    let same = same_number;
    let nums: Vec<(&Prop, f64)> = props
        .iter()
        .filter(|p| matches!(p.ty, Ty::Integer | Ty::Number))
        .filter_map(|p| Some((p, map.get(&p.name)?.as_f64()?)))
        .collect();
    let written: Vec<&values::Found> = dec
        .numbers_found()
        .iter()
        .filter(|f| f.written == Written::Plain)
        .collect();
    let used = |f: &values::Found| nums.iter().any(|(_, v)| same(*v, f.value));
    // A number read two ways ("5 million": 5 and 5000000) is used when either reading is.
    let unused: Vec<&&values::Found> = written
        .iter()
        .filter(|f| !written.iter().any(|g| g.at == f.at && used(g)))
        .collect();
    let [spare] = unused.as_slice() else { return Vec::new() };
    for (i, (_, v)) in nums.iter().enumerate() {
        let twice: Vec<&Prop> = nums[i..]
            .iter()
            .filter(|(_, w)| same(*v, *w))
            .map(|(p, _)| *p)
            .collect();
        let at: Vec<usize> = written.iter().filter(|f| same(f.value, *v)).map(|f| f.at).collect();
        if twice.len() < 2 || nums[..i].iter().any(|(_, w)| same(*v, *w)) || at.len() != 1 {
            continue;
        }
        let nearest = |p: &Prop, to: usize| dec.name_positions(&p.name).into_iter().map(|x| x.abs_diff(to)).min();
        let pick = twice
            .iter()
            .filter_map(|p| {
                let (d_spare, d_copied) = (nearest(p, spare.at)?, nearest(p, at[0])?);
                (d_spare < d_copied).then_some((d_spare, *p))
            })
            .min_by_key(|(d, _)| *d);
        let Some((_, p)) = pick else { continue };
        let integer = matches!(p.ty, Ty::Integer);
        if integer && spare.value.fract() != 0.0 {
            continue;
        }
        let Some(new) = json_number(spare.value, integer) else {
            continue;
        };
        let note = format!(
            "{}: {v} -> {new} (the request wrote {v} once, for another argument, and {new} beside this one's name)",
            p.name
        );
        map.insert(p.name.clone(), new);
        return vec![note];
    }
    Vec::new()
}

/// String values trimmed of what their parameter does not ask for: the common noun naming
/// the kind of value after it ("Santa Clara county" for `county`; a capitalized word is part
/// of the name: "Mexico City" stays), and another argument's value after a preposition
/// ("Criminal Law Amendment Act of 2013" beside `amendment_year: 2013`) or a number another
/// argument holds before it ("2021 La Liga" beside `season: "2021"`).
fn trimmed_strings(args: &mut Value, props: &[Prop]) -> Vec<String> {
    const PREPOSITIONS: [&str; 6] = ["of", "in", "for", "from", "on", "at"];
    let Value::Object(map) = args else { return Vec::new() };
    let others: Vec<(String, String)> = map
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            (!text.is_empty()).then(|| (k.clone(), text.to_lowercase()))
        })
        .collect();
    let mut notes = Vec::new();
    for p in props.iter().filter(|p| matches!(p.ty, Ty::String)) {
        let Some(Value::String(v)) = map.get(&p.name) else {
            continue;
        };
        let words: Vec<&str> = v.split_whitespace().collect();
        let kind_last = words.len() >= 2
            && words.last().is_some_and(|w| {
                w.starts_with(|c: char| c.is_lowercase()) && name_words(&p.name).iter().any(|k| k.len() >= 3 && w == k)
            });
        let (keep, why) = if kind_last {
            (0..words.len() - 1, "the kind of value, not part of it".to_string())
        } else {
            let lower = v.to_lowercase();
            let cut = others.iter().filter(|(k, _)| k != &p.name).find_map(|(k, o)| {
                let n = o.split_whitespace().count();
                // "2021 La Liga" beside `season: 2021`: a number another argument holds.
                let number = o.chars().all(|c| c.is_ascii_digit());
                let leads = lower.strip_prefix(o.as_str()).is_some_and(|r| r.starts_with(' '));
                if number && words.len() > n && leads {
                    return Some((n..words.len(), format!("\"{o}\" is the value of {k}")));
                }
                if words.len() < n + 2 {
                    return None;
                }
                let head = lower.strip_suffix(o.as_str())?;
                let prep = words[words.len() - n - 1].to_lowercase();
                let fits = head.ends_with(' ') && PREPOSITIONS.contains(&prep.as_str());
                fits.then(|| (0..words.len() - n - 1, format!("\"{prep} {o}\" is the value of {k}")))
            });
            let Some(c) = cut else { continue };
            c
        };
        let new = words[keep].join(" ");
        notes.push(format!("{}: \"{v}\" -> \"{new}\" ({why})", p.name));
        map.insert(p.name.clone(), Value::String(new));
    }
    notes
}

/// The two ends of a route or a conversion put the way the request says them: "from Las
/// Vegas to Los Angeles" with `start_location: "Los Angeles"` and `end_location: "Las
/// Vegas"` is swapped (a small model keeps the pair and loses the order). Only a pair the
/// request states exactly the other way round is touched.
fn ends_in_request_order(args: &mut Value, props: &[Prop], source: &str) -> Vec<String> {
    const STARTS: [&str; 6] = ["start", "source", "origin", "from", "departure", "src"];
    const ENDS: [&str; 6] = ["end", "destination", "to", "dest", "arrival", "target"];
    let Value::Object(map) = args else { return Vec::new() };
    let strings: Vec<&Prop> = props
        .iter()
        .filter(|p| map.get(&p.name).is_some_and(Value::is_string))
        .collect();
    let of = |set: &[&str]| -> Option<String> {
        let mut found = strings
            .iter()
            .filter(|p| name_words(&p.name).iter().any(|w| set.contains(&w.as_str())));
        let one = found.next()?;
        found.next().is_none().then(|| one.name.clone())
    };
    let (Some(start), Some(end)) = (of(&STARTS), of(&ENDS)) else {
        return Vec::new();
    };
    if start == end {
        return Vec::new();
    }
    let text = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or_default().to_lowercase();
    let (a, b) = (text(&start), text(&end));
    let said = source.to_lowercase();
    if a.is_empty() || b.is_empty() || a == b {
        return Vec::new();
    }
    let from_b = said.find(&format!("from {b}"));
    let to_a = said.find(&format!("to {a}"));
    let reversed = matches!((from_b, to_a), (Some(f), Some(t)) if f < t)
        && !said.contains(&format!("from {a}"))
        && !said.contains(&format!("to {b}"));
    if !reversed {
        return Vec::new();
    }
    let (va, vb) = (map.remove(&start), map.remove(&end));
    if let (Some(va), Some(vb)) = (va, vb) {
        map.insert(start.clone(), vb);
        map.insert(end.clone(), va);
    }
    vec![format!("{start} and {end} swapped (the request goes from {b} to {a})")]
}

/// Dates written the ISO way (`2023-06-01`) to a parameter whose description states another
/// format ("in the format mm-dd-yyyy"), rewritten in that format: a model writes the form it
/// saw most. Only the unambiguous ISO order is read (`06/01/2023` could be either day).
fn dates_in_stated_format(args: &mut Value, props: &[Prop]) -> Vec<String> {
    let mut notes = Vec::new();
    let Value::Object(map) = args else { return notes };
    for p in props.iter().filter(|p| matches!(p.ty, Ty::String)) {
        let Some(format) = stated_date_format(&p.description) else {
            continue;
        };
        let Some(Value::String(v)) = map.get(&p.name) else {
            continue;
        };
        let Some((y, m, d)) = iso_date(v) else { continue };
        let (sep, order) = format;
        let part = |c: char| match c {
            'y' => format!("{y:04}"),
            'm' => format!("{m:02}"),
            _ => format!("{d:02}"),
        };
        let new: Vec<String> = order.iter().map(|&c| part(c)).collect();
        let new = new.join(&sep.to_string());
        if &new != v {
            notes.push(format!("{}: {v} -> {new} (the format its description states)", p.name));
            map.insert(p.name.clone(), Value::String(new));
        }
    }
    notes
}

/// The date format a description states: its separator and the order of year, month, day.
fn stated_date_format(description: &str) -> Option<(char, [char; 3])> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE
        .get_or_init(|| Regex::new(r"(?i)\b(yyyy|mm|dd)([-/.])(yyyy|mm|dd)([-/.])(yyyy|mm|dd)\b").ok())
        .as_ref()?;
    let c = re.captures(description)?;
    let sep = c.get(2)?.as_str().chars().next()?;
    if c.get(4)?.as_str().chars().next()? != sep {
        return None;
    }
    let first = |i: usize| c.get(i).and_then(|m| m.as_str().to_lowercase().chars().next());
    let order = [first(1)?, first(3)?, first(5)?];
    let distinct = order[0] != order[1] && order[1] != order[2] && order[0] != order[2];
    distinct.then_some((sep, order))
}

/// Year, month and day of a date written `yyyy-mm-dd` (or with `/` or `.`), if valid.
fn iso_date(v: &str) -> Option<(u32, u32, u32)> {
    let parts: Vec<&str> = v.trim().split(['-', '/', '.']).collect();
    let [y, m, d] = parts.as_slice() else { return None };
    if y.len() != 4 || m.is_empty() || m.len() > 2 || d.is_empty() || d.len() > 2 {
        return None;
    }
    let (y, m, d) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// Numbers the model wrote, made to agree with how the user wrote them: a percentage goes
/// to a fractional parameter as a fraction (10% → 0.1) unless the parameter says it takes a
/// percentage, and a number whose digits the user wrote at another scale ("50 million"
/// written 500000000) is the user's. Returns one line per change, for the trace.
fn reconcile_numbers(args: &mut Value, props: &[Prop], dec: &ArgDecoder<'_>) -> Vec<String> {
    let found = dec.numbers_found();
    let mut notes = Vec::new();
    let Value::Object(map) = args else { return notes };
    for p in props {
        let integer = match p.ty {
            Ty::Integer => true,
            Ty::Number => false,
            _ => continue,
        };
        let Some(v) = map.get(&p.name).and_then(Value::as_f64) else {
            continue;
        };
        let about = format!("{} {}", p.name, p.description).to_lowercase();
        let Some(w) = user_number(v, found, integer || about.contains("percent")) else {
            continue;
        };
        let Some(new) = json_number(w, integer) else { continue };
        notes.push(format!("{}: {v} -> {new} (as the request wrote it)", p.name));
        map.insert(p.name.clone(), new);
    }
    notes
}

/// Optional arguments the request says nothing about, dropped (their defaults apply): a
/// small model fills every field it is shown, with made-up values. An optional argument
/// stays when the request names it, or when its value comes from the request (a number
/// it wrote, a word it used). Returns one line per dropped argument, for the trace.
fn drop_ungrounded(args: &mut Value, props: &[Prop], dec: &ArgDecoder<'_>) -> Vec<String> {
    let mut notes = Vec::new();
    let Value::Object(map) = args else { return notes };
    for p in props.iter().filter(|p| !p.required) {
        let Some(v) = map.get(&p.name) else { continue };
        if (dec.named_in_request(&p.name) || dec.grounded(v)) && !invented_digits(v, dec) {
            continue;
        }
        notes.push(format!("optional {}: {v} not from the request, dropped", p.name));
        map.remove(&p.name);
    }
    notes
}

/// Whether a string value holds a number the request never wrote ("Mission 1" where the
/// request asks about "different missions"): made up, whatever words around it are the
/// request's.
fn invented_digits(v: &Value, dec: &ArgDecoder<'_>) -> bool {
    let Value::String(s) = v else { return false };
    // A word with a number beside it; dates and codes ("2023-04-15", "B12") are other forms.
    s.chars().any(char::is_alphabetic)
        && s.split_whitespace()
            .filter_map(|w| w.trim_end_matches([',', '.']).parse::<f64>().ok())
            .any(|x| !dec.numbers_found().iter().any(|f| same_number(f.value, x)))
}

/// Flags the request names, set (as the per-type decoder does): "the population and
/// species of turtles" wants `species: true`, unless the request says no to something.
fn set_named_flags(args: &mut Value, props: &[Prop], dec: &ArgDecoder<'_>) -> Vec<String> {
    let mut notes = Vec::new();
    let Value::Object(map) = args else { return notes };
    if dec.negated() {
        return notes;
    }
    for p in props.iter().filter(|p| matches!(p.ty, Ty::Boolean)) {
        if map.get(&p.name) == Some(&Value::Bool(false)) && dec.named_in_request(&p.name) {
            notes.push(format!("{}: false -> true (the request names it)", p.name));
            map.insert(p.name.clone(), Value::Bool(true));
        }
    }
    notes
}

/// Whether two numbers are the same, up to floating-point rounding.
pub(super) fn same_number(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// `v` as a JSON number: an integer when `integer` and `v` is whole (`None` for NaN or
/// infinity).
pub(super) fn json_number(v: f64, integer: bool) -> Option<Value> {
    if integer && v.fract() == 0.0 {
        return Some(Value::from(v as i64));
    }
    serde_json::Number::from_f64(v).map(Value::Number)
}

/// The number the user meant by `v`, when it differs from `v`.
fn user_number(v: f64, found: &[values::Found], wants_percent: bool) -> Option<f64> {
    use values::Written;
    let same = same_number;
    if let Some(f) = found.iter().find(|f| same(f.value, v)) {
        // Written by the user; only the style of a percentage may be off.
        let other = match (f.written, wants_percent) {
            (Written::Percent, false) => Written::Fraction,
            (Written::Fraction, true) => Written::Percent,
            _ => return None,
        };
        return found
            .iter()
            .find(|g| g.at == f.at && g.written == other)
            .map(|g| g.value);
    }
    // Not written by the user: a large number with the digits of a large number the user
    // wrote, at another scale, is the user's (zeros miscounted; 1 and 10 are left alone).
    let mut at_scale = found.iter().filter(|f| {
        f.written == Written::Plain && f.value != 0.0 && v != 0.0 && v.abs().min(f.value.abs()) >= 1e3 && {
            let r = (v / f.value).abs().log10();
            r.abs() >= 0.5 && (r - r.round()).abs() < 1e-9
        }
    });
    let first = at_scale.next()?;
    // Two such numbers leave it open.
    at_scale.all(|g| same(g.value, first.value)).then_some(first.value)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// One reading of `src`, as `tidy` makes it.
    fn dec(src: &str) -> ArgDecoder<'static> {
        static OPTS: std::sync::LazyLock<ArgOptions> = std::sync::LazyLock::new(ArgOptions::default);
        ArgDecoder::new(src, &OPTS)
    }

    /// A required property, for tests.
    pub(in crate::choose) fn prop(name: &str, ty: Ty, description: &str) -> Prop {
        Prop {
            name: name.into(),
            ty,
            description: description.into(),
            required: true,
            default: None,
        }
    }

    #[test]
    fn a_number_copied_twice_goes_back_to_the_argument_the_request_wrote_it_for() {
        let props = [
            prop("revenue", Ty::Number, ""),
            prop("costs", Ty::Number, ""),
            prop("tax_paid", Ty::Number, ""),
        ];
        let src = "Work out the margin for revenue of $5,000,000 with costs of $3,000,000 and tax paid of $500,000.";
        let mut args = json!({"revenue": 5000000, "costs": 3000000, "tax_paid": 5000000});
        assert_eq!(numbers_each_once(&mut args, &props, &dec(src)).len(), 1);
        assert_eq!(args["tax_paid"], 500000.0);
        assert_eq!(args["revenue"], 5000000);
        // A number the request wrote twice, or two numbers left over: left alone.
        let src2 = "Two dice with 6 sides each, rolled 6 times; 3 of them count, or 4.";
        let props2 = [
            prop("dice", Ty::Integer, ""),
            prop("sides", Ty::Integer, ""),
            prop("rolls", Ty::Integer, ""),
        ];
        let mut args = json!({"dice": 2, "sides": 6, "rolls": 6});
        assert!(numbers_each_once(&mut args, &props2, &dec(src2)).is_empty());
        // The argument's name is not beside the spare number: left alone.
        let src3 = "Revenue of $5,000,000 with costs of $3,000,000, of which 500,000 was one-off.";
        let mut args = json!({"revenue": 5000000, "costs": 3000000, "tax_paid": 5000000});
        assert!(numbers_each_once(&mut args, &props, &dec(src3)).is_empty());
        // The other reading of a number an argument took ("5 million": 5) is not left over.
        let src4 = "Revenue of 5 million with costs of 3 million and tax paid of 500,000.";
        let mut args = json!({"revenue": 5000000, "costs": 3000000, "tax_paid": 5000000});
        assert_eq!(numbers_each_once(&mut args, &props, &dec(src4)).len(), 1);
        assert_eq!(args["tax_paid"], 500000.0);
    }

    #[test]
    fn string_values_lose_what_their_parameter_does_not_ask_for() {
        let props = [
            prop("county", Ty::String, ""),
            prop("law_name", Ty::String, ""),
            prop("year", Ty::Integer, ""),
        ];
        let mut args = json!({"county": "Marin county", "law_name": "Clean Air Act of 1990", "year": 1990});
        assert_eq!(trimmed_strings(&mut args, &props).len(), 2);
        assert_eq!(
            args,
            json!({"county": "Marin", "law_name": "Clean Air Act", "year": 1990})
        );
        // A capitalized kind word is part of the name; a value without the preposition, or
        // whose end is not another argument's value, stays.
        let props = [
            prop("city", Ty::String, ""),
            prop("query", Ty::String, ""),
            prop("location", Ty::String, ""),
        ];
        let mut args = json!({"city": "Mexico City", "query": "Book of Kells", "location": "Dublin"});
        assert!(trimmed_strings(&mut args, &props).is_empty());
        let mut args = json!({"city": "Dublin", "query": "tours in Dublin", "location": "Dublin"});
        assert_eq!(trimmed_strings(&mut args, &props).len(), 1);
        assert_eq!(args["query"], "tours");
        assert_eq!(args["city"], "Dublin");
        let props = [prop("league", Ty::String, ""), prop("season", Ty::String, "")];
        let mut args = json!({"league": "2019 Serie A", "season": "2019"});
        assert_eq!(trimmed_strings(&mut args, &props).len(), 1);
        assert_eq!(args, json!({"league": "Serie A", "season": "2019"}));
    }

    #[test]
    fn the_ends_of_a_route_follow_the_request() {
        let props = [
            prop("start_location", Ty::String, ""),
            prop("end_location", Ty::String, ""),
            prop("time_period", Ty::String, ""),
        ];
        let src = "How much traffic should I expect from Las Vegas to Los Angeles this weekend?";
        let mut args = json!({"start_location": "Los Angeles", "end_location": "Las Vegas", "time_period": "weekend"});
        assert_eq!(ends_in_request_order(&mut args, &props, src).len(), 1);
        assert_eq!(args["start_location"], "Las Vegas");
        assert_eq!(args["end_location"], "Los Angeles");
        // In order already, or not stated as a route: untouched.
        assert!(ends_in_request_order(&mut args, &props, src).is_empty());
        let mut args = json!({"start_location": "Los Angeles", "end_location": "Las Vegas"});
        assert!(ends_in_request_order(&mut args, &props, "Traffic between Las Vegas and Los Angeles").is_empty());
        // camelCase names, currencies.
        let props = [prop("fromCurrency", Ty::String, ""), prop("toCurrency", Ty::String, "")];
        let mut args = json!({"fromCurrency": "USD", "toCurrency": "EUR"});
        assert_eq!(
            ends_in_request_order(&mut args, &props, "Convert 5 from eur to usd").len(),
            1
        );
        assert_eq!(args, json!({"fromCurrency": "EUR", "toCurrency": "USD"}));
    }

    #[test]
    fn iso_dates_are_written_in_the_format_a_description_states() {
        let props = [
            prop("date", Ty::String, "The date, in the format mm-dd-yyyy."),
            prop("day", Ty::String, "Day of the stay, DD/MM/YYYY"),
            prop("iso", Ty::String, "Use format 'YYYY-MM-DD'"),
            prop("free", Ty::String, "A date"),
        ];
        let mut args = json!({"date": "2023-06-01", "day": "2024-12-5", "iso": "2023-06-01", "free": "2023-06-01"});
        let notes = dates_in_stated_format(&mut args, &props);
        assert_eq!(
            args,
            json!({"date": "06-01-2023", "day": "05/12/2024", "iso": "2023-06-01", "free": "2023-06-01"})
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
        // Not an ISO date, or not a date: left as written.
        let mut args = json!({"date": "06/01/2023", "day": "tomorrow"});
        assert!(dates_in_stated_format(&mut args, &props).is_empty());
        assert_eq!(stated_date_format("format MM-DD-YYY"), None);
        assert_eq!(stated_date_format("yyyy-mm/dd"), None);
    }

    #[test]
    fn the_position_in_a_partly_written_object_is_known() {
        let at = Position::of("{\"distance\": 450, \"ti");
        assert_eq!((at.depth, at.keys.as_slice()), (1, &["distance".to_string()][..]));
        assert_eq!(at.place, Place::Key("ti".into()));
        assert_eq!(Position::of("{\"a\": \"x\", ").place, Place::AfterComma);
        assert_eq!(Position::of("{\"a\": \"x\",").place, Place::AfterComma);
        // A comma inside an array or a string is not between members.
        assert_eq!(Position::of("{\"a\": [1,").place, Place::Other);
        assert_eq!(Position::of("{\"a\": \"x, y").place, Place::Value("x, y".into()));
        assert_eq!(Position::of("{\"a\": [3, -4").place, Place::Number("-4".into()));
        let nested = Position::of("{\"a\": {\"b\": 1, \"c");
        assert_eq!((nested.depth, nested.place), (2, Place::Key("c".into())));
        assert_eq!(Position::of("{\"a\": \"q\\\"r").place, Place::Value("q\"r".into()));
    }

    #[test]
    fn guesses_continue_what_the_request_wrote() {
        let src = "Speed of a car that traveled 450 meters in 20.5 seconds from New York City?";
        let digits = |c: char| c.is_ascii_digit() || c == '.';
        assert_eq!(continued(src, "4", digits).as_deref(), Some("50"));
        assert_eq!(continued(src, "20", digits).as_deref(), Some(".5"));
        // Written must start a number: the "0" of "450" is not where "0" starts.
        assert_eq!(continued(src, "0", digits), None);
        let words = |c: char| c.is_alphanumeric() || c == ' ';
        assert_eq!(continued(src, "New", words).as_deref(), Some(" York City"));
        assert_eq!(continued(src, "Paris", words), None);
    }

    #[test]
    fn optional_arguments_come_from_the_request() {
        let opt = |name: &str, ty: Ty| Prop {
            required: false,
            ..prop(name, ty, "")
        };
        let props = vec![
            prop("company", Ty::String, ""),
            opt("exchange", Ty::String),
            opt("top_n", Ty::Integer),
            opt("include_owner", Ty::Boolean),
            opt("days", Ty::Integer),
        ];
        let src = "Stock price of Apple for the last 5 days, with the owner.";
        let mut args = json!({"company": "Tesla", "exchange": "NYSE", "top_n": 3, "include_owner": true, "days": 5});
        let notes = drop_ungrounded(&mut args, &props, &dec(src));
        // Required arguments are never dropped; `include_owner` is named, 5 was written.
        assert_eq!(args, json!({"company": "Tesla", "include_owner": true, "days": 5}));
        assert_eq!(notes.len(), 2);
        // A word of the request with a number it never wrote is made up; a date is not.
        let props = vec![
            opt("mission", Ty::String),
            opt("date", Ty::String),
            opt("level", Ty::String),
        ];
        let src = "Rewards for different missions from April 15, 2023, up to level 3.";
        let mut args = json!({"mission": "Mission 1", "date": "2023-04-15", "level": "level 3"});
        assert_eq!(drop_ungrounded(&mut args, &props, &dec(src)).len(), 1);
        assert_eq!(args, json!({"date": "2023-04-15", "level": "level 3"}));
        let props = vec![opt("species", Ty::Boolean), opt("include_owner", Ty::Boolean)];
        let mut args = json!({"species": false, "include_owner": false});
        assert_eq!(
            set_named_flags(&mut args, &props, &dec("The population and species of turtles.")).len(),
            1
        );
        assert_eq!(args, json!({"species": true, "include_owner": false}));
        let mut args = json!({"species": false});
        assert!(set_named_flags(&mut args, &props, &dec("Population, not species.")).is_empty());
    }

    #[test]
    fn percentages_and_scales_follow_the_request() {
        let props = vec![
            prop("discount_rate", Ty::Number, "The discount rate."),
            prop("growth_percent", Ty::Number, "Growth in percent."),
            prop("payout", Ty::Integer, "Total payout."),
            prop("years", Ty::Integer, "Years."),
        ];
        let src = "A payout of 50 million over 5 years at 10% discount and 3% growth.";
        let mut args = json!({"discount_rate": 10, "growth_percent": 0.03, "payout": 500000000, "years": 5});
        let notes = reconcile_numbers(&mut args, &props, &dec(src));
        assert_eq!(
            args,
            json!({"discount_rate": 0.1, "growth_percent": 3.0, "payout": 50000000, "years": 5})
        );
        assert_eq!(notes.len(), 3);
        // A number the user did not write at any scale is the model's own.
        let mut args = json!({"discount_rate": 0.25, "growth_percent": 7, "payout": 4, "years": 52});
        assert!(reconcile_numbers(&mut args, &props, &dec("A deck of 52 cards.")).is_empty());
        let mut args = json!({"discount_rate": 1, "growth_percent": 1, "payout": 1, "years": 1});
        assert!(reconcile_numbers(&mut args, &props, &dec("10 rounds of 100")).is_empty());
    }
}
