//! The BERT encoder of all-MiniLM-L6-v2 (6 layers, 384 wide, 12 heads), written out.
//!
//! Sequences of a batch are packed end to end, never padded: the dense layers run as one
//! matrix product over every token of the batch, and attention runs per sequence and head
//! over exactly its own tokens, so no work is spent on padding and no attention mask exists.

use safetensors::{Dtype, SafeTensors};

use super::kernels::{Mat, gelu, layer_norm, matmul, softmax};
use crate::error::{Error, Result};

/// Hidden width.
pub const HIDDEN: usize = 384;
const HEADS: usize = 12;
const HEAD: usize = HIDDEN / HEADS;
const FFN: usize = 1536;
const LAYERS: usize = 6;
const EPS: f32 = 1e-12;
/// Rows of the position table: the longest sequence the model takes.
pub const MAX_POSITIONS: usize = 512;

/// `y = x · w + b` with `w` stored `[in × out]`, row-major.
struct Linear {
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Linear {
    fn inputs(&self) -> usize {
        self.w.len() / self.b.len()
    }

    /// `x` holds `rows` rows; `out` is overwritten with `rows × out` values.
    fn forward(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        let (i, o) = (self.inputs(), self.b.len());
        out.clear();
        for _ in 0..rows {
            out.extend_from_slice(&self.b);
        }
        matmul(
            (rows, o, i),
            out,
            Mat::rows(0, o),
            x,
            Mat::rows(0, i),
            &self.w,
            Mat::rows(0, o),
            true,
        );
    }
}

struct Norm {
    gain: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer {
    /// Query, key and value projections side by side: `[HIDDEN × 3·HIDDEN]`.
    qkv: Linear,
    attn_out: Linear,
    attn_norm: Norm,
    up: Linear,
    down: Linear,
    out_norm: Norm,
}

/// The encoder's weights.
pub struct Bert {
    words: Vec<f32>,
    positions: Vec<f32>,
    token_type: Vec<f32>,
    norm: Norm,
    layers: Vec<Layer>,
}

/// Scratch buffers of one forward pass, reused across layers.
#[derive(Default)]
struct Scratch {
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
    ffn: Vec<f32>,
    scores: Vec<f32>,
}

fn err(what: impl std::fmt::Display) -> Error {
    Error::Model(format!("model.safetensors: {what}"))
}

/// Weights by name, as f32 with their shape.
struct Weights<'a>(SafeTensors<'a>);

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self.0.tensor(name).map_err(|e| err(format!("{name}: {e}")))?;
        if t.dtype() != Dtype::F32 || t.shape() != shape {
            return Err(err(format!(
                "{name} is {:?} {:?}, expected F32 {shape:?}",
                t.dtype(),
                t.shape()
            )));
        }
        Ok(t.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// A PyTorch linear layer (`weight` is `[out × in]`), transposed to `[in × out]`.
    fn linear(&self, prefix: &str, inputs: usize, outputs: usize) -> Result<Linear> {
        let w = self.get(&format!("{prefix}.weight"), &[outputs, inputs])?;
        Ok(Linear {
            w: transpose(&w, outputs, inputs),
            b: self.get(&format!("{prefix}.bias"), &[outputs])?,
        })
    }

    fn norm(&self, prefix: &str) -> Result<Norm> {
        Ok(Norm {
            gain: self.get(&format!("{prefix}.weight"), &[HIDDEN])?,
            bias: self.get(&format!("{prefix}.bias"), &[HIDDEN])?,
        })
    }
}

/// `[rows × cols]` row-major to `[cols × rows]` row-major.
fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; a.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = a[r * cols + c];
        }
    }
    t
}

