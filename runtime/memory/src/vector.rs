//! The vector side of the index: every embedded chunk's int8 codes in one contiguous array,
//! scanned exactly for each query. Vector rows are kept densely packed (a removal moves the
//! last row into the hole) and each names its chunk's slot in [`Slots`].

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::embed::DIM;
use crate::index::{Compiled, NONE, Slots};
use crate::quant::{Quantized, dots};

/// Rows from which a search is split over the physical cores (below, a thread costs more
/// than it saves).
const PARALLEL_ROWS: usize = 20_000;

/// Int8 codes of the embedded chunks.
pub struct Vectors {
    threads: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    /// Slot of each vector row.
    slot: Vec<u32>,
    /// Vector row of each slot, or [`NONE`].
    row_of: Vec<u32>,
}

impl Default for Vectors {
    fn default() -> Vectors {
        Vectors {
            threads: num_cpus::get_physical().max(1),
            codes: Vec::new(),
            scales: Vec::new(),
            slot: Vec::new(),
            row_of: Vec::new(),
        }
    }
}

struct Scored(f32, u32);
impl PartialEq for Scored {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scored {
    // Reversed, so the heap's top is the worst kept candidate.
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.total_cmp(&self.0).then(self.1.cmp(&o.1))
    }
}

impl Vectors {
    /// Embedded chunks held.
    pub fn len(&self) -> usize {
        self.slot.len()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.codes.capacity() + self.scales.capacity() * 4 + self.slot.capacity() * 4 + self.row_of.capacity() * 4
    }

    /// Add the embedding of the chunk in `slot`.
    pub fn add(&mut self, slot: u32, q: &Quantized) {
        if q.q.len() != DIM {
            return;
        }
        let s = slot as usize;
        if self.row_of.len() <= s {
            self.row_of.resize(s + 1, NONE);
        }
        self.row_of[s] = self.slot.len() as u32;
        self.slot.push(slot);
        self.scales.push(q.scale);
        self.codes.extend_from_slice(&q.q);
    }

    /// Drop the embedding of the chunk in `slot`, if it has one.
    pub fn remove(&mut self, slot: u32) {
        let Some(r) = self.row_of.get_mut(slot as usize).map(|r| std::mem::replace(r, NONE)) else {
            return;
        };
        if r == NONE {
            return;
        }
        let (i, last) = (r as usize, self.slot.len() - 1);
        if i != last {
            self.slot.swap(i, last);
            self.scales.swap(i, last);
            let (a, b) = self.codes.split_at_mut(last * DIM);
            a[i * DIM..(i + 1) * DIM].copy_from_slice(&b[..DIM]);
            self.row_of[self.slot[i] as usize] = r;
        }
        self.slot.pop();
        self.scales.pop();
        self.codes.truncate(last * DIM);
    }

    /// The `n` chunks most similar to `query` that pass `filter`: (slot, cosine), best first
    /// (ties: lower slot first).
    pub fn search(&self, query: &Quantized, n: usize, filter: &Compiled, slots: &Slots) -> Vec<(u32, f32)> {
        if n == 0 {
            return Vec::new();
        }
        let Ok(q) = <&[i8; DIM]>::try_from(query.q.as_slice()) else {
            return Vec::new();
        };
        // The best `n` of rows lo..hi: dot products a block at a time (SIMD), then the filter
        // and a bounded heap.
        let scan = |lo: usize, hi: usize| -> Vec<Scored> {
            const BLOCK: usize = 512;
            let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(n + 1);
            let mut dot = [0i32; BLOCK];
            for start in (lo..hi).step_by(BLOCK) {
                let end = (start + BLOCK).min(hi);
                dots(q, &self.codes[start * DIM..end * DIM], &mut dot);
                for (i, &d) in (start..end).zip(&dot) {
                    let s = d as f32 * self.scales[i];
                    if heap.len() >= n && heap.peek().is_some_and(|w| s <= w.0) {
                        continue;
                    }
                    let slot = self.slot[i];
                    if !filter.pass(slots.row(slot)) {
                        continue;
                    }
                    heap.push(Scored(s, slot));
                    if heap.len() > n {
                        heap.pop();
                    }
                }
            }
            heap.into_vec()
        };
        let rows = self.slot.len();
        let threads = if rows >= PARALLEL_ROWS { self.threads } else { 1 };
        let mut best: Vec<Scored> = if threads <= 1 {
            scan(0, rows)
        } else {
            let per = rows.div_ceil(threads);
            std::thread::scope(|sc| {
                let scan = &scan;
                let others: Vec<_> = (1..threads)
                    .map(|t| sc.spawn(move || scan(t * per, ((t + 1) * per).min(rows))))
                    .collect();
                let mut all = scan(0, per.min(rows));
                for h in others {
                    // A scan thread cannot panic short of a bug; its rows are then skipped.
                    all.extend(h.join().unwrap_or_default());
                }
                all
            })
        };
        best.sort_unstable();
        best.truncate(n);
        best.into_iter()
            .map(|Scored(s, slot)| (slot, s * query.scale))
            .collect()
    }
}
