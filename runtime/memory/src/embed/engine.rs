//! all-MiniLM-L6-v2 on the CPU with candle: WordPiece tokenizer, 6-layer BERT, mean pooling
//! over real tokens, L2 normalization (the sentence-transformers pipeline of this model).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::{Error, Result};

/// Width of one embedding.
pub const DIM: usize = 384;
/// Longest input in word pieces (the model was trained with 256); longer text is truncated.
pub const MAX_TOKENS: usize = 256;
/// Texts embedded together in one forward pass.
const BATCH: usize = 32;

/// The loaded model. Not `Sync`-shared: one thread owns it (see [`super::Embedder`]).
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

fn model_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Model(format!("{what}: {e}"))
}

impl MiniLm {
    /// Load the model files from `dir` (`config.json`, `tokenizer.json`, `model.safetensors`).
    pub fn load(dir: &Path) -> Result<MiniLm> {
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| Error::io(dir.join(name), e));
        let config: Config = serde_json::from_slice(&read("config.json")?)
            .map_err(|e| model_err(&format!("{}/config.json", dir.display()), e))?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?)
            .map_err(|e| model_err(&format!("{}/tokenizer.json", dir.display()), e))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| model_err("tokenizer truncation", e))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DType::F32, &device)
            .map_err(|e| model_err("model.safetensors", e))?;
        let model = BertModel::load(vb, &config).map_err(|e| model_err("loading BERT weights", e))?;
        Ok(MiniLm {
            model,
            tokenizer,
            device,
        })
    }

    /// Embed texts: one unit-length vector of [`DIM`] floats per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        // Sort by length so each batch pads little; restore the order at the end.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for group in order.chunks(BATCH) {
            let batch: Vec<&str> = group.iter().map(|&i| texts[i]).collect();
            let vecs = self.embed_batch(&batch)?;
            for (&i, v) in group.iter().zip(vecs) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let enc = self
            .tokenizer
            .encode_batch_fast(texts.to_vec(), true)
            .map_err(|e| model_err("tokenizing", e))?;
        let n = enc.len();
        let len = enc.first().map(|e| e.get_ids().len()).unwrap_or(0);
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &enc {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let t = |e: candle_core::Error| model_err("inference", e);
        let ids = Tensor::from_vec(ids, (n, len), &self.device).map_err(t)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device).map_err(t)?;
        let types = ids.zeros_like().map_err(t)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask)).map_err(t)?;
        // Mean over real tokens, then L2 normalize.
        let m = mask.to_dtype(DType::F32).map_err(t)?.unsqueeze(2).map_err(t)?;
        let summed = hidden.broadcast_mul(&m).map_err(t)?.sum(1).map_err(t)?;
        let counts = m.sum(1).map_err(t)?;
        let mean = summed.broadcast_div(&counts).map_err(t)?;
        let rows: Vec<Vec<f32>> = mean.to_vec2().map_err(t)?;
        Ok(rows.into_iter().map(normalized).collect())
    }
}

/// `v` scaled to unit length (unchanged if it is all zeros).
pub fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}