impl Bert {
    /// Read the weights from the bytes of `model.safetensors`.
    pub fn load(bytes: &[u8], vocab: usize) -> Result<Bert> {
        let w = Weights(SafeTensors::deserialize(bytes).map_err(err)?);
        let mut layers = Vec::with_capacity(LAYERS);
        for i in 0..LAYERS {
            let p = format!("encoder.layer.{i}");
            let (q, k, v) = (
                w.linear(&format!("{p}.attention.self.query"), HIDDEN, HIDDEN)?,
                w.linear(&format!("{p}.attention.self.key"), HIDDEN, HIDDEN)?,
                w.linear(&format!("{p}.attention.self.value"), HIDDEN, HIDDEN)?,
            );
            // Interleave the three [HIDDEN × HIDDEN] matrices row by row into [HIDDEN × 3·HIDDEN].
            let mut qkv = Vec::with_capacity(3 * HIDDEN * HIDDEN);
            for r in 0..HIDDEN {
                for m in [&q, &k, &v] {
                    qkv.extend_from_slice(&m.w[r * HIDDEN..(r + 1) * HIDDEN]);
                }
            }
            layers.push(Layer {
                qkv: Linear {
                    w: qkv,
                    b: [q.b, k.b, v.b].concat(),
                },
                attn_out: w.linear(&format!("{p}.attention.output.dense"), HIDDEN, HIDDEN)?,
                attn_norm: w.norm(&format!("{p}.attention.output.LayerNorm"))?,
                up: w.linear(&format!("{p}.intermediate.dense"), HIDDEN, FFN)?,
                down: w.linear(&format!("{p}.output.dense"), FFN, HIDDEN)?,
                out_norm: w.norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Bert {
            words: w.get("embeddings.word_embeddings.weight", &[vocab, HIDDEN])?,
            positions: w.get("embeddings.position_embeddings.weight", &[MAX_POSITIONS, HIDDEN])?,
            token_type: w.get("embeddings.token_type_embeddings.weight", &[2, HIDDEN])?,
            norm: w.norm("embeddings.LayerNorm")?,
            layers,
        })
    }

    /// Mean-pooled last hidden states, one `HIDDEN`-wide vector per sequence of token ids.
    /// Every id must be below the vocabulary size and every sequence at most
    /// [`MAX_POSITIONS`] long (the tokenizer's truncation guarantees both).
    pub fn pooled(&self, seqs: &[&[u32]]) -> Vec<Vec<f32>> {
        let spans: Vec<(usize, usize)> = seqs
            .iter()
            .scan(0, |start, s| {
                let span = (*start, s.len());
                *start += s.len();
                Some(span)
            })
            .collect();
        let tokens: usize = seqs.iter().map(|s| s.len()).sum();
        let mut x = Vec::with_capacity(tokens * HIDDEN);
        for s in seqs {
            for (p, &id) in s.iter().enumerate() {
                let (w, pos) = (id as usize * HIDDEN, p * HIDDEN);
                let word = &self.words[w..w + HIDDEN];
                let position = &self.positions[pos..pos + HIDDEN];
                x.extend((0..HIDDEN).map(|i| word[i] + position[i] + self.token_type[i]));
            }
        }
        layer_norm(&mut x, &self.norm.gain, &self.norm.bias, EPS);
        let mut s = Scratch::default();
        for layer in &self.layers {
            self.layer(layer, &mut x, tokens, &spans, &mut s);
        }
        spans
            .iter()
            .map(|&(start, len)| {
                let mut mean = vec![0f32; HIDDEN];
                for row in x[start * HIDDEN..(start + len) * HIDDEN].chunks_exact(HIDDEN) {
                    mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
                }
                mean.iter_mut().for_each(|m| *m /= len.max(1) as f32);
                mean
            })
            .collect()
    }

    fn layer(&self, l: &Layer, x: &mut Vec<f32>, tokens: usize, spans: &[(usize, usize)], s: &mut Scratch) {
        const QKV: usize = 3 * HIDDEN;
        l.qkv.forward(x, tokens, &mut s.qkv);
        s.ctx.clear();
        s.ctx.resize(tokens * HIDDEN, 0.0);
        let scale = 1.0 / (HEAD as f32).sqrt();
        for &(start, len) in spans {
            s.scores.resize(len * len, 0.0);
            for h in 0..HEADS {
                let q = Mat::rows(start * QKV + h * HEAD, QKV);
                // Keys read transposed: element (d, j) is key j's component d.
                let k = Mat {
                    off: start * QKV + HIDDEN + h * HEAD,
                    rs: 1,
                    cs: QKV,
                };
                let v = Mat::rows(start * QKV + 2 * HIDDEN + h * HEAD, QKV);
                matmul(
                    (len, len, HEAD),
                    &mut s.scores,
                    Mat::rows(0, len),
                    &s.qkv,
                    q,
                    &s.qkv,
                    k,
                    false,
                );
                for row in s.scores.chunks_exact_mut(len) {
                    softmax(row, scale);
                }
                let out = Mat::rows(start * HIDDEN + h * HEAD, HIDDEN);
                matmul(
                    (len, HEAD, len),
                    &mut s.ctx,
                    out,
                    &s.scores,
                    Mat::rows(0, len),
                    &s.qkv,
                    v,
                    false,
                );
            }
        }
        l.attn_out.forward(&s.ctx, tokens, &mut s.tmp);
        s.tmp.iter_mut().zip(x.iter()).for_each(|(t, r)| *t += r);
        layer_norm(&mut s.tmp, &l.attn_norm.gain, &l.attn_norm.bias, EPS);
        std::mem::swap(x, &mut s.tmp);
        l.up.forward(x, tokens, &mut s.ffn);
        gelu(&mut s.ffn);
        l.down.forward(&s.ffn, tokens, &mut s.tmp);
        s.tmp.iter_mut().zip(x.iter()).for_each(|(t, r)| *t += r);
        layer_norm(&mut s.tmp, &l.out_norm.gain, &l.out_norm.bias, EPS);
        std::mem::swap(x, &mut s.tmp);
    }
}
