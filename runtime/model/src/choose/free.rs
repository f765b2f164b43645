//! Arguments written by the model itself, in its own call format, under a grammar derived
//! from the tool's parameter schema: the values are the model's (a model trained on tool
//! calls knows that a deck has 4 kings and that Apple is `AAPL`), the form is valid by
//! construction. Used for models whose chat template has a tool section; models without
//! that training get the per-type decoder ([`super::args`]).

use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use serde_json::Value;

use super::args::{ArgDecoder, ArgOptions};
use super::cursor::Cursor;
use super::schema::{Prop, Ty};
use super::values;
use crate::error::{ModelError, Result};
use crate::llama::{LoadedModel, Logits, schema_grammar};

/// How many of the likeliest tokens are checked against the grammar before the whole
/// vocabulary is: the grammar check costs per token, and the best allowed token is almost
/// always among the first few.
const TOP: usize = 48;

/// Generate the arguments object of a call; the cursor stands right before its `{`.
/// Returns `None` when the model did not finish an object within `max_tokens` (the caller
/// rolls back and decodes another way).
pub fn arguments(cur: &mut Cursor<'_, '_>, schema: &Value, max_tokens: usize) -> Result<Option<Value>> {
    let m = cur.s.m;
    let g = schema_grammar(schema)?;
    let mut grammar = LlamaSampler::grammar(&m.model, &g, "root")
        .map_err(|e| ModelError::Grammar(format!("llama.cpp rejected the grammar: {e}")))?;
    let mut bytes: Vec<u8> = Vec::new();
    for _ in 0..max_tokens {
        let mut picked: Option<LlamaToken> = None;
        cur.step(&mut |lg: &Logits| {
            picked = best_allowed(m, lg, &mut grammar);
            picked
        })?;
        let Some(t) = picked else { return Ok(None) };
        grammar
            .try_accept(t)
            .map_err(|e| ModelError::Grammar(format!("the grammar refused its own token: {e}")))?;
        let piece = m.piece(t);
        bytes.extend_from_slice(piece);
        if piece.contains(&b'}')
            && let Ok(text) = std::str::from_utf8(&bytes)
            && let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(text.trim())
        {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// The likeliest token the grammar allows (`None` when it allows only the end).
fn best_allowed(m: &LoadedModel, lg: &Logits, grammar: &mut LlamaSampler) -> Option<LlamaToken> {
    let top = lg.top(TOP);
    let mut arr = LlamaTokenDataArray::new(
        top.iter().map(|&(t, lp)| LlamaTokenData::new(t, lp, 0.0)).collect(),
        true,
    );
    arr.apply_sampler(grammar);
    if let Some(t) = argmax(&arr) {
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
    notes
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
        let new = if integer && w.fract() == 0.0 {
            Value::from(w as i64)
        } else if let Some(n) = serde_json::Number::from_f64(w) {
            Value::Number(n)
        } else {
            continue;
        };
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
        if dec.named_in_request(&p.name) || dec.grounded(v) {
            continue;
        }
        notes.push(format!("optional {}: {v} not from the request, dropped", p.name));
        map.remove(&p.name);
    }
    notes
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

/// The number the user meant by `v`, when it differs from `v`.
fn user_number(v: f64, found: &[values::Found], wants_percent: bool) -> Option<f64> {
    use values::Written;
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
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
mod tests {
    use super::*;
    use serde_json::json;

    /// One reading of `src`, as `tidy` makes it.
    fn dec(src: &str) -> ArgDecoder<'static> {
        static OPTS: std::sync::LazyLock<ArgOptions> = std::sync::LazyLock::new(ArgOptions::default);
        ArgDecoder::new(src, &OPTS)
    }

    fn prop(name: &str, ty: Ty, description: &str) -> Prop {
        Prop {
            name: name.into(),
            ty,
            description: description.into(),
            required: true,
            default: None,
        }
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
