//! all-MiniLM-L6-v2 on the CPU: WordPiece tokenizer, the 6-layer BERT encoder of [`super::bert`],
//! mean pooling over the tokens, L2 normalization (the sentence-transformers pipeline).
//!
//! Why a hand-written encoder and not candle or llama.cpp: measured on this 2-core machine,
//! candle 0.11's `BertModel` gave 56 short sentences/s wall (76 per CPU-second) with its two
//! threads and 106/s (157 per CPU-second) with one: its spin-waiting thread pool burns a core
//! whenever the other one is busy, a padded batch pays for the padding and an attention mask,
//! and its exact GELU calls libm's `erf` per element (16 % of the time). This encoder packs a
//! batch without padding, runs single-threaded `gemm` (the same micro-kernels candle uses) on
//! each physical core over its own share of the sentences, and computes GELU and softmax with
//! vectorizable polynomial `exp`/`erf`. Its vectors match candle's to a cosine above 0.9999
//! (tests/fixtures/minilm_reference.jsonl). llama.cpp would need a safetensors-to-GGUF
//! converter written here and buys nothing on a model this small; it was not pursued. Dropping
//! candle also removes three heavy crates from the build.

use std::path::Path;

use tokenizers::{Tokenizer, TruncationParams};

use super::bert::{Bert, HIDDEN};
use crate::error::{Error, Result};

/// Width of one embedding.
pub const DIM: usize = HIDDEN;
/// Longest input in word pieces (the model was trained with 256); longer text is truncated.
pub const MAX_TOKENS: usize = 256;
/// Tokens run through the encoder in one pass per thread (bounds the scratch memory to
/// about 30 MB per thread).
const PASS_TOKENS: usize = 2048;

/// The loaded model. Owned by one thread (see [`super::Embedder`]), which fans each call out
/// over [`MiniLm::threads`] scoped threads.
pub struct MiniLm {
    bert: Bert,
    tokenizer: Tokenizer,
    threads: usize,
}

fn model_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Model(format!("{what}: {e}"))
}

impl MiniLm {
    /// Load the model files from `dir` (`config.json`, `tokenizer.json`, `model.safetensors`).
    pub fn load(dir: &Path) -> Result<MiniLm> {
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| Error::io(dir.join(name), e));
        let config: serde_json::Value = serde_json::from_slice(&read("config.json")?)
            .map_err(|e| model_err(&format!("{}/config.json", dir.display()), e))?;
        let vocab = config["vocab_size"].as_u64().unwrap_or(30_522) as usize;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?)
            .map_err(|e| model_err(&format!("{}/tokenizer.json", dir.display()), e))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| model_err("tokenizer truncation", e))?;
        tokenizer.with_padding(None);
        if tokenizer.get_vocab_size(true) > vocab {
            return Err(model_err(
                &format!("{}/tokenizer.json", dir.display()),
                format!(
                    "{} word pieces but the model has {vocab}",
                    tokenizer.get_vocab_size(true)
                ),
            ));
        }
        let bert = Bert::load(&read("model.safetensors")?, vocab)?;
        Ok(MiniLm {
            bert,
            tokenizer,
            threads: default_threads(),
        })
    }

    /// Threads one call uses (the physical cores).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Use `n` threads per call (at least one).
    pub fn set_threads(&mut self, n: usize) {
        self.threads = n.max(1);
    }

    /// Embed texts: one unit-length vector of [`DIM`] floats per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let enc = self
            .tokenizer
            .encode_batch_fast(texts.to_vec(), true)
            .map_err(|e| model_err("tokenizing", e))?;
        let ids: Vec<&[u32]> = enc.iter().map(|e| e.get_ids()).collect();
        // Longest first to the least loaded thread, so the threads finish together.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let threads = self.threads.min(ids.len()).max(1);
        let mut shares: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); threads];
        for i in order {
            if let Some(s) = shares.iter_mut().min_by_key(|s| s.0) {
                s.0 += ids[i].len();
                s.1.push(i);
            }
        }
        let run = |share: &[usize]| -> Vec<(usize, Vec<f32>)> {
            let mut out = Vec::with_capacity(share.len());
            let mut pass: Vec<usize> = Vec::new();
            let mut tokens = 0;
            for (n, &i) in share.iter().enumerate() {
                pass.push(i);
                tokens += ids[i].len();
                if tokens >= PASS_TOKENS || n + 1 == share.len() {
                    let seqs: Vec<&[u32]> = pass.iter().map(|&i| ids[i]).collect();
                    out.extend(pass.drain(..).zip(self.bert.pooled(&seqs).into_iter().map(normalized)));
                    tokens = 0;
                }
            }
            out
        };
        let results: Vec<(usize, Vec<f32>)> = if threads == 1 {
            run(&shares[0].1)
        } else {
            std::thread::scope(|sc| {
                let handles: Vec<_> = shares[1..].iter().map(|s| sc.spawn(|| run(&s.1))).collect();
                let mut all = run(&shares[0].1);
                for h in handles {
                    match h.join() {
                        Ok(r) => all.extend(r),
                        Err(_) => return Err(Error::Model("an embedding thread panicked".into())),
                    }
                }
                Ok(all)
            })?
        };
        let mut out = vec![Vec::new(); texts.len()];
        for (i, v) in results {
            out[i] = v;
        }
        Ok(out)
    }
}

/// Threads an embedding call uses unless told otherwise: the physical cores.
pub fn default_threads() -> usize {
    num_cpus::get_physical().max(1)
}

/// `v` scaled to unit length (unchanged if it is all zeros).
pub fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine's vectors against those candle's `BertModel` gave for the same texts
    /// (recorded before the switch), with one thread and with two.
    #[test]
    fn vectors_match_the_reference_engine() {
        let dir = std::env::var_os("STEPWISE_MINILM_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(super::super::model::default_dir);
        if let Err(e) = super::super::model::check(&dir) {
            panic!("{e}\n(this test uses the real model: run .ci/setup or `stepwise memory pull-model`)");
        }
        let mut m = MiniLm::load(&dir).unwrap();
        let refs: Vec<serde_json::Value> = include_str!("../../../../tests/fixtures/minilm_reference.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let texts: Vec<&str> = refs.iter().map(|r| r["text"].as_str().unwrap()).collect();
        for threads in [1, 2] {
            m.set_threads(threads);
            let got = m.embed(&texts).unwrap();
            for (r, g) in refs.iter().zip(&got) {
                let want: Vec<f32> = serde_json::from_value(r["embedding"].clone()).unwrap();
                let cos: f32 = want.iter().zip(g).map(|(a, b)| a * b).sum();
                assert!(cos > 0.9999, "cosine {cos} for {:?}", r["text"]);
            }
        }
    }
}
