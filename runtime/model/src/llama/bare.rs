//! A bare llama-cpp-2 decode loop: the yardstick `stepwise bench model` compares the agent
//! path against. One context, one sequence, greedy sampling, nothing else.

use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use serde::Serialize;

use super::{LoadedModel, backend};
use crate::error::{ModelError, Result};

/// What a bare decode loop measured.
#[derive(Debug, Clone, Serialize)]
pub struct BareRun {
    pub prompt_tokens: usize,
    pub generated: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
}

impl BareRun {
    /// Generated tokens per second (prompt evaluation excluded).
    pub fn tokens_per_s(&self) -> f64 {
        if self.decode_ms > 0.0 {
            self.generated as f64 * 1e3 / self.decode_ms
        } else {
            0.0
        }
    }
}

fn inf(e: impl std::fmt::Display) -> ModelError {
    ModelError::Inference(e.to_string())
}

impl LoadedModel {
    /// The tokens of the chat prompt for `messages`, as the agent path renders it.
    pub fn prompt_tokens(&self, messages: &[crate::chat::Message]) -> Result<Vec<LlamaToken>> {
        let prompt = self.template.render(messages, &[], None)?;
        Ok(self.tokenize(&prompt))
    }
}

/// Evaluate `prompt` in a fresh context with `threads` threads, then generate exactly `n`
/// tokens greedily (end-of-generation tokens included), one decode per token.
pub fn bare_decode(m: &LoadedModel, prompt: &[LlamaToken], n: usize, threads: usize, ctx: u32) -> Result<BareRun> {
    let threads = i32::try_from(threads.max(1)).unwrap_or(1);
    let params = LlamaContextParams::default()
        .with_n_ctx(std::num::NonZeroU32::new(ctx.max(256)))
        .with_n_batch(1024)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = m.model.new_context(backend()?, params).map_err(inf)?;
    let mut batch = LlamaBatch::new(prompt.len().max(1), 1);
    let t0 = Instant::now();
    for (i, &t) in prompt.iter().enumerate() {
        batch.add(t, i as i32, &[0], i + 1 == prompt.len()).map_err(inf)?;
    }
    ctx.decode(&mut batch).map_err(inf)?;
    let prefill_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut sampler = LlamaSampler::greedy();
    let mut pos = prompt.len() as i32;
    let t1 = Instant::now();
    for i in 0..n {
        let t = sampler.sample(&ctx, batch.n_tokens() - 1);
        // Like the agent path, the last sampled token is not evaluated.
        if i + 1 < n {
            batch.clear();
            batch.add(t, pos, &[0], true).map_err(inf)?;
            pos += 1;
            ctx.decode(&mut batch).map_err(inf)?;
        }
    }
    Ok(BareRun {
        prompt_tokens: prompt.len(),
        generated: n,
        prefill_ms,
        decode_ms: t1.elapsed().as_secs_f64() * 1e3,
    })
}
