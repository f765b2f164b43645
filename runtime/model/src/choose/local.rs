//! The constrained chooser for local models, run on the inference thread.

use std::time::Instant;

use serde_json::{Value, json};

use super::args::{ArgDecoder, ArgMode};
use super::cursor::Cursor;
use super::schema::{Prop, Ty, props, with_stated_forms};
use super::{ChooseOptions, ChooseRequest, Decision, ToolPrompt, free, lexical};
use crate::chat::{Message, Role, ToolCall, ToolDef};
use crate::error::{ModelError, Result};
use crate::llama::{Logits, SeqId, Session};
use crate::template::{CallSyntax, py_json};
use llama_cpp_2::token::LlamaToken;

/// The pseudo-tool the model names when no function fits.
const NONE: &str = "none";

/// One line per tool: `name(arg: type, opt?: type): description`.
pub fn signature(t: &ToolDef) -> String {
    line(t, arg_sig)
}

/// `name(arg, arg): description`: a signature without types and defaults.
fn brief(t: &ToolDef) -> String {
    line(t, |p| p.name.clone())
}

/// `name(args): description`, each argument written by `arg`.
fn line(t: &ToolDef, arg: impl Fn(&Prop) -> String) -> String {
    let args: Vec<String> = props(&t.parameters).iter().map(arg).collect();
    format!("{}({}): {}", t.name, args.join(", "), t.description.trim())
}

fn arg_sig(p: &Prop) -> String {
    let opt = if p.required { "" } else { "?" };
    let mut s = format!("{}{opt}: {}", p.name, p.ty.label());
    if let Some(d) = &p.default {
        s.push_str(&format!(" = {}", py_json(d)));
    }
    s
}

/// System text describing the tools in the compact form tiny models read best, with the
/// call syntax the chooser forces. With `rules_first` the instructions come before the list,
/// where they are a prefix cached across requests (for Qwen2.5-Coder a fifth of the prompt
/// evaluated per BFCL item); on its own that made Qwen call less often when it should
/// (multiple 69% -> 62% on tuning items), which the vote asked apart (see
/// [`ChooseOptions::verify_weight`]) makes up for. Without that vote, they come last.
pub fn tools_text(tools: &[ToolDef], call: &CallSyntax, rules_first: bool) -> String {
    let example = call.render("<function name>", &json!({"<argument>": "<value>"}));
    let none = call.render(NONE, &json!({}));
    let rules = format!(
        "To call a function, reply with only {}. If none of the functions fits the request, reply with {}.",
        example.trim(),
        none.trim()
    );
    let mut s = String::from("You are a helpful assistant. ");
    if rules_first {
        s.push_str(&rules);
        s.push('\n');
    }
    s.push_str("You can call these functions:\n");
    for t in tools {
        s.push_str("- ");
        s.push_str(&signature(t));
        s.push('\n');
        for p in props(&t.parameters) {
            if !p.description.is_empty() {
                s.push_str(&format!("    {}: {}\n", p.name, p.description.trim()));
            }
        }
    }
    if !rules_first {
        s.push_str(&rules);
    }
    s
}

/// The prompt that shows `tools` to the model: the chat template's own tool section (with
/// the "no function" reply added to the system message) or the compact list.
fn tools_prompt(
    s: &Session<'_>,
    messages: &[Message],
    tools: &[ToolDef],
    style: ToolPrompt,
    rules_first: bool,
) -> Result<String> {
    let template = &s.m.template;
    let call = &template.call;
    let native = template.has_tools && call.native && style == ToolPrompt::Native;
    if !native {
        let msgs = with_tools_system(messages, &tools_text(tools, call, rules_first));
        return template.render(&msgs, &[], None);
    }
    let none = call.render(NONE, &json!({}));
    let rule = format!("If none of the functions fits the request, reply with {}.", none.trim());
    let has_system = messages.first().is_some_and(|m| m.role == Role::System);
    let text = if has_system {
        rule
    } else {
        format!("You are a helpful assistant. {rule}")
    };
    let msgs = with_tools_system(messages, &text);
    template.render(&msgs, tools, None)
}

/// The text of the last user message (where argument values come from).
fn user_text(messages: &[Message]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.clone())
        .unwrap_or_default()
}

/// The conversation with the tools described in its system message.
fn with_tools_system(messages: &[Message], text: &str) -> Vec<Message> {
    let mut msgs = messages.to_vec();
    match msgs.first_mut() {
        Some(m) if m.role == Role::System => m.content = format!("{}\n\n{text}", m.content),
        _ => msgs.insert(0, Message::system(text)),
    }
    msgs
}

