//! The in-memory recall index: one slot per chunk with the facts filters need, the int8
//! vectors of the embedded chunks ([`Vectors`]) and the keyword postings of every chunk
//! ([`TextIndex`]). Both sides share the slot table and the filter, so they filter alike.
//!
//! It follows the database through `mem_changes` (filled by triggers), so writes by this
//! process and by any other process show up at the next search. Slots only grow: a removed
//! chunk leaves a dead slot, and the index is rebuilt from `mem_chunks` once dead slots
//! outnumber live ones (or a sync would apply very many changes).

use rusqlite::{Connection, params};
use rustc_hash::FxHashMap;

use crate::bm25::{TextHit, TextIndex};
use crate::error::Result;
use crate::quant::Quantized;
use crate::text::Analyzer;
use crate::types::Kind;
use crate::vector::Vectors;

/// No slot, row or name.
pub(crate) const NONE: u32 = u32::MAX;
/// Chunks changed since the last sync beyond which a full reload is cheaper.
const RELOAD_CHANGES: usize = 4096;

/// Filterable facts about one chunk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    kind: Kind,
    ns: u32,
    subject: u32,
    owner: u32,
    ord: i64,
    created_at: i64,
    expires_at: i64,
}

/// Strings seen in namespaces, subjects and owners, as small integers.
#[derive(Default)]
struct Interner {
    ids: FxHashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn get_or_add(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.ids.insert(s.to_string(), i);
        self.names.push(s.to_string());
        i
    }
    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
}

/// The slot table: chunk id and filter facts per slot.
#[derive(Default)]
pub struct Slots {
    /// Chunk id per slot; -1 for a dead slot.
    ids: Vec<i64>,
    rows: Vec<Row>,
    pos: FxHashMap<i64, u32>,
    names: Interner,
    dead: usize,
}

impl Slots {
    #[inline]
    pub(crate) fn row(&self, slot: u32) -> &Row {
        &self.rows[slot as usize]
    }

    /// Chunk id in `slot`.
    pub fn id(&self, slot: u32) -> i64 {
        self.ids[slot as usize]
    }

    /// Order among equal scores: (owner, ord) as recall lists them, then chunk id.
    pub(crate) fn tie_key(&self, slot: u32) -> (&str, i64, i64) {
        let r = self.row(slot);
        (self.names.names[r.owner as usize].as_str(), r.ord, self.id(slot))
    }

    fn live(&self) -> usize {
        self.ids.len() - self.dead
    }

    fn bytes(&self) -> usize {
        self.ids.capacity() * 8
            + self.rows.capacity() * size_of::<Row>()
            + self.pos.capacity() * (size_of::<(i64, u32)>() + 1)
            + self
                .names
                .names
                .iter()
                .map(|n| 2 * (n.capacity() + 24) + 12)
                .sum::<usize>()
    }
}

/// Row filter of a search; see [`crate::Query`].
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub namespaces: &'a [String],
    pub subject: Option<&'a str>,
    pub kinds: &'a [Kind],
    pub thread: Option<&'a str>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub now: i64,
}

/// A [`Filter`] with its strings resolved against the slot table.
pub struct Compiled {
    ns: Option<Vec<u32>>,
    subject: Option<u32>,
    thread: Option<u32>,
    kinds: Vec<Kind>,
    since: i64,
    until: i64,
    now: i64,
}

impl Compiled {
    /// Resolve `f`'s strings once; a name never seen matches nothing.
    pub(crate) fn new(f: &Filter<'_>, slots: &Slots) -> Compiled {
        let names = &slots.names;
        Compiled {
            ns: (!f.namespaces.is_empty()).then(|| f.namespaces.iter().filter_map(|s| names.get(s)).collect()),
            subject: f.subject.map(|s| names.get(s).unwrap_or(NONE - 1)),
            thread: f.thread.map(|s| names.get(s).unwrap_or(NONE - 1)),
            kinds: f.kinds.to_vec(),
            since: f.since.unwrap_or(i64::MIN),
            until: f.until.unwrap_or(i64::MAX),
            now: f.now,
        }
    }

