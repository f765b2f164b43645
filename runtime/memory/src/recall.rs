//! Hybrid recall: BM25 over FTS5 and exact cosine over the int8 vector index, fused by
//! reciprocal rank, filtered by namespace, subject, kind, thread and time.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::index::{VecFilter, VecIndex};
use crate::quant::Quantized;
use crate::types::{Hit, Kind, Mode, Query};

/// The `k` of reciprocal rank fusion: 1/(K + rank).
pub const RRF_K: f64 = 60.0;

/// Words too common to help BM25 (they would also make every query match most chunks).
const STOPWORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "did", "do", "does", "for", "from",
    "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "our", "so",
    "that", "the", "their", "them", "there", "these", "they", "this", "to", "was", "we", "were", "what", "when",
    "where", "which", "who", "why", "will", "with", "you", "your",
];

/// The query's search terms: lowercased words, stopwords and repeats removed.
pub fn terms(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for w in text.split(|c: char| !c.is_alphanumeric()) {
        let w = w.to_lowercase();
        if w.is_empty() || STOPWORDS.contains(&w.as_str()) || words.contains(&w) {
            continue;
        }
        words.push(w);
    }
    words
}

/// How much of the query a BM25 hit covers: distinct matched words (as FTS5 highlights them)
/// over query terms, capped at 1.
fn coverage(highlighted: &str, n_terms: usize) -> f64 {
    let mut seen: Vec<String> = Vec::new();
    for part in highlighted.split('\u{1}').skip(1) {
        if let Some((word, _)) = part.split_once('\u{2}') {
            let w = word.to_lowercase();
            if !seen.contains(&w) {
                seen.push(w);
            }
        }
    }
    (seen.len() as f64 / n_terms.max(1) as f64).min(1.0)
}

/// An FTS5 query matching any of the query's words (each quoted, so no operator syntax can
/// leak in). `None` when no word is left.
pub fn fts_query(text: &str) -> Option<String> {
    let words = terms(text);
    (!words.is_empty()).then(|| {
        words
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" OR ")
    })
}

/// BM25 candidates, best first: (chunk id, share of the query's terms it contains).
fn fts(conn: &Connection, q: &Query, n: usize, now: i64) -> Result<Vec<(i64, f64)>> {
    let Some(m) = fts_query(&q.text) else {
        return Ok(Vec::new());
    };
    let n_terms = terms(&q.text).len();
    let ns = (!q.namespaces.is_empty()).then(|| serde_json::Value::from(q.namespaces.clone()).to_string());
    let kinds = (!q.kinds.is_empty())
        .then(|| serde_json::Value::from(q.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>()).to_string());
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, highlight(mem_fts, 0, char(1), char(2)) FROM mem_fts JOIN mem_chunks c ON c.id = mem_fts.rowid
         WHERE mem_fts MATCH ?1
           AND (?2 IS NULL OR c.namespace IN (SELECT value FROM json_each(?2)))
           AND (?3 IS NULL OR c.subject = ?3)
           AND (?4 IS NULL OR c.kind IN (SELECT value FROM json_each(?4)))
           AND (?5 IS NULL OR c.kind <> 'message' OR c.owner = ?5)
           AND (?6 IS NULL OR c.created_at >= ?6)
           AND (?7 IS NULL OR c.created_at < ?7)
           AND (c.expires_at IS NULL OR c.expires_at > ?8)
         ORDER BY bm25(mem_fts), c.owner, c.ord
         LIMIT ?9",
    )?;
    let ids = stmt
        .query_map(
            params![m, ns, q.subject, kinds, q.thread, q.since, q.until, now, n as i64],
            |r| {
                let h: String = r.get(1)?;
                Ok((r.get(0)?, coverage(&h, n_terms)))
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

/// Candidates each list contributes before fusion.
pub fn candidates(k: usize) -> usize {
    (k * 4).max(50)
}

/// Run a query. `qvec` is the query's embedding (needed unless the mode is FTS).
pub(crate) fn recall(
    conn: &Connection,
    index: &VecIndex,
    q: &Query,
    qvec: Option<&Quantized>,
    now: i64,
) -> Result<Vec<Hit>> {
    let n = candidates(q.k);
    let vector = || match (q.mode, qvec) {
        (Mode::Fts, _) | (_, None) => Vec::new(),
        (_, Some(v)) => {
            let filter = VecFilter {
                namespaces: &q.namespaces,
                subject: q.subject.as_deref(),
                kinds: &q.kinds,
                thread: q.thread.as_deref(),
                since: q.since,
                until: q.until,
                now,
            };
            let mut hits = index.search(v, n, &filter);
            if let Some(min) = q.min_cosine {
                hits.retain(|(_, c)| *c >= min);
            }
            hits
        }
    };
    // Hybrid: the vector scan runs on its own thread while SQLite answers the BM25 query.
    let (lex, vec) = match (q.mode, qvec) {
        (Mode::Vector, _) => (Vec::new(), vector()),
        (Mode::Fts, _) | (_, None) => (fts(conn, q, n, now)?, Vec::new()),
        (Mode::Hybrid, Some(_)) => std::thread::scope(|s| -> Result<_> {
            let scan = s.spawn(vector);
            let lex = fts(conn, q, n, now);
            // The scan cannot panic short of a bug; the vector list is then empty.
            let vec = scan.join().unwrap_or_default();
            Ok((lex?, vec))
        })?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_counts_distinct_highlighted_words() {
        let h = "the \u{1}Router\u{2} admin \u{1}page\u{2} of the \u{1}router\u{2}";
        assert!((coverage(h, 4) - 0.5).abs() < 1e-9);
        assert!((coverage(h, 1) - 1.0).abs() < 1e-9);
        assert_eq!(coverage("no match", 3), 0.0);
    }

    #[test]
    fn fts_query_quotes_words_and_drops_stopwords_and_syntax() {
        assert_eq!(
            fts_query("What is my home-airport? NEAR(x) \"AND\"").as_deref(),
            Some("\"home\" OR \"airport\" OR \"near\" OR \"x\"")
        );
        assert_eq!(fts_query("the of and"), None);
        assert_eq!(fts_query("Zürich zürich").as_deref(), Some("\"zürich\""));
    }
}
