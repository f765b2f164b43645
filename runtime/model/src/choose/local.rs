//! The constrained chooser for local models, run on the inference thread.

use std::time::Instant;

use serde_json::{Value, json};

use super::args::ArgDecoder;
use super::cursor::Cursor;
use super::schema::{Prop, Ty, props};
use super::{ChooseRequest, Decision, lexical};
use crate::chat::{Message, Role, ToolCall, ToolDef};
use crate::error::{ModelError, Result};
use crate::llama::SeqId;
use crate::llama::Session;
use crate::template::py_json;

/// One line per tool: `name(arg: type, opt?: type): description`.
pub fn signature(t: &ToolDef) -> String {
    let ps = props(&t.parameters);
    let args: Vec<String> = ps.iter().map(arg_sig).collect();
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

/// System text describing the tools, for templates without a tool section.
pub fn tools_text(tools: &[ToolDef]) -> String {
    let mut s = String::from("You are a helpful assistant. You can call these functions:\n");
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
    s.push_str(
        "To call a function, reply with only {\"name\": <function name>, \"arguments\": <JSON object>}. \
         If no function fits the request, reply in plain text.",
    );
    s
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
    let tmpl = &s.m.template;
    let call = tmpl.call.clone();
    let text = tools_text(&tools);
    let prompt = tmpl.render(&req.messages, &tools, Some(&text))?;
    let tokens = s.m.tokenize(&prompt);
    let (seq, logits) = s.start(&tokens)?;
    if req.cancel.is_cancelled() {
        return Err(ModelError::Cancelled);
    }
    let mut cur = Cursor::new(s, seq, logits);

    // Which tool, and whether to call one at all.
    let alts: Vec<String> = tools
        .iter()
        .map(|t| format!("{}{}{}", call.before_name, t.name, call.before_args))
        .collect();
    let ch = cur.score(&alts)?;
    let best = (0..alts.len())
        .max_by(|&a, &b| ch.scores[a].total_cmp(&ch.scores[b]))
        .unwrap_or(0);
    let head = cur.score(std::slice::from_ref(&call.before_name))?;
    let lp_call = head.scores[0];
    let lp_none = (1.0 - lp_call.exp()).max(1e-9).ln();
    trace.push(format!(
        "call {lp_call:.2} vs none {lp_none:.2}; tools: {}",
        tools
            .iter()
            .zip(&ch.scores)
            .map(|(t, s)| format!("{} {s:.2}", t.name))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if std::env::var_os("STEPWISE_CHOOSE_DEBUG").is_some() {
        let pmi = pmi_scores(cur.s, &question, &tools, seq)?;
        let yn = yes_no_scores(cur.s, &question, &tools, seq)?;
        eprintln!(
            "{}",
            json!({"lp_call": lp_call, "names": ch.scores, "lens": ch.lens, "pmi": pmi, "yn": yn,
                   "tools": tools.iter().map(|t| t.name.clone()).collect::<Vec<_>>()})
        );
        // pmi_scores used other cache slots: the cursor's sequence is intact.
    }
    if opts.allow_none && lp_call + opts.call_bias <= lp_none {
        let mut usage = cur.s.take_usage();
        usage.decode_ms += 0.0;
        trace.push(format!("no tool ({:.0} ms)", t0.elapsed().as_secs_f64() * 1e3));
        return Ok(Decision::none(usage, trace));
    }
    let tool = &tools[best];
    cur.force(&alts[best]);
    cur.force("{");
    let ps = props(&tool.parameters);
    let mut dec = ArgDecoder::new(&question, &opts.args);
    let args = if ps.is_empty() && !matches!(Ty::of(&tool.parameters), Ty::Object(_)) {
        cur.force("}");
        Value::Object(Default::default())
    } else {
        Value::Object(dec.object(&mut cur, &ps)?)
    };
    trace.append(&mut dec.trace);
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

/// How much each tool's description raises the likelihood of the user's words, per token:
/// `[log P(q | tool) - log P(q)] / |q|`.
pub fn pmi_scores(s: &mut Session<'_>, question: &str, tools: &[ToolDef], keep: SeqId) -> Result<Vec<f32>> {
    let base = question_logprob(s, "You are a helpful assistant.", question, keep)?;
    let mut out = Vec::new();
    for t in tools {
        let sys = format!(
            "You are a helpful assistant. You can call this function:\n{}",
            signature(t)
        );
        let lp = question_logprob(s, &sys, question, keep)?;
        let n = lp.len().max(1) as f32;
        out.push((lp.iter().sum::<f32>() - base.iter().sum::<f32>()) / n);
    }
    Ok(out)
}

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

/// Per tool: log P(yes) - log P(no) to "can this function answer the request?".
pub fn yes_no_scores(s: &mut Session<'_>, question: &str, tools: &[ToolDef], keep: SeqId) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for t in tools {
        let user = format!(
            "Function: {}\nRequest: {question}\nCan this function be called to answer the request? Answer yes or no.",
            signature(t)
        );
        let prompt = s.m.template.render(&[Message::user(user)], &[], None)?;
        let toks = s.m.tokenize(&prompt);
        let (_, logits) = s.start_avoiding(&toks, &[keep])?;
        let yes = ["Yes", "yes"]
            .iter()
            .map(|w| s.m.tokenize(w))
            .filter(|t| t.len() == 1)
            .map(|t| logits.logprob(t[0]))
            .fold(f32::NEG_INFINITY, f32::max);
        let no = ["No", "no"]
            .iter()
            .map(|w| s.m.tokenize(w))
            .filter(|t| t.len() == 1)
            .map(|t| logits.logprob(t[0]))
            .fold(f32::NEG_INFINITY, f32::max);
        out.push(yes - no);
    }
    Ok(out)
}
