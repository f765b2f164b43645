//! A llama context with prefix caching and likelihood scoring.
//!
//! The first `slots` sequence ids of the context keep recent prompts: a new prompt reuses
//! the KV cache of the slot sharing its longest prefix (system prompt and tool list across
//! turns and across requests with the same tools) and only evaluates the rest. The other
//! sequence ids are scratch space for scoring several candidate continuations in one batch.

use std::time::Instant;

use llama_cpp_2::DecodeError;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use super::{LoadedModel, LocalOptions};
use crate::chat::Usage;
use crate::error::{ModelError, Result};

/// Next-token scores at one position.
#[derive(Debug, Clone)]
pub struct Logits {
    v: Vec<f32>,
    lse: f32,
}

impl Logits {
    fn new(v: Vec<f32>) -> Self {
        let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = v.iter().map(|x| f64::from((x - max).exp())).sum();
        let lse = max + (sum.ln() as f32);
        Logits { v, lse }
    }

    /// Log-probability of `t`.
    pub fn logprob(&self, t: LlamaToken) -> f32 {
        usize::try_from(t.0)
            .ok()
            .and_then(|i| self.v.get(i))
            .map(|x| x - self.lse)
            .unwrap_or(f32::NEG_INFINITY)
    }

    /// Raw scores, indexed by token id.
    pub fn raw(&self) -> &[f32] {
        &self.v
    }

    /// The `n` best tokens, best first.
    pub fn top(&self, n: usize) -> Vec<(LlamaToken, f32)> {
        let mut idx: Vec<(usize, f32)> = self.v.iter().copied().enumerate().collect();
        let n = n.min(idx.len());
        if n == 0 {
            return Vec::new();
        }
        idx.select_nth_unstable_by(n - 1, |a, b| b.1.total_cmp(&a.1));
        idx.truncate(n);
        idx.sort_by(|a, b| b.1.total_cmp(&a.1));
        idx.into_iter()
            .map(|(i, s)| (LlamaToken::new(i as i32), s - self.lse))
            .collect()
    }

    /// The best token.
    pub fn argmax(&self) -> LlamaToken {
        let mut best = (0usize, f32::NEG_INFINITY);
        for (i, &x) in self.v.iter().enumerate() {
            if x > best.1 {
                best = (i, x);
            }
        }
        LlamaToken::new(best.0 as i32)
    }
}

struct Slot {
    tokens: Vec<LlamaToken>,
    used: u64,
}

/// Exclusive access to one llama context, on the inference thread.
pub struct Session<'m> {
    ctx: LlamaContext<'m>,
    /// The model.
    pub m: &'m LoadedModel,
    batch: LlamaBatch<'static>,
    slots: Vec<Slot>,
    scratch: Vec<i32>,
    n_ctx: usize,
    n_batch: usize,
    clock: u64,
    /// Batch index of the last evaluated token with logits, if still valid.
    last_idx: Option<i32>,
    /// Counts and timings since the last [`Session::take_usage`].
    usage: Usage,
    /// The last scoring batch, kept until the next one so the chosen candidate can join
    /// its sequence without being evaluated again ([`Session::adopt`]).
    kept: Option<Kept>,
}

/// Candidates of the last scoring batch, still in their scratch sequences.
struct Kept {
    seq: SeqId,
    /// Length of `seq` the candidates continue.
    len: usize,
    /// (candidate, scratch sequence, its evaluated tokens, index of its last node).
    cands: Vec<(usize, SeqId, Vec<LlamaToken>, usize)>,
    /// Scores after each candidate's last node (`None` elsewhere).
    logits: Vec<Option<Logits>>,
}

/// Sequence id of a cached prompt.
pub type SeqId = i32;

impl<'m> Session<'m> {
    pub(crate) fn new(ctx: LlamaContext<'m>, m: &'m LoadedModel, opts: &LocalOptions) -> Self {
        let seqs = opts.seqs.max(2) as i32;
        let n_slots = (seqs / 4).clamp(1, 4);
        Session {
            n_ctx: ctx.n_ctx() as usize,
            n_batch: ctx.n_batch() as usize,
            ctx,
            m,
            // A token may belong to every sequence (a shared prefix while scoring).
            batch: LlamaBatch::new(opts.batch.max(64) as usize, seqs),
            slots: (0..n_slots)
                .map(|_| Slot {
                    tokens: Vec::new(),
                    used: 0,
                })
                .collect(),
            scratch: (n_slots..seqs).collect(),
            clock: 0,
            last_idx: None,
            usage: Usage::default(),
            kept: None,
        }
    }

