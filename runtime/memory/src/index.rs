//! The in-memory vector index: every embedded chunk's int8 codes in one contiguous array,
//! scanned exactly for each query. It follows the database through `mem_changes` (filled by
//! triggers), so writes by this process and by any other process show up at the next search.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use rusqlite::{Connection, params};

use crate::embed::DIM;
use crate::error::Result;
use crate::quant::{Quantized, dots};
use crate::types::Kind;

const NONE: u32 = u32::MAX;
/// Rows from which a search is split over the physical cores (below, a thread costs more
/// than it saves).
const PARALLEL_ROWS: usize = 20_000;

/// Filterable facts about one row.
#[derive(Debug, Clone, Copy)]
struct Row {
    kind: Kind,
    ns: u32,
    subject: u32,
    owner: u32,
    created_at: i64,
    expires_at: i64,
}

/// Strings seen in namespaces, subjects and owners, as small integers.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    fn get_or_add(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.insert(s.to_string(), i);
        i
    }
    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
}

/// Row filter of a vector search; see [`crate::Query`].
#[derive(Debug, Clone, Default)]
pub struct VecFilter<'a> {
    pub namespaces: &'a [String],
    pub subject: Option<&'a str>,
    pub kinds: &'a [Kind],
    pub thread: Option<&'a str>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub now: i64,
}

/// The cache. Rows are kept densely packed: a removal moves the last row into the hole.
pub struct VecIndex {
    loaded: bool,
    threads: usize,
    seq: i64,
    codes: Vec<i8>,
    scales: Vec<f32>,
    ids: Vec<i64>,
    rows: Vec<Row>,
    pos: HashMap<i64, usize>,
    names: Interner,
}

struct Scored(f32, usize);
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

impl Default for VecIndex {
    fn default() -> VecIndex {
        VecIndex {
            loaded: false,
            threads: num_cpus::get_physical().max(1),
            seq: 0,
            codes: Vec::new(),
            scales: Vec::new(),
            ids: Vec::new(),
            rows: Vec::new(),
            pos: HashMap::new(),
            names: Interner::default(),
        }
    }
}

impl VecIndex {
    /// Number of embedded chunks held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Bytes of vector data held.
    pub fn bytes(&self) -> usize {
        self.codes.len() + self.scales.len() * 4 + self.ids.len() * 8 + self.rows.len() * size_of::<Row>()
    }

