//! The in-memory keyword index: per term a postings list of (chunk slot, term count) sorted
//! by slot, per slot the chunk's length; BM25 scored as FTS5 scores it, top-n found with
//! MaxScore pruning.
//!
//! MaxScore: the query's terms are sorted by their score upper bound. Terms whose bounds
//! sum to less than the current n-th best score cannot bring a chunk into the top n on
//! their own ("non-essential"); only the other terms' postings are walked, and the
//! non-essential lists are probed (galloping search) for the chunks found, stopping as soon
//! as the bound says the chunk cannot enter. A common word of a query (27k of 100k chunks)
//! then costs a few probes instead of 27k scorings.

use rustc_hash::FxHashMap;

use crate::index::{Compiled, Slots};

/// BM25 parameters, FTS5's.
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// Slack on bounds, so float rounding can never prune a chunk that would have entered.
const SLACK: f64 = 1.0 + 1e-9;

#[derive(Default)]
struct Postings {
    slots: Vec<u32>,
    tfs: Vec<u16>,
    /// Upper bounds over the list (kept while chunks leave; refreshed at a full load).
    max_tf: u16,
    min_len: u32,
}

/// A chunk found by [`TextIndex::search`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextHit {
    pub slot: u32,
    /// BM25 (higher is better; FTS5's `bm25()` is its negation).
    pub score: f64,
    /// Share of the query's distinct terms the chunk contains.
    pub coverage: f64,
}

/// Postings by term, lengths by slot.
#[derive(Default)]
pub struct TextIndex {
    dict: FxHashMap<String, u32>,
    terms: Vec<Postings>,
    /// Length in words of the chunk in each slot (0 for empty slots).
    lens: Vec<u32>,
    /// Term ids of each slot's chunk, to take it out of the postings again.
    fwd: Vec<Box<[u32]>>,
    docs: u64,
    total_len: u64,
}

/// One query term during a search.
struct QTerm<'a> {
    /// Position in the query (scores are summed in query order, so pruned and exhaustive
    /// searches add the same floats in the same order).
    at: usize,
    idf: f64,
    bound: f64,
    p: &'a Postings,
    cur: usize,
}

/// FTS5's idf: ln((N − n + 0.5) / (n + 0.5)), at least 1e-6.
fn idf(docs: u64, n: usize) -> f64 {
    let v = ((docs as f64 - n as f64 + 0.5) / (n as f64 + 0.5)).ln();
    if v <= 0.0 { 1e-6 } else { v }
}

/// One term's BM25 contribution.
#[inline]
fn term_score(idf: f64, tf: u16, len: u32, avg: f64) -> f64 {
    let tf = tf as f64;
    idf * (tf * (K1 + 1.0)) / (tf + K1 * (1.0 - B + B * len as f64 / avg))
}

/// First index at or after `from` whose slot is ≥ `target` (galloping, then binary search).
fn seek(s: &[u32], from: usize, target: u32) -> usize {
    let mut lo = from;
    let mut step = 1;
    let mut hi = from;
    while hi < s.len() && s[hi] < target {
        lo = hi + 1;
        hi += step;
        step *= 2;
    }
    let hi = hi.min(s.len());
    lo + s[lo..hi].partition_point(|&x| x < target)
}

impl TextIndex {
    /// Bytes held (from capacities; the term dictionary's hashing overhead estimated).
    pub fn bytes(&self) -> usize {
        let dict: usize = self
            .dict
            .keys()
            .map(|k| k.capacity() + size_of::<(String, u32)>() + 8)
            .sum();
        let post: usize = self
            .terms
            .iter()
            .map(|p| size_of::<Postings>() + p.slots.capacity() * 4 + p.tfs.capacity() * 2)
            .sum();
        let fwd: usize = self.fwd.iter().map(|f| size_of::<Box<[u32]>>() + f.len() * 4).sum();
        dict + post + fwd + self.lens.capacity() * 4
    }

    /// The number of `term`, added if new.
    pub(crate) fn term_id(&mut self, term: &str) -> u32 {
        if let Some(&id) = self.dict.get(term) {
            return id;
        }
        let id = self.terms.len() as u32;
        self.dict.insert(term.to_string(), id);
        self.terms.push(Postings {
            min_len: u32::MAX,
            ..Default::default()
        });
        id
    }