    /// Context window in tokens.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Counts and timings since the last call, then reset.
    pub fn take_usage(&mut self) -> Usage {
        std::mem::take(&mut self.usage)
    }

    /// Tokens currently in sequence `seq`.
    pub fn len(&self, seq: SeqId) -> usize {
        self.slot(seq).map(|s| s.tokens.len()).unwrap_or(0)
    }

    /// Whether sequence `seq` is empty.
    pub fn is_empty(&self, seq: SeqId) -> bool {
        self.len(seq) == 0
    }

    /// The tokens of sequence `seq`.
    pub fn tokens(&self, seq: SeqId) -> &[LlamaToken] {
        self.slot(seq).map(|s| s.tokens.as_slice()).unwrap_or(&[])
    }

    fn slot(&self, seq: SeqId) -> Option<&Slot> {
        usize::try_from(seq).ok().and_then(|i| self.slots.get(i))
    }

    fn slot_mut(&mut self, seq: SeqId) -> Result<&mut Slot> {
        usize::try_from(seq)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .ok_or_else(|| ModelError::Inference(format!("no cache slot {seq}")))
    }

    /// Put `tokens` in a cache slot, reusing the longest cached prefix, and return the slot
    /// with the logits after the last token.
    pub fn start(&mut self, tokens: &[LlamaToken]) -> Result<(SeqId, Logits)> {
        self.start_avoiding(tokens, &[])
    }

    /// [`Session::start`], leaving the slots in `avoid` untouched (a caller still using them).
    pub fn start_avoiding(&mut self, tokens: &[LlamaToken], avoid: &[SeqId]) -> Result<(SeqId, Logits)> {
        if tokens.is_empty() {
            return Err(ModelError::Inference("empty prompt".into()));
        }
        if tokens.len() >= self.n_ctx {
            return Err(ModelError::ContextFull {
                tokens: tokens.len(),
                ctx: self.n_ctx,
            });
        }
        self.clock += 1;
        let common = |s: &Slot| s.tokens.iter().zip(tokens).take_while(|(a, b)| a == b).count();
        let free = |i: &usize| !avoid.contains(&(*i as SeqId));
        let best = (0..self.slots.len())
            .filter(free)
            .max_by_key(|&i| common(&self.slots[i]));
        let (seq, keep) = match best {
            Some(i) if common(&self.slots[i]) > 0 => (i as SeqId, common(&self.slots[i])),
            // Nothing shared: take the least recently used slot.
            _ => {
                let lru = (0..self.slots.len())
                    .filter(free)
                    .min_by_key(|&i| self.slots[i].used)
                    .ok_or_else(|| ModelError::Inference("no free cache slot".into()))?;
                (lru as SeqId, 0)
            }
        };
        // The last token is always evaluated again: its logits are not kept.
        let keep = keep.min(tokens.len() - 1);
        self.truncate(seq, keep)?;
        let clock = self.clock;
        self.slot_mut(seq)?.used = clock;
        self.usage.prompt_tokens += tokens.len() as u32;
        self.usage.cached_tokens += keep as u32;
        let t0 = Instant::now();
        self.eval(seq, &tokens[keep..])?;
        self.usage.prefill_ms += t0.elapsed().as_secs_f64() * 1e3;
        Ok((seq, self.last_logits()?))
    }

    /// Drop everything after the first `len` tokens of `seq`.
    pub fn truncate(&mut self, seq: SeqId, len: usize) -> Result<()> {
        let cur = self.len(seq);
        if len < cur {
            self.ctx
                .clear_kv_cache_seq(Some(seq as u32), Some(len as u32), None)
                .map_err(|e| ModelError::Inference(e.to_string()))?;
            self.slot_mut(seq)?.tokens.truncate(len);
        }
        Ok(())
    }

    /// Forget every cached prompt.
    pub fn clear(&mut self) {
        self.kept = None;
        self.ctx.clear_kv_cache();
        for s in &mut self.slots {
            s.tokens.clear();
        }
        self.last_idx = None;
    }

    /// Evaluate `tokens` after the end of `seq`; afterwards [`Session::last_logits`] gives the
    /// scores for the next token. The time counts as decoding.
    pub fn extend(&mut self, seq: SeqId, tokens: &[LlamaToken]) -> Result<()> {
        let t0 = Instant::now();
        let r = self.eval(seq, tokens);
        self.usage.decode_ms += t0.elapsed().as_secs_f64() * 1e3;
        r
    }

    /// [`Session::extend`] without counting the time (the caller does).
    pub(crate) fn eval(&mut self, seq: SeqId, tokens: &[LlamaToken]) -> Result<()> {
        self.eval_with(seq, tokens, false)
    }