    /// Catch up with the database: a full load the first time (or when the change log was
    /// pruned past this cache), then only the chunks changed since.
    pub fn sync(&mut self, conn: &mut Connection) -> Result<()> {
        let tx = conn.transaction()?;
        // Two subqueries: SQLite answers a lone MIN or MAX from the end of the index, but
        // scans the whole log for `MIN(seq), MAX(seq)` in one select.
        let (min, max): (Option<i64>, Option<i64>) = tx.query_row(
            "SELECT (SELECT MIN(seq) FROM mem_changes), (SELECT MAX(seq) FROM mem_changes)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let max = max.unwrap_or(0);
        if self.loaded && max == self.seq {
            return Ok(());
        }
        let gap = min.is_some_and(|m| m > self.seq + 1);
        if !self.loaded || gap || max < self.seq {
            *self = VecIndex::default();
            let mut stmt = tx.prepare(
                "SELECT id, kind, namespace, subject, owner, created_at, expires_at, embedding
                 FROM mem_chunks WHERE embedding IS NOT NULL ORDER BY id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                self.put_row(r)?;
            }
        } else {
            let mut changed: Vec<i64> = tx
                .prepare_cached("SELECT DISTINCT chunk_id FROM mem_changes WHERE seq > ?1")?
                .query_map(params![self.seq], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            changed.sort_unstable();
            let mut stmt = tx.prepare_cached(
                "SELECT id, kind, namespace, subject, owner, created_at, expires_at, embedding
                 FROM mem_chunks WHERE id = ?1",
            )?;
            for id in changed {
                self.remove(id);
                let mut rows = stmt.query(params![id])?;
                if let Some(r) = rows.next()? {
                    self.put_row(r)?;
                }
            }
        }
        self.seq = max;
        self.loaded = true;
        Ok(())
    }

    fn put_row(&mut self, r: &rusqlite::Row<'_>) -> Result<()> {
        let id: i64 = r.get(0)?;
        let blob: Option<Vec<u8>> = r.get(7)?;
        let Some(q) = blob.as_deref().and_then(Quantized::from_blob) else {
            return Ok(());
        };
        let kind = Kind::parse(&r.get::<_, String>(1)?).unwrap_or(Kind::Note);
        let ns = self.names.get_or_add(&r.get::<_, String>(2)?);
        let subject = match r.get::<_, Option<String>>(3)? {
            Some(s) => self.names.get_or_add(&s),
            None => NONE,
        };
        let owner = self.names.get_or_add(&r.get::<_, String>(4)?);
        let row = Row {
            kind,
            ns,
            subject,
            owner,
            created_at: r.get(5)?,
            expires_at: r.get::<_, Option<i64>>(6)?.unwrap_or(i64::MAX),
        };
        self.pos.insert(id, self.ids.len());
        self.ids.push(id);
        self.rows.push(row);
        self.scales.push(q.scale);
        self.codes.extend_from_slice(&q.q);
        Ok(())
    }

    fn remove(&mut self, id: i64) {
        let Some(i) = self.pos.remove(&id) else { return };
        let last = self.ids.len() - 1;
        if i != last {
            self.ids.swap(i, last);
            self.rows.swap(i, last);
            self.scales.swap(i, last);
            let (a, b) = self.codes.split_at_mut(last * DIM);
            a[i * DIM..(i + 1) * DIM].copy_from_slice(&b[..DIM]);
            self.pos.insert(self.ids[i], i);
        }
        self.ids.pop();
        self.rows.pop();
        self.scales.pop();
        self.codes.truncate(last * DIM);
    }

    /// The `n` rows most similar to `query` that pass `filter`: (chunk id, cosine), best first.
    pub fn search(&self, query: &Quantized, n: usize, filter: &VecFilter<'_>) -> Vec<(i64, f32)> {
        // Resolve filter strings once; a name never seen matches nothing.
        let ns: Option<Vec<u32>> = (!filter.namespaces.is_empty())
            .then(|| filter.namespaces.iter().filter_map(|s| self.names.get(s)).collect());
        let subject = filter.subject.map(|s| self.names.get(s).unwrap_or(NONE - 1));
        let thread = filter.thread.map(|s| self.names.get(s).unwrap_or(NONE - 1));
        let pass = |r: &Row| {
            ns.as_ref().is_none_or(|v| v.contains(&r.ns))
                && subject.is_none_or(|s| s == r.subject)
                && (filter.kinds.is_empty() || filter.kinds.contains(&r.kind))
                && thread.is_none_or(|t| r.kind != Kind::Message || r.owner == t)
                && filter.since.is_none_or(|t| r.created_at >= t)
                && filter.until.is_none_or(|t| r.created_at < t)
                && r.expires_at > filter.now
        };
        let unfiltered = ns.is_none()
            && subject.is_none()
            && filter.kinds.is_empty()
            && thread.is_none()
            && filter.since.is_none()
            && filter.until.is_none();
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
                    let row = &self.rows[i];
                    if (unfiltered && row.expires_at <= filter.now) || (!unfiltered && !pass(row)) {
                        continue;
                    }
                    let s = d as f32 * self.scales[i];
                    if heap.len() < n {
                        heap.push(Scored(s, i));
                    } else if heap.peek().is_some_and(|w| s > w.0) {
                        heap.pop();
                        heap.push(Scored(s, i));
                    }
                }
            }
            heap.into_vec()
        };
        let rows = self.ids.len();
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
        let mut out: Vec<(i64, f32)> = best
            .into_iter()
            .map(|Scored(s, i)| (self.ids[i], s * query.scale))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}