/// What the chooser measured before deciding (kept in the trace).
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// Word overlap of the request with each tool.
    pub lexical: Vec<f32>,
    /// Per-token gain in the request's log-likelihood from showing the tools.
    pub pmi: Option<f32>,
    /// Log-probability that the answer starts with a call.
    pub lp_call: f32,
    /// Log-probability of each tool's name, given a call.
    pub names: Vec<f32>,
    /// Log-probability of naming no function, given a call.
    pub none: f32,
}

/// Evaluate the prompt into a cache slot; when the request appears in it, also measure how
/// much the tool descriptions raise the request's likelihood (pointwise mutual information).
fn prefill(s: &mut Session<'_>, prompt: &str, question: &str, pmi: bool) -> Result<(SeqId, Logits, Option<f32>)> {
    let at = if !pmi || question.trim().is_empty() {
        None
    } else {
        prompt.rfind(question)
    };
    let Some(at) = at else {
        let toks = s.m.tokenize(prompt);
        let (seq, logits) = s.start(&toks)?;
        return Ok((seq, logits, None));
    };
    let prefix = s.m.tokenize(&prompt[..at]);
    let q = s.m.tokenize(question);
    let mut rest = q.clone();
    rest.extend(s.m.tokenize(&prompt[at + question.len()..]));
    let (seq, logits) = s.start(&prefix)?;
    let with_tools: f32 = s
        .score(seq, &logits, &[q])?
        .into_iter()
        .next()
        .unwrap_or_default()
        .iter()
        .sum();
    s.extend(seq, &rest)?;
    let logits = s.last_logits()?;
    let plain = question_logprob(s, "You are a helpful assistant.", question, seq)?;
    let n = plain.len().max(1) as f32;
    let pmi = (with_tools - plain.iter().sum::<f32>()) / n;
    Ok((seq, logits, Some(pmi)))
}