    /// Evaluate `tokens` after the end of `seq` in one batch and return the scores after each
    /// of them (for checking several guessed tokens at once). The time counts as decoding.
    pub fn extend_scored(&mut self, seq: SeqId, tokens: &[LlamaToken]) -> Result<Vec<Logits>> {
        let t0 = Instant::now();
        let r = self.eval_with(seq, tokens, true).map(|()| {
            (0..tokens.len())
                .map(|j| Logits::new(self.ctx.get_logits_ith(j as i32).to_vec()))
                .collect()
        });
        self.usage.decode_ms += t0.elapsed().as_secs_f64() * 1e3;
        r
    }

    /// Evaluate `tokens` after the end of `seq`, keeping the scores after the last one, or
    /// after `every` one (then they must fit in one batch).
    fn eval_with(&mut self, seq: SeqId, tokens: &[LlamaToken], every: bool) -> Result<()> {
        // Scratch cells left beside the prompt change how it is evaluated (slightly): free them.
        self.release_kept();
        if tokens.is_empty() {
            return Ok(());
        }
        let start = self.len(seq);
        if start + tokens.len() >= self.n_ctx {
            return Err(ModelError::ContextFull {
                tokens: start + tokens.len(),
                ctx: self.n_ctx,
            });
        }
        let cap = self.n_batch.min(self.batch_capacity());
        if every && tokens.len() > cap {
            return Err(ModelError::Inference(format!(
                "{} tokens to score do not fit in a batch of {cap}",
                tokens.len()
            )));
        }
        let chunks: Vec<&[LlamaToken]> = tokens.chunks(cap).collect();
        let n = chunks.len();
        let mut pos = start;
        for (ci, chunk) in chunks.into_iter().enumerate() {
            self.batch.clear();
            for (j, &t) in chunk.iter().enumerate() {
                let last = ci + 1 == n && j + 1 == chunk.len();
                self.batch
                    .add(t, pos as i32, &[seq], every || last)
                    .map_err(|e| ModelError::Inference(e.to_string()))?;
                pos += 1;
            }
            self.decode_batch(Some(seq))?;
            self.slot_mut(seq)?.tokens.extend_from_slice(chunk);
            self.last_idx = if ci + 1 == n {
                Some(chunk.len() as i32 - 1)
            } else {
                None
            };
        }
        Ok(())
    }

    fn batch_capacity(&self) -> usize {
        self.n_batch.max(1)
    }

    fn decode_batch(&mut self, keep: Option<SeqId>) -> Result<()> {
        match self.ctx.decode(&mut self.batch) {
            Ok(()) => Ok(()),
            Err(DecodeError::NoKvCacheSlot) => {
                // The cache is full of other prompts: drop them and try once more.
                self.release_kept();
                for i in 0..self.slots.len() {
                    let seq = i as SeqId;
                    if Some(seq) != keep && !self.slots[i].tokens.is_empty() {
                        let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
                        self.slots[i].tokens.clear();
                    }
                }
                self.ctx
                    .decode(&mut self.batch)
                    .map_err(|e| ModelError::Inference(e.to_string()))
            }
            Err(e) => Err(ModelError::Inference(e.to_string())),
        }
    }

    /// Scores for the token after the last evaluated one.
    pub fn last_logits(&self) -> Result<Logits> {
        let idx = self
            .last_idx
            .ok_or_else(|| ModelError::Inference("no logits available".into()))?;
        Ok(Logits::new(self.ctx.get_logits_ith(idx).to_vec()))
    }

    /// Sample the next token with a llama.cpp sampler chain (grammar, temperature…) from the
    /// last evaluated position. The sampler accepts the token itself.
    pub fn sample(&mut self, sampler: &mut LlamaSampler) -> Result<LlamaToken> {
        let idx = self
            .last_idx
            .ok_or_else(|| ModelError::Inference("no logits available".into()))?;
        Ok(sampler.sample(&self.ctx, idx))
    }

    /// Per-token log-probabilities of each candidate continuation of `seq`. `base` holds the
    /// scores after the last token of `seq`. See [`Session::score_after`].
    pub fn score(&mut self, seq: SeqId, base: &Logits, cands: &[Vec<LlamaToken>]) -> Result<Vec<Vec<f32>>> {
        Ok(self.score_after(seq, Some(base), &[], cands)?.1)
    }

