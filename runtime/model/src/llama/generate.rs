//! Plain chat generation on the inference thread: free text, or JSON constrained by a
//! grammar derived from a JSON Schema.

use std::time::Instant;

use llama_cpp_2::sampling::LlamaSampler;

use super::session::Session;
use crate::chat::{ChatRequest, ChatResponse, FinishReason, ResponseFormat, ToolCall};
use crate::error::{ModelError, Result};
use crate::template::CallSyntax;

/// Turns token bytes into text, holding back incomplete UTF-8 sequences.
#[derive(Default)]
pub(crate) struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Add bytes; returns the text that is complete so far.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_some() => {
                // Invalid bytes, not just an incomplete tail: replace them.
                let s = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                return s;
            }
            Err(e) => e.valid_up_to(),
        };
        let rest = self.pending.split_off(valid);
        String::from_utf8(std::mem::replace(&mut self.pending, rest)).unwrap_or_default()
    }
}

/// A GBNF grammar for JSON values conforming to `schema`.
pub fn schema_grammar(schema: &serde_json::Value) -> Result<String> {
    llama_cpp_2::json_schema_to_grammar(&schema.to_string())
        .map_err(|e| ModelError::Grammar(format!("cannot turn the JSON Schema into a grammar: {e}")))
}

/// Build the sampler chain of a request.
fn sampler(s: &Session<'_>, req: &ChatRequest) -> Result<LlamaSampler> {
    let mut chain = Vec::new();
    if let ResponseFormat::JsonSchema(schema) = &req.format {
        let g = schema_grammar(schema)?;
        chain.push(
            LlamaSampler::grammar(&s.m.model, &g, "root")
                .map_err(|e| ModelError::Grammar(format!("llama.cpp rejected the grammar: {e}")))?,
        );
    }
    if req.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        chain.push(LlamaSampler::top_k(40));
        chain.push(LlamaSampler::top_p(0.95, 1));
        chain.push(LlamaSampler::temp(req.temperature));
        chain.push(LlamaSampler::dist(req.seed));
    }
    Ok(LlamaSampler::chain_simple(chain))
}

/// Complete `req`, streaming text pieces to `on_piece`.
pub fn chat(s: &mut Session<'_>, req: &ChatRequest, on_piece: &mut dyn FnMut(&str)) -> Result<ChatResponse> {
    let mut messages = req.messages.clone();
    if let ResponseFormat::JsonSchema(schema) = &req.format {
        // Show the schema to the model too: the grammar guarantees the form, not the sense.
        let note = format!(
            "Answer with only a JSON value that conforms to this JSON Schema:\n{}",
            crate::template::py_json(schema)
        );
        match messages.first_mut() {
            Some(m) if m.role == crate::chat::Role::System => m.content = format!("{}\n\n{note}", m.content),
            _ => messages.insert(0, crate::chat::Message::system(note)),
        }
    }
    let prompt = s.m.template.render(&messages, &req.tools, None)?;
    let tokens = s.m.tokenize(&prompt);
    let (seq, _) = s.start(&tokens)?;
    let mut sampler = sampler(s, req)?;
    let mut text = String::new();
    let mut utf8 = Utf8Stream::default();
    let mut finish = FinishReason::Length;
    let t0 = Instant::now();
    let mut n = 0u32;
    while n < req.max_tokens {
        if req.cancel.is_cancelled() {
            finish = FinishReason::Cancelled;
            break;
        }
        let t = s.sample(&mut sampler)?;
        n += 1;
        if s.m.is_eog(t) {
            finish = FinishReason::Stop;
            break;
        }
        let piece = utf8.push(s.m.piece(t));
        if !piece.is_empty() {
            on_piece(&piece);
            text.push_str(&piece);
        }
        if s.len(seq) + 1 >= s.n_ctx() {
            finish = FinishReason::Length;
            break;
        }
        s.eval(seq, &[t])?;
    }
    let mut usage = s.take_usage();
    usage.completion_tokens = n;
    usage.decode_ms += t0.elapsed().as_secs_f64() * 1e3;
    let mut resp = ChatResponse {
        content: text,
        tool_calls: Vec::new(),
        finish,
        usage,
    };
    if !req.tools.is_empty() {
        let calls = parse_calls(&resp.content, &s.m.template.call);
        if !calls.is_empty() {
            resp.tool_calls = calls;
            resp.content.clear();
            resp.finish = FinishReason::ToolCalls;
        }
    }
    Ok(resp)
}

/// Tool calls written in `text` with the template's call syntax (or as bare JSON objects
/// with `name` and `arguments`).
pub fn parse_calls(text: &str, syntax: &CallSyntax) -> Vec<ToolCall> {
    let mut calls = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i..];
        let mut de = serde_json::Deserializer::from_str(tail).into_iter::<serde_json::Value>();
        match de.next() {
            Some(Ok(v)) => {
                let used = de.byte_offset();
                if let (Some(name), Some(args)) = (v.get("name").and_then(|n| n.as_str()), v.get("arguments")) {
                    let arguments = match args {
                        serde_json::Value::String(s) => serde_json::from_str(s).unwrap_or(args.clone()),
                        other => other.clone(),
                    };
                    calls.push(ToolCall {
                        id: Some(format!("call_{}", calls.len())),
                        name: name.to_string(),
                        arguments,
                    });
                }
                rest = &tail[used.max(1)..];
            }
            _ => rest = &tail[1..],
        }
    }
    let _ = syntax;
    calls
}