/// Choose a call with likelihood scoring and constrained decoding.
pub fn choose(s: &mut Session<'_>, req: &ChooseRequest) -> Result<Decision> {
    let t0 = Instant::now();
    let opts = &req.options;
    let mut trace = Vec::new();
    let question = user_text(&req.messages);
    // Shortlist: a tiny model reads a short list better than a long one.
    let mut tools: Vec<ToolDef> = req.tools.clone();
    if tools.len() > opts.shortlist.max(1) {
        let keep = lexical::shortlist(&question, &tools, opts.shortlist.max(1));
        tools = keep.into_iter().map(|i| req.tools[i].clone()).collect();
        trace.push(format!(
            "shortlist: {}",
            tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    if tools.is_empty() {
        return Ok(Decision::none(s.take_usage(), vec!["no tools offered".into()]));
    }
    let mut lexical: Vec<f32> = tools.iter().map(|t| lexical::overlap(&question, t)).collect();
    let mut lex_max = lexical.iter().copied().fold(0.0, f32::max);
    if lex_max <= 0.0 {
        // No word in common; a kind of thing in common ("euro" and a currency tool) will do.
        lexical = tools.iter().map(|t| lexical::kind_overlap(&question, t)).collect();
        lex_max = lexical.iter().copied().fold(0.0, f32::max);
        if lex_max > 0.0 {
            trace.push("no word in common with the tools; kinds of things in common".into());
        }
    }
    if opts.allow_none && lex_max <= 0.0 {
        // Not one content word of the request appears in any tool: nothing to call.
        trace.push(format!(
            "no tool: the request shares no word with the tools ({:.0} ms)",
            t0.elapsed().as_secs_f64() * 1e3
        ));
        return Ok(Decision::none(s.take_usage(), trace));
    }
    // A model trained on tool calls says itself when no function fits (see
    // `ChooseOptions::none_margin`); for others the likelihood gain is measured when word
    // overlap leaves the decision open.
    let informed = opts.trained_on_tools.unwrap_or(s.m.template.has_tools);
    let want_pmi = opts.allow_none && !informed && lex_max + opts.call_bias < opts.sure_overlap;
    let call = s.m.template.call.clone();
    let rules_first = informed && opts.verify_weight > 0.0;
    let prompt = tools_prompt(s, &req.messages, &tools, opts.prompt, rules_first)?;
    let (seq, logits, pmi) = prefill(s, &prompt, &question, want_pmi)?;
    if req.cancel.is_cancelled() {
        return Err(ModelError::Cancelled);
    }
    // Whether to call, and which tool: every name scored in one batch, in full (the call's
    // opening included, so the scores are comparable across tools and with answering).
    let head = s.m.tokenize(&call.before_name);
    let mut cands = vec![head.clone()];
    for name in std::iter::once(NONE).chain(tools.iter().map(|t| t.name.as_str())) {
        // Scored through the first token past the name: the one that says the name ends.
        let named = format!("{}{name}", call.before_name);
        let text = format!("{named}{}", call.before_args.trim_end());
        cands.push(tokens_through(s, &text, named.len()));
    }
    let lps = s.score(seq, &logits, &cands)?;
    let lp_call: f32 = lps[0].iter().sum();
    let sig = Signals {
        lexical,
        pmi,
        lp_call,
        none: lps[1].iter().sum::<f32>() - lp_call,
        names: lps[2..].iter().map(|l| l.iter().sum::<f32>() - lp_call).collect(),
    };
    let alts: Vec<String> = tools
        .iter()
        .map(|t| format!("{}{}{}", call.before_name, t.name, call.before_args))
        .collect();
    let mut cur = Cursor::new(s, seq, logits);
    let best = pick_tool(&sig, opts.overlap_weight);
    trace.push(format!(
        "signals: pmi {:.3}, call {:.2}, none {:.2}; tools: {}",
        sig.pmi.unwrap_or(f32::NAN),
        sig.lp_call,
        sig.none,
        tools
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{} name {:.2} lex {:.2}", t.name, sig.names[i], sig.lexical[i]))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let margin = sig.names.get(best).copied().unwrap_or(f32::NEG_INFINITY) - sig.none;
    if opts.allow_none && !relevant(&sig, best, opts) {
        let usage = cur.s.take_usage();
        trace.push(format!("no tool ({:.0} ms)", t0.elapsed().as_secs_f64() * 1e3));
        return Ok(Decision::none(usage, trace));
    }
    // The chosen name joins the sequence now, while its tokens are still kept from the
    // scoring batch (the question asked apart evaluates another prompt, which drops them).
    cur.write_scored(best + 2, &alts[best])?;
    if opts.allow_none && informed {
        // Two votes of the model: naming the tool rather than no function, in the
        // conversation; and saying the tool does what the request asks, asked apart, with
        // the tool's word overlap with the request beside it. Once
        // tool results follow the request, whether to call again depends on what they said,
        // which only the conversation shows: the first vote decides alone.
        let mut score = margin;
        let mut apart = String::new();
        let fresh = req.messages.last().is_some_and(|m| m.role == Role::User);
        if opts.verify_weight > 0.0 && fresh {
            let yes = ask_apart(cur.s, &tools[best], &question, cur.seq)?;
            if req.cancel.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            let overlap = sig.lexical.get(best).copied().unwrap_or(0.0);
            score += opts.verify_weight * (yes - opts.verify_offset) + opts.overlap_vote_weight * overlap;
            apart = format!(", asked apart yes {yes:.2}, word overlap {overlap:.2} (score {score:.2})");
        }
        trace.push(format!(
            "`{}` named over no function by {margin:.2}{apart}",
            tools[best].name
        ));
        if score < opts.none_margin {
            let usage = cur.s.take_usage();
            trace.push(format!("no tool ({:.0} ms)", t0.elapsed().as_secs_f64() * 1e3));
            return Ok(Decision::none(usage, trace));
        }
    }
    let tool = &tools[best];
    let params = with_stated_forms(&tool.parameters);
    let generate = match opts.args.mode {
        ArgMode::Auto => informed,
        ArgMode::Decode => false,
        ArgMode::Generate => true,
    };
    let mut generated = None;
    if generate {
        let mark = cur.mark();
        let mut stats = free::GenStats::default();
        let got = free::arguments(&mut cur, &params, &question, &opts.args, &mut stats);
        match got {
            Ok(Some(mut v)) if super::validate_args(&tool.parameters, &v).is_ok() => {
                trace.push(format!("arguments generated: {v} ({stats})"));
                let before = v.clone();
                trace.extend(free::tidy(&mut v, &props(&params), &question, &opts.args));
                if super::validate_args(&tool.parameters, &v).is_err() {
                    v = before;
                }
                generated = Some(v);
            }
            Ok(v) => {
                trace.push(format!("generated arguments unusable ({v:?}): decoding instead"));
                cur.rollback(mark)?;
            }
            Err(e @ ModelError::Grammar(_)) => {
                trace.push(format!("no grammar for the arguments ({e}): decoding instead"));
                cur.rollback(mark)?;
            }
            // Cancellation, a full context, a failed decode: not a matter of the grammar.
            Err(e) => return Err(e),
        }
    }
    let args = match generated {
        Some(v) => v,
        None => {
            cur.force("{");
            let ps = props(&params);
            let mut dec = ArgDecoder::new(&question, &opts.args);
            let args = if ps.is_empty() && !matches!(Ty::of(&params), Ty::Object(_)) {
                cur.force("}");
                Value::Object(Default::default())
            } else {
                Value::Object(dec.object(&mut cur, &ps)?)
            };
            trace.append(&mut dec.trace);
            args
        }
    };
    let usage = cur.s.take_usage();
    trace.push(format!("decided in {:.0} ms", t0.elapsed().as_secs_f64() * 1e3));
    Ok(Decision {
        call: Some(ToolCall {
            id: None,
            name: tool.name.clone(),
            arguments: args,
        }),
        text: None,
        usage,
        trace,
    })
}

/// The tokens of `text` up to the first one that reaches past its first `len` bytes.
fn tokens_through(s: &Session<'_>, text: &str, len: usize) -> Vec<LlamaToken> {
    let mut out = Vec::new();
    let mut at = 0;
    for t in s.m.tokenize(text) {
        out.push(t);
        at += s.m.piece(t).len();
        if at > len {
            break;
        }
    }
    out
}

/// The tool to call if any: the one whose description shares most words with the request,
/// the model's likelihood of its name deciding between close ones.
pub fn pick_tool(sig: &Signals, overlap_weight: f32) -> usize {
    let score = |i: usize| sig.names[i] + overlap_weight * sig.lexical.get(i).copied().unwrap_or(0.0);
    (0..sig.names.len())
        .max_by(|&a, &b| score(a).total_cmp(&score(b)))
        .unwrap_or(0)
}

/// Whether the request calls for the tool `best` at all: its word overlap with the request,
/// plus (when measured) how much the tool descriptions raise the request's likelihood.
pub fn relevant(sig: &Signals, best: usize, opts: &ChooseOptions) -> bool {
    let lex = sig.lexical.get(best).copied().unwrap_or(0.0) + opts.call_bias;
    if lex <= 0.0 {
        return false;
    }
    match sig.pmi {
        Some(pmi) if lex < opts.sure_overlap => lex + pmi >= opts.relevance,
        _ => true,
    }
}

/// Asked apart from the conversation and the other tools (the function's signature and the
/// request, nothing else), how much more likely the model answers "yes" than "no" to
/// whether `tool` does what `request` asks: log-odds, in nats. A small model judges this
/// better on its own than inside the conversation, where the tool list and the call
/// instructions pull it towards calling; the fixed instruction comes first, so its tokens
/// stay cached from one request to the next.
fn ask_apart(s: &mut Session<'_>, tool: &ToolDef, request: &str, keep: SeqId) -> Result<f32> {
    let ask = format!(
        "Answer yes or no: can the function below, called with suitable arguments, do what the request asks?\n\nFunction: {}\n\nRequest: {}",
        brief(tool),
        request.trim()
    );
    let msgs = vec![Message::system("You are a helpful assistant."), Message::user(ask)];
    let prompt = s.m.template.render(&msgs, &[], None)?;
    let toks = s.m.tokenize(&prompt);
    let (seq, logits) = s.start_avoiding(&toks, &[keep])?;
    let words: Vec<Vec<LlamaToken>> = ["Yes", "yes", "No", "no"].iter().map(|w| s.m.tokenize(w)).collect();
    let lps = s.score(seq, &logits, &words)?;
    let lp = |i: usize| lps.get(i).map_or(f32::NEG_INFINITY, |l| l.iter().sum::<f32>());
    let odds = log_add(lp(0), lp(1)) - log_add(lp(2), lp(3));
    // Neither answer possible at all: no vote either way.
    Ok(if odds.is_nan() { 0.0 } else { odds })
}

/// `ln(e^a + e^b)` without leaving the float range.
fn log_add(a: f32, b: f32) -> f32 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if hi == f32::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// Log-probabilities of the tokens of `question` as the user's message after `system`.
fn question_logprob(s: &mut Session<'_>, system: &str, question: &str, keep: SeqId) -> Result<Vec<f32>> {
    let msgs = vec![Message::system(system), Message::user(question)];
    let prompt = s.m.template.render(&msgs, &[], None)?;
    let at = prompt
        .rfind(question)
        .ok_or_else(|| ModelError::Template("the question is not in the rendered prompt".into()))?;
    let prefix = s.m.tokenize(&prompt[..at]);
    let (seq, logits) = s.start_avoiding(&prefix, &[keep])?;
    let q = s.m.tokenize(question);
    let r = s.score(seq, &logits, &[q])?;
    Ok(r.into_iter().next().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::log_add;

    #[test]
    fn log_add_sums_probabilities_in_log_space() {
        let (a, b) = (0.2f32.ln(), 0.3f32.ln());
        assert!((log_add(a, b) - 0.5f32.ln()).abs() < 1e-6);
        assert!((log_add(b, a) - 0.5f32.ln()).abs() < 1e-6);
        // Far below the float range of probabilities, still exact in log space.
        assert!((log_add(-200.0, -200.0) - (-200.0 + 2f32.ln())).abs() < 1e-4);
        assert_eq!(log_add(-1.0, f32::NEG_INFINITY), -1.0);
        assert_eq!(log_add(f32::NEG_INFINITY, f32::NEG_INFINITY), f32::NEG_INFINITY);
    }
}