    /// Append `prefix` to `seq` and score candidate continuations after it, in as few batches
    /// as possible: the prefix and the candidates go into one batch, the candidates on scratch
    /// sequences that share `seq`'s cache, and tokens that candidates share (a common head,
    /// `450,` and `450}`) are evaluated once, as a tree. Returns the scores after the prefix
    /// (`base` when it is empty) and each candidate's per-token log-probabilities. `base` is
    /// needed only when there is no prefix.
    pub fn score_after(
        &mut self,
        seq: SeqId,
        base: Option<&Logits>,
        prefix: &[LlamaToken],
        cands: &[Vec<LlamaToken>],
    ) -> Result<(Logits, Vec<Vec<f32>>)> {
        self.release_kept();
        let longest = cands.iter().map(Vec::len).max().unwrap_or(0);
        let end = self.len(seq) + prefix.len() + longest;
        if end >= self.n_ctx {
            return Err(ModelError::ContextFull {
                tokens: end,
                ctx: self.n_ctx,
            });
        }
        let cap = self.batch_capacity();
        let mut prefix = prefix;
        let mut base = if prefix.len() + 1 >= cap {
            self.extend(seq, prefix)?;
            prefix = &[];
            self.last_logits()?
        } else if prefix.is_empty() {
            base.cloned()
                .ok_or_else(|| ModelError::Inference("no scores to continue from".into()))?
        } else {
            // Replaced by the scores after the prefix, evaluated with the first batch.
            Logits::new(Vec::new())
        };
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); cands.len()];
        // Candidates of one token are scored by the base alone.
        let mut todo: Vec<usize> = (0..cands.len()).filter(|&c| cands[c].len() > 1).collect();
        todo.reverse();
        let mut first = true;
        while (first && !prefix.is_empty()) || !todo.is_empty() {
            let p = if first { prefix.len() } else { 0 };
            let mut tree = Tree::default();
            let mut group: Vec<(usize, SeqId)> = Vec::new();
            while let Some(&c) = todo.last() {
                if group.len() >= self.scratch.len() {
                    break;
                }
                let need = &cands[c][..cands[c].len() - 1];
                if p + tree.nodes.len() + tree.new_nodes(need) > cap {
                    if group.is_empty() && p == 0 {
                        return Err(ModelError::Inference(format!(
                            "a candidate of {} tokens does not fit in a batch of {cap}",
                            cands[c].len()
                        )));
                    }
                    break;
                }
                let s = self.scratch[group.len()];
                tree.insert(need, s);
                group.push((c, s));
                todo.pop();
            }
            let t0 = Instant::now();
            let res = self.score_batch(seq, prefix, p, &tree, &group);
            first = false;
            self.last_idx = None;
            let got = res.and_then(|()| {
                if p > 0 {
                    base = Logits::new(self.ctx.get_logits_ith(p as i32 - 1).to_vec());
                    self.slot_mut(seq)?.tokens.extend_from_slice(prefix);
                    prefix = &[];
                }
                let mut cache: Vec<Option<Logits>> = vec![None; tree.nodes.len()];
                let mut kept = Vec::new();
                for &(c, s) in &group {
                    let need = &cands[c][..cands[c].len() - 1];
                    let path = tree.path(need);
                    let mut lps = vec![base.logprob(cands[c][0])];
                    for (j, &n) in path.iter().enumerate() {
                        let lg = cache[n]
                            .get_or_insert_with(|| Logits::new(self.ctx.get_logits_ith((p + n) as i32).to_vec()));
                        lps.push(lg.logprob(cands[c][j + 1]));
                    }
                    out[c] = lps;
                    if let Some(&last) = path.last() {
                        kept.push((c, s, need.to_vec(), last));
                    }
                }
                // Only the scores after each candidate's last evaluated token are kept.
                for (i, lg) in cache.iter_mut().enumerate() {
                    if !kept.iter().any(|e: &(usize, SeqId, Vec<LlamaToken>, usize)| e.3 == i) {
                        *lg = None;
                    }
                }
                Ok((kept, cache))
            });
            let got = match got {
                // The last batch stays until the next one, for `adopt`.
                Ok((cands, logits)) if todo.is_empty() => {
                    self.kept = Some(Kept {
                        seq,
                        len: self.len(seq),
                        cands,
                        logits,
                    });
                    Ok(())
                }
                other => {
                    for &(_, s) in &group {
                        let _ = self.ctx.clear_kv_cache_seq(Some(s as u32), None, None);
                    }
                    other.map(|_| ())
                }
            };
            self.usage.decode_ms += t0.elapsed().as_secs_f64() * 1e3;
            got?;
        }
        for (c, cand) in cands.iter().enumerate() {
            if cand.len() == 1 {
                out[c] = vec![base.logprob(cand[0])];
            }
        }
        Ok((base, out))
    }

    /// Make candidate `cand` of the last [`Session::score_after`] on `seq` part of `seq`, as
    /// far as it was evaluated (all but its last token), without evaluating it again.
    /// Returns how many tokens joined and the scores after them; `None` when the batch is
    /// gone or `seq` changed since.
    pub fn adopt(&mut self, seq: SeqId, cand: usize) -> Result<Option<(usize, Logits)>> {
        let Some(mut k) = self.kept.take() else {
            return Ok(None);
        };
        let found = k.cands.iter().position(|e| e.0 == cand);
        let r = match found {
            Some(i) if k.seq == seq && self.len(seq) == k.len => {
                let (_, s, tokens, last) = &k.cands[i];
                let end = k.len + tokens.len();
                match k.logits.get_mut(*last).and_then(Option::take) {
                    Some(lg) => {
                        self.ctx
                            .copy_kv_cache_seq(*s, seq, Some(k.len as u32), Some(end as u32))
                            .map_err(|e| ModelError::Inference(e.to_string()))?;
                        self.slot_mut(seq)?.tokens.extend_from_slice(tokens);
                        Some((tokens.len(), lg))
                    }
                    None => None,
                }
            }
            _ => None,
        };
        self.kept = Some(k);
        self.release_kept();
        Ok(r)
    }

    /// Free the scratch sequences of the last scoring batch.
    fn release_kept(&mut self) {
        if let Some(k) = self.kept.take() {
            for (_, s, _, _) in &k.cands {
                let _ = self.ctx.clear_kv_cache_seq(Some(*s as u32), None, None);
            }
        }
    }

    /// One batch: the first `p` tokens of `prefix` on `seq` and every scratch sequence of
    /// `group`, then the tree's nodes on the scratch sequences passing through them.
    fn score_batch(
        &mut self,
        seq: SeqId,
        prefix: &[LlamaToken],
        p: usize,
        tree: &Tree,
        group: &[(usize, SeqId)],
    ) -> Result<()> {
        let base_len = self.len(seq);
        for &(_, s) in group {
            self.ctx
                .copy_kv_cache_seq(seq, s, None, None)
                .map_err(|e| ModelError::Inference(e.to_string()))?;
        }
        self.batch.clear();
        let mut all: Vec<SeqId> = vec![seq];
        all.extend(group.iter().map(|&(_, s)| s));
        for (j, &t) in prefix[..p].iter().enumerate() {
            self.batch
                .add(t, (base_len + j) as i32, &all, j + 1 == p)
                .map_err(|e| ModelError::Inference(e.to_string()))?;
        }
        for n in &tree.nodes {
            self.batch
                .add(n.token, (base_len + p + n.depth) as i32, &n.seqs, true)
                .map_err(|e| ModelError::Inference(e.to_string()))?;
        }
        self.decode_batch(Some(seq))
    }
}