    /// Whether a chunk passes.
    #[inline]
    pub(crate) fn pass(&self, r: &Row) -> bool {
        r.expires_at > self.now
            && r.created_at >= self.since
            && (r.created_at < self.until || self.until == i64::MAX)
            && self.ns.as_ref().is_none_or(|v| v.contains(&r.ns))
            && self.subject.is_none_or(|s| s == r.subject)
            && (self.kinds.is_empty() || self.kinds.contains(&r.kind))
            && self.thread.is_none_or(|t| r.kind != Kind::Message || r.owner == t)
    }
}

/// Columns a sync reads, in this order.
const COLS: &str = "id, kind, namespace, subject, owner, ord, created_at, expires_at, text, embedding";

/// A chunk row read for the index.
struct Loaded {
    id: i64,
    kind: Kind,
    ns: String,
    subject: Option<String>,
    owner: String,
    ord: i64,
    created_at: i64,
    expires_at: i64,
    text: String,
    /// Length in words and (stem number, count) per distinct stem, once analyzed; the
    /// numbers are an [`Analyzer`]'s until [`Index::put_rows`] turns them into term numbers.
    len: u32,
    terms: Vec<(u32, u32)>,
    vector: Option<Quantized>,
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Loaded> {
    let vector = r.get_ref(9)?.as_blob_or_null()?.and_then(Quantized::from_blob);
    Ok(Loaded {
        id: r.get(0)?,
        kind: Kind::parse(r.get_ref(1)?.as_str()?).unwrap_or(Kind::Note),
        ns: r.get(2)?,
        subject: r.get(3)?,
        owner: r.get(4)?,
        ord: r.get(5)?,
        created_at: r.get(6)?,
        expires_at: r.get::<_, Option<i64>>(7)?.unwrap_or(i64::MAX),
        text: r.get(8)?,
        len: 0,
        terms: Vec::new(),
        vector,
    })
}

/// The whole index.
#[derive(Default)]
pub struct Index {
    loaded: bool,
    seq: i64,
    slots: Slots,
    vectors: Vectors,
    text: TextIndex,
}

impl Index {
    /// Embedded chunks held.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// Bytes of the vector side (codes, scales) and of the slot table.
    pub fn vector_bytes(&self) -> usize {
        self.vectors.bytes() + self.slots.bytes()
    }

    /// Bytes of the keyword side (postings, lengths, term dictionary).
    pub fn text_bytes(&self) -> usize {
        self.text.bytes()
    }

    /// Catch up with the database: a full load the first time (or when the change log was
    /// pruned past this cache, or after many removals), then only the chunks changed since.
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
        let mut changed: Vec<i64> = Vec::new();
        if self.loaded && !gap && max > self.seq {
            changed = tx
                .prepare_cached("SELECT DISTINCT chunk_id FROM mem_changes WHERE seq > ?1")?
                .query_map(params![self.seq], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
        }
        let many = changed.len() > RELOAD_CHANGES.max(self.slots.live() / 4)
            || self.slots.dead + changed.len() > RELOAD_CHANGES.max(self.slots.live());
        if !self.loaded || gap || max < self.seq || many {
            *self = Index::default();
            let mut stmt = tx.prepare(&format!("SELECT {COLS} FROM mem_chunks ORDER BY id"))?;
            let rows: Vec<Loaded> = stmt.query_map([], read_row)?.collect::<rusqlite::Result<_>>()?;
            self.put_rows(rows);
            self.text.shrink();
        } else {
            changed.sort_unstable();
            let mut stmt = tx.prepare_cached(&format!("SELECT {COLS} FROM mem_chunks WHERE id = ?1"))?;
            let mut rows = Vec::new();
            for id in changed {
                self.remove(id);
                let mut found = stmt.query(params![id])?;
                if let Some(r) = found.next()? {
                    rows.push(read_row(r)?);
                }
            }
            self.put_rows(rows);
        }
        self.seq = max;
        self.loaded = true;
        Ok(())
    }