    /// Index the chunk in `slot`: its length in words and its distinct terms (numbers from
    /// [`TextIndex::term_id`]) with their counts. `slot` must be above every slot held
    /// (slots only grow until a full reload).
    pub(crate) fn add(&mut self, slot: u32, len: u32, terms: impl ExactSizeIterator<Item = (u32, u32)>) {
        let s = slot as usize;
        if self.lens.len() <= s {
            self.lens.resize(s + 1, 0);
            self.fwd.resize_with(s + 1, Default::default);
        }
        let mut ids = Vec::with_capacity(terms.len());
        for (id, tf) in terms {
            let p = &mut self.terms[id as usize];
            let tf = tf.min(u16::MAX as u32) as u16;
            p.slots.push(slot);
            p.tfs.push(tf);
            p.max_tf = p.max_tf.max(tf);
            p.min_len = p.min_len.min(len);
            ids.push(id);
        }
        self.lens[s] = len;
        self.fwd[s] = ids.into_boxed_slice();
        self.docs += 1;
        self.total_len += len as u64;
    }

    /// Give back the room postings grew into (after a full load).
    pub(crate) fn shrink(&mut self) {
        for p in &mut self.terms {
            p.slots.shrink_to_fit();
            p.tfs.shrink_to_fit();
        }
    }

    /// Take the chunk in `slot` out of the index.
    pub fn remove(&mut self, slot: u32) {
        let s = slot as usize;
        let Some(ids) = self.fwd.get_mut(s).map(std::mem::take) else {
            return;
        };
        for id in ids.iter() {
            let p = &mut self.terms[*id as usize];
            if let Ok(i) = p.slots.binary_search(&slot) {
                p.slots.remove(i);
                p.tfs.remove(i);
            }
        }
        self.docs = self.docs.saturating_sub(1);
        self.total_len = self.total_len.saturating_sub(self.lens[s] as u64);
        self.lens[s] = 0;
    }