/// Candidate continuations as a prefix tree: each node is one token to evaluate, on the
/// scratch sequences of every candidate passing through it. Parents come before children.
#[derive(Default)]
struct Tree {
    nodes: Vec<Node>,
}

struct Node {
    token: LlamaToken,
    parent: Option<usize>,
    depth: usize,
    seqs: Vec<SeqId>,
}

impl Tree {
    fn child(&self, parent: Option<usize>, t: LlamaToken) -> Option<usize> {
        // Children of a node come after it; trees here have tens of nodes.
        let from = parent.map_or(0, |p| p + 1);
        (from..self.nodes.len()).find(|&i| self.nodes[i].parent == parent && self.nodes[i].token == t)
    }

    /// Node indices along `tokens`, as far as the tree has them.
    fn path(&self, tokens: &[LlamaToken]) -> Vec<usize> {
        let mut at = None;
        let mut path = Vec::with_capacity(tokens.len());
        for &t in tokens {
            match self.child(at, t) {
                Some(i) => {
                    path.push(i);
                    at = Some(i);
                }
                None => break,
            }
        }
        path
    }

    /// How many nodes inserting `tokens` would add.
    fn new_nodes(&self, tokens: &[LlamaToken]) -> usize {
        tokens.len() - self.path(tokens).len()
    }

    fn insert(&mut self, tokens: &[LlamaToken], seq: SeqId) {
        let mut at = None;
        for (depth, &t) in tokens.iter().enumerate() {
            let i = match self.child(at, t) {
                Some(i) => i,
                None => {
                    self.nodes.push(Node {
                        token: t,
                        parent: at,
                        depth,
                        seqs: Vec::new(),
                    });
                    self.nodes.len() - 1
                }
            };
            self.nodes[i].seqs.push(seq);
            at = Some(i);
        }
    }
}