    /// Analyze `rows` (over the physical cores when many) and index them in order.
    fn put_rows(&mut self, rows: Vec<Loaded>) {
        for (part, an) in analyze_all(rows) {
            // Each distinct stem of the part is looked up in the term dictionary once.
            let mut term = vec![NONE; an.stems()];
            for mut l in part {
                for t in &mut l.terms {
                    let m = &mut term[t.0 as usize];
                    if *m == NONE {
                        *m = self.text.term_id(an.stem(t.0));
                    }
                    t.0 = *m;
                }
                self.put(l);
            }
        }
    }

    /// Index one analyzed row whose stems are term numbers already.
    fn put(&mut self, l: Loaded) {
        let s = &mut self.slots;
        let row = Row {
            kind: l.kind,
            ns: s.names.get_or_add(&l.ns),
            subject: l.subject.as_deref().map_or(NONE, |x| s.names.get_or_add(x)),
            owner: s.names.get_or_add(&l.owner),
            ord: l.ord,
            created_at: l.created_at,
            expires_at: l.expires_at,
        };
        let slot = s.ids.len() as u32;
        s.pos.insert(l.id, slot);
        s.ids.push(l.id);
        s.rows.push(row);
        if let Some(v) = &l.vector {
            self.vectors.add(slot, v);
        }
        self.text.add(slot, l.len, l.terms.into_iter());
    }

    fn remove(&mut self, id: i64) {
        let Some(slot) = self.slots.pos.remove(&id) else { return };
        self.slots.ids[slot as usize] = -1;
        self.slots.dead += 1;
        self.vectors.remove(slot);
        self.text.remove(slot);
    }

    /// The `n` embedded chunks most similar to `query` that pass `filter`: (chunk id,
    /// cosine), best first.
    pub fn search_vector(&self, query: &Quantized, n: usize, filter: &Filter<'_>) -> Vec<(i64, f32)> {
        let c = Compiled::new(filter, &self.slots);
        let mut out: Vec<(i64, f32)> = self
            .vectors
            .search(query, n, &c, &self.slots)
            .into_iter()
            .map(|(slot, s)| (self.slots.id(slot), s))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// The `n` best BM25 matches of the query `terms` that pass `filter`: (chunk id, score,
    /// coverage), best first, ties in (owner, ord) order.
    pub fn search_text(&self, terms: &[String], n: usize, filter: &Filter<'_>) -> Vec<(i64, f64, f64)> {
        let c = Compiled::new(filter, &self.slots);
        self.text
            .search(terms, n, &c, &self.slots)
            .into_iter()
            .map(|TextHit { slot, score, coverage }| (self.slots.id(slot), score, coverage))
            .collect()
    }
}

/// Tokenize and stem every row, over the physical cores: parts in row order, each with the
/// analyzer that numbered its stems.
fn analyze_all(rows: Vec<Loaded>) -> Vec<(Vec<Loaded>, Analyzer)> {
    let analyze_part = |mut part: Vec<Loaded>| -> (Vec<Loaded>, Analyzer) {
        let mut an = Analyzer::default();
        for l in &mut part {
            (l.len, l.terms) = an.analyze(&std::mem::take(&mut l.text));
        }
        (part, an)
    };
    let threads = num_cpus::get_physical().max(1);
    if threads == 1 || rows.len() < 2048 {
        return vec![analyze_part(rows)];
    }
    let per = rows.len().div_ceil(threads);
    let mut parts: Vec<Vec<Loaded>> = Vec::new();
    let mut rows = rows.into_iter();
    loop {
        let part: Vec<_> = rows.by_ref().take(per).collect();
        if part.is_empty() {
            break;
        }
        parts.push(part);
    }
    std::thread::scope(|sc| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| sc.spawn(move || analyze_part(part)))
            .collect();
        // An analysis thread cannot panic short of a bug; its rows are then left out.
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