    fn prepare<'a>(&'a self, terms: &[String]) -> (Vec<QTerm<'a>>, f64) {
        let avg = (self.total_len as f64 / self.docs.max(1) as f64).max(1e-9);
        let mut q = Vec::new();
        for (at, t) in terms.iter().enumerate() {
            let Some(&id) = self.dict.get(t) else { continue };
            let p = &self.terms[id as usize];
            if p.slots.is_empty() {
                continue;
            }
            let idf = idf(self.docs, p.slots.len());
            let bound = term_score(idf, p.max_tf, p.min_len, avg);
            q.push(QTerm {
                at,
                idf,
                bound,
                p,
                cur: 0,
            });
        }
        (q, avg)
    }

    /// The `n` best chunks for the query `terms` (from [`crate::text::query_terms`]) that pass
    /// `filter`, best first; ties go to the lower (owner, ord).
    pub fn search(&self, terms: &[String], n: usize, filter: &Compiled, slots: &Slots) -> Vec<TextHit> {
        self.search_counted(terms, n, filter, slots).0
    }

    /// [`TextIndex::search`], and how many chunks it scored in full.
    pub(crate) fn search_counted(
        &self,
        terms: &[String],
        n: usize,
        filter: &Compiled,
        slots: &Slots,
    ) -> (Vec<TextHit>, usize) {
        let (mut q, avg) = self.prepare(terms);
        if n == 0 || q.is_empty() {
            return (Vec::new(), 0);
        }
        // Ascending bounds; `cum[i]` = sum of the bounds of q[..=i].
        q.sort_by(|a, b| a.bound.total_cmp(&b.bound).then(a.at.cmp(&b.at)));
        let cum: Vec<f64> = q
            .iter()
            .scan(0.0, |s, t| {
                *s += t.bound;
                Some(*s)
            })
            .collect();
        let mut top = Top::new(n, slots);
        let mut scored = 0usize;
        let mut parts = vec![0f64; terms.len()];
        // q[..ne] are non-essential: together they cannot beat the n-th best score.
        let mut ne = 0;
        loop {
            let theta = top.threshold();
            while ne < q.len() && cum[ne] * SLACK < theta {
                ne += 1;
            }
            if ne == q.len() {
                break;
            }
            let Some(slot) = q[ne..].iter().filter_map(|t| t.p.slots.get(t.cur).copied()).min() else {
                break;
            };
            parts.iter_mut().for_each(|p| *p = 0.0);
            let len = self.lens[slot as usize];
            let mut partial = 0.0;
            let mut matched = 0usize;
            for t in &mut q[ne..] {
                if t.p.slots.get(t.cur) == Some(&slot) {
                    let s = term_score(t.idf, t.p.tfs[t.cur], len, avg);
                    parts[t.at] = s;
                    partial += s;
                    matched += 1;
                    t.cur += 1;
                }
            }
            if !filter.pass(slots.row(slot)) {
                continue;
            }
            let mut out = false;
            for i in (0..ne).rev() {
                if (partial + cum[i]) * SLACK < theta {
                    out = true;
                    break;
                }
                let t = &mut q[i];
                t.cur = seek(&t.p.slots, t.cur, slot);
                if t.p.slots.get(t.cur) == Some(&slot) {
                    let s = term_score(t.idf, t.p.tfs[t.cur], len, avg);
                    parts[t.at] = s;
                    partial += s;
                    matched += 1;
                }
            }
            if out {
                continue;
            }
            let score: f64 = parts.iter().sum();
            scored += 1;
            top.offer(slot, score, matched as f64 / terms.len() as f64);
        }
        (top.into_sorted(), scored)
    }

    /// Every matching chunk scored, then sorted: the reference the pruned search must equal.
    #[cfg(test)]
    pub fn search_exhaustive(&self, terms: &[String], n: usize, filter: &Compiled, slots: &Slots) -> Vec<TextHit> {
        let (q, avg) = self.prepare(terms);
        let mut acc: FxHashMap<u32, (Vec<f64>, usize)> = FxHashMap::default();
        for t in &q {
            for (&slot, &tf) in t.p.slots.iter().zip(&t.p.tfs) {
                let e = acc.entry(slot).or_insert_with(|| (vec![0.0; terms.len()], 0));
                e.0[t.at] = term_score(t.idf, tf, self.lens[slot as usize], avg);
                e.1 += 1;
            }
        }
        let mut top = Top::new(n, slots);
        for (slot, (parts, m)) in acc {
            if filter.pass(slots.row(slot)) {
                top.offer(slot, parts.iter().sum(), m as f64 / terms.len() as f64);
            }
        }
        top.into_sorted()
    }
}

/// The best `n` hits so far, kept sorted best first.
struct Top<'a> {
    n: usize,
    slots: &'a Slots,
    hits: Vec<TextHit>,
}

impl<'a> Top<'a> {
    fn new(n: usize, slots: &'a Slots) -> Self {
        Top {
            n,
            slots,
            hits: Vec::with_capacity(n.min(1024) + 1),
        }
    }

    /// The score a chunk must reach to enter (−∞ until n are held).
    fn threshold(&self) -> f64 {
        match self.hits.last() {
            Some(h) if self.hits.len() >= self.n => h.score,
            _ => f64::NEG_INFINITY,
        }
    }

    /// Whether `a` ranks before `b`: higher score, then lower (owner, ord).
    fn before(&self, a: &TextHit, b: &TextHit) -> bool {
        match b.score.total_cmp(&a.score) {
            std::cmp::Ordering::Equal => self.slots.tie_key(a.slot) < self.slots.tie_key(b.slot),
            o => o.is_lt(),
        }
    }

    fn offer(&mut self, slot: u32, score: f64, coverage: f64) {
        let h = TextHit { slot, score, coverage };
        if self.hits.len() >= self.n && self.hits.last().is_none_or(|w| !self.before(&h, w)) {
            return;
        }
        let at = self.hits.partition_point(|x| self.before(x, &h));
        self.hits.insert(at, h);
        self.hits.truncate(self.n);
    }

    fn into_sorted(self) -> Vec<TextHit> {
        self.hits
    }
}
