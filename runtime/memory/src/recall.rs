//! Hybrid recall: BM25 over the in-memory keyword index and exact cosine over the int8
//! vectors, fused by reciprocal rank, filtered by namespace, subject, kind, thread and time.
//! Both lists come from [`Index`]; SQLite only supplies the texts of the fused hits.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::index::{Filter, Index};
use crate::quant::Quantized;
use crate::types::{Hit, Kind, Mode, Query};

/// The `k` of reciprocal rank fusion: 1/(K + rank).
pub const RRF_K: f64 = 60.0;

/// The query's search terms (see [`crate::text::query_terms`]).
pub fn terms(text: &str) -> Vec<String> {
    crate::text::query_terms(text)
}

/// Candidates each list contributes before fusion.
pub fn candidates(k: usize) -> usize {
    (k * 4).max(50)
}

/// Run a query. `qvec` is the query's embedding (needed unless the mode is FTS).
pub(crate) fn recall(
    conn: &Connection,
    index: &Index,
    q: &Query,
    qvec: Option<&Quantized>,
    now: i64,
) -> Result<Vec<Hit>> {
    let n = candidates(q.k);
    let filter = Filter {
        namespaces: &q.namespaces,
        subject: q.subject.as_deref(),
        kinds: &q.kinds,
        thread: q.thread.as_deref(),
        since: q.since,
        until: q.until,
        now,
    };
    let lex: Vec<(i64, f64)> = match q.mode {
        Mode::Vector => Vec::new(),
        _ => index
            .search_text(&terms(&q.text), n, &filter)
            .into_iter()
            .map(|(id, _, cov)| (id, cov))
            .collect(),
    };
    let vec = match (q.mode, qvec) {
        (Mode::Fts, _) | (_, None) => Vec::new(),
        (_, Some(v)) => {
            let mut hits = index.search_vector(v, n, &filter);
            if let Some(min) = q.min_cosine {
                hits.retain(|(_, c)| *c >= min);
            }
            hits
        }
    };
    // Fuse: 1/(K + rank) summed over the lists a chunk appears in.
    // chunk id → (score, BM25 rank, vector rank, cosine)
    type Fused = (f64, Option<usize>, Option<usize>, Option<f32>);
    let mut fused: HashMap<i64, Fused> = HashMap::new();
    for (i, (id, cov)) in lex.iter().enumerate() {
        // Pure keyword mode ranks by BM25 alone. Fused, a hit covering less than half the
        // query's terms is incidental overlap (one common word of a long question): it
        // would push a closer meaning match down, so it does not count.
        let w = match q.mode {
            Mode::Fts => 1.0,
            _ if *cov < 0.5 => continue,
            _ => cov * cov,
        };
        let e = fused.entry(*id).or_default();
        e.0 += w / (RRF_K + (i + 1) as f64);
        e.1 = Some(i + 1);
    }
    for (i, (id, cos)) in vec.iter().enumerate() {
        let e = fused.entry(*id).or_default();
        e.0 += 1.0 / (RRF_K + (i + 1) as f64);
        e.2 = Some(i + 1);
        e.3 = Some(*cos);
    }
    let mut hits = Vec::with_capacity(fused.len());
    let mut stmt = conn.prepare_cached(
        "SELECT kind, owner, ord, namespace, subject, created_at, text FROM mem_chunks WHERE id = ?1",
    )?;
    for (id, (score, fts_rank, vector_rank, cosine)) in fused {
        let row = stmt
            .query_row(params![id], |r| {
                Ok(Hit {
                    kind: Kind::parse(&r.get::<_, String>(0)?).unwrap_or(Kind::Note),
                    id: r.get(1)?,
                    ord: r.get(2)?,
                    namespace: r.get(3)?,
                    subject: r.get(4)?,
                    created_at: r.get(5)?,
                    text: r.get(6)?,
                    key: None,
                    title: None,
                    score,
                    fts_rank,
                    vector_rank,
                    cosine,
                })
            })
            .optional()?;
        // A chunk deleted since the vector index synced is simply skipped.
        hits.extend(row);
    }
    // Best chunk per memory; deterministic order (ids and chunk numbers break ties).
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.id.cmp(&b.id))
            .then(a.ord.cmp(&b.ord))
    });
    let mut seen = std::collections::HashSet::new();
    hits.retain(|h| h.kind == Kind::Message || seen.insert(h.id.clone()));
    hits.truncate(q.k);
    for h in &mut hits {
        match h.kind {
            Kind::Fact => {
                h.key = conn
                    .prepare_cached("SELECT key FROM mem_facts WHERE id = ?1")?
                    .query_row(params![h.id], |r| r.get(0))
                    .optional()?;
            }
            Kind::Note => {
                h.title = conn
                    .prepare_cached("SELECT title FROM mem_notes WHERE id = ?1")?
                    .query_row(params![h.id], |r| r.get::<_, Option<String>>(0))
                    .optional()?
                    .flatten();
            }
            Kind::Message => {}
        }
    }
    Ok(hits)
}
