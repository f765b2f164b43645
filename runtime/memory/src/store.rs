//! Writes, as plain functions on a connection inside the writer's transaction.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::retention;
use crate::types::{Fact, Forget, Kind, Note, Removed};

/// One chunk ready to insert: its text and, if embedded, its stored embedding.
#[derive(Debug, Clone)]
pub(crate) struct ChunkIn {
    pub text: String,
    pub embedding: Option<Vec<u8>>,
}

#[allow(clippy::too_many_arguments)]
fn insert_chunk(
    conn: &Connection,
    kind: Kind,
    owner: &str,
    ord: i64,
    namespace: &str,
    subject: Option<&str>,
    created_at: i64,
    expires_at: Option<i64>,
    c: &ChunkIn,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO mem_chunks (kind, owner, ord, namespace, subject, created_at, expires_at, text, embedding)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        kind.as_str(),
        owner,
        ord,
        namespace,
        subject,
        created_at,
        expires_at,
        c.text,
        c.embedding
    ])?;
    Ok(())
}

/// Insert a note and its chunks. `Ok(false)` if a note with this id already exists (an
/// import seen twice).
pub(crate) fn insert_note(conn: &Connection, n: &Note, chunks: &[ChunkIn]) -> Result<bool> {
    let tags = if n.tags.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&n.tags).map_err(|e| Error::Invalid(e.to_string()))?)
    };
    let added = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO mem_notes (id, namespace, subject, title, body, tags, source, run_id, step, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            n.id,
            n.namespace,
            n.subject,
            n.title,
            n.text,
            tags,
            n.source,
            n.provenance.run_id,
            n.provenance.step,
            n.created_at,
            n.expires_at
        ])?;
    if added == 0 {
        return Ok(false);
    }
    for (i, c) in chunks.iter().enumerate() {
        insert_chunk(
            conn,
            Kind::Note,
            &n.id,
            i as i64,
            &n.namespace,
            n.subject.as_deref(),
            n.created_at,
            n.expires_at,
            c,
        )?;
    }
    Ok(true)
}

/// The recall text of a fact.
pub fn fact_text(subject: &str, key: &str, value: &str) -> String {
    format!("{subject} {}: {value}", key.replace(['_', '.'], " "))
}

/// The current version of a fact key.
pub(crate) fn current_fact(conn: &Connection, ns: &str, subject: &str, key: &str) -> Result<Option<Fact>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {FACT_COLS} FROM mem_facts WHERE namespace = ?1 AND subject = ?2 AND key = ?3 AND superseded_at IS NULL"
    ))?;
    Ok(stmt.query_row(params![ns, subject, key], fact_row).optional()?)
}

/// Outcome of [`put_fact`].
pub(crate) enum PutFact {
    Added {
        superseded: Option<String>,
    },
    Unchanged {
        id: String,
    },
    /// An import of a version older than the current one: kept as history.
    History,
    /// Already there (an import seen twice).
    Exists,
}

/// Store a fact version. A current version with another value is superseded (kept as
/// history, taken out of recall); one with the same value makes this a no-op. A version that
/// arrives already superseded (import) goes straight to history.
pub(crate) fn put_fact(conn: &Connection, f: &Fact, chunk: &ChunkIn) -> Result<PutFact> {
    let exists: bool = conn
        .prepare_cached("SELECT 1 FROM mem_facts WHERE id = ?1")?
        .query_row(params![f.id], |_| Ok(()))
        .optional()?
        .is_some();
    if exists {
        return Ok(PutFact::Exists);
    }
    let insert = |f: &Fact| -> Result<()> {
        conn.prepare_cached(
            "INSERT INTO mem_facts (id, namespace, subject, key, value, run_id, step, created_at, expires_at, superseded_at, superseded_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            f.id,
            f.namespace,
            f.subject,
            f.key,
            f.value,
            f.provenance.run_id,
            f.provenance.step,
            f.created_at,
            f.expires_at,
            f.superseded_at,
            f.superseded_by
        ])?;
        Ok(())
    };
    if f.superseded_at.is_some() {
        insert(f)?;
        return Ok(PutFact::History);
    }
    let mut superseded = None;
    if let Some(cur) = current_fact(conn, &f.namespace, &f.subject, &f.key)? {
        if cur.value == f.value && f.created_at >= cur.created_at {
            return Ok(PutFact::Unchanged { id: cur.id });
        }
        if cur.created_at > f.created_at {
            // An older version arriving late (import): it becomes history of the newer one.
            let mut old = f.clone();
            old.superseded_at = Some(cur.created_at);
            old.superseded_by = Some(cur.id);
            insert(&old)?;
            return Ok(PutFact::History);
        }
        conn.prepare_cached("UPDATE mem_facts SET superseded_at = ?2, superseded_by = ?3 WHERE id = ?1")?
            .execute(params![cur.id, f.created_at, f.id])?;
        conn.prepare_cached("DELETE FROM mem_chunks WHERE owner = ?1")?
            .execute(params![cur.id])?;
        superseded = Some(cur.id);
    }
    insert(f)?;
    insert_chunk(
        conn,
        Kind::Fact,
        &f.id,
        0,
        &f.namespace,
        Some(&f.subject),
        f.created_at,
        f.expires_at,
        chunk,
    )?;
    Ok(PutFact::Added { superseded })
}

pub(crate) const FACT_COLS: &str =
    "id, namespace, subject, key, value, run_id, step, created_at, expires_at, superseded_at, superseded_by";

pub(crate) fn fact_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Fact> {
    Ok(Fact {
        id: r.get(0)?,
        namespace: r.get(1)?,
        subject: r.get(2)?,
        key: r.get(3)?,
        value: r.get(4)?,
        provenance: crate::types::Provenance {
            run_id: r.get(5)?,
            step: r.get(6)?,
        },
        created_at: r.get(7)?,
        expires_at: r.get(8)?,
        superseded_at: r.get(9)?,
        superseded_by: r.get(10)?,
    })
}

pub(crate) const NOTE_COLS: &str =
    "id, namespace, subject, title, body, tags, source, run_id, step, created_at, expires_at";

pub(crate) fn note_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Note> {
    let tags: Option<String> = r.get(5)?;
    Ok(Note {
        id: r.get(0)?,
        namespace: r.get(1)?,
        subject: r.get(2)?,
        title: r.get(3)?,
        text: r.get(4)?,
        tags: tags.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default(),
        source: r.get(6)?,
        provenance: crate::types::Provenance {
            run_id: r.get(7)?,
            step: r.get(8)?,
        },
        created_at: r.get(9)?,
        expires_at: r.get(10)?,
    })
}

/// Delete one note with its chunks.
pub(crate) fn delete_note(conn: &Connection, id: &str) -> Result<usize> {
    conn.prepare_cached("DELETE FROM mem_chunks WHERE owner = ?1")?
        .execute(params![id])?;
    Ok(conn
        .prepare_cached("DELETE FROM mem_notes WHERE id = ?1")?
        .execute(params![id])?)
}

/// Delete every version of a fact key with its chunk.
pub(crate) fn delete_fact_key(conn: &Connection, ns: &str, subject: &str, key: &str) -> Result<usize> {
    conn.prepare_cached(
        "DELETE FROM mem_chunks WHERE kind = 'fact' AND owner IN
           (SELECT id FROM mem_facts WHERE namespace = ?1 AND subject = ?2 AND key = ?3)",
    )?
    .execute(params![ns, subject, key])?;
    Ok(conn
        .prepare_cached("DELETE FROM mem_facts WHERE namespace = ?1 AND subject = ?2 AND key = ?3")?
        .execute(params![ns, subject, key])?)
}

/// Delete a thread, its messages and their chunks. Returns the messages removed.
pub(crate) fn delete_thread(conn: &Connection, id: &str) -> Result<usize> {
    conn.prepare_cached("DELETE FROM mem_chunks WHERE kind = 'message' AND owner = ?1")?
        .execute(params![id])?;
    let n = conn
        .prepare_cached("DELETE FROM mem_messages WHERE thread_id = ?1")?
        .execute(params![id])?;
    conn.prepare_cached("DELETE FROM mem_threads WHERE id = ?1")?
        .execute(params![id])?;
    Ok(n)
}

/// Resolve an id or unique prefix to (kind, full id).
pub(crate) fn resolve(conn: &Connection, id: &str) -> Result<(Kind, String)> {
    let like = format!("{}%", id.replace(['%', '_'], ""));
    let mut found: Vec<(Kind, String)> = Vec::new();
    for (kind, table) in [
        (Kind::Note, "mem_notes"),
        (Kind::Fact, "mem_facts"),
        (Kind::Message, "mem_threads"),
    ] {
        let mut stmt = conn.prepare_cached(&format!("SELECT id FROM {table} WHERE id = ?1 OR id LIKE ?2 LIMIT 3"))?;
        let ids: Vec<String> = stmt
            .query_map(params![id, like], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if ids.iter().any(|i| i == id) {
            return Ok((kind, id.to_string()));
        }
        found.extend(ids.into_iter().map(|i| (kind, i)));
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::NotFound(format!("no memory or thread with id `{id}`"))),
        _ => Err(Error::NotFound(format!(
            "`{id}` matches several memories ({}); give more characters",
            found.iter().map(|(_, i)| i.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Forget what `f` selects.
pub(crate) fn forget(conn: &Connection, f: &Forget) -> Result<Removed> {
    let mut removed = Removed::default();
    for id in &f.ids {
        match resolve(conn, id)? {
            (Kind::Note, id) => removed.notes += delete_note(conn, &id)?,
            (Kind::Fact, id) => {
                let fact: Fact = conn.query_row(
                    &format!("SELECT {FACT_COLS} FROM mem_facts WHERE id = ?1"),
                    params![id],
                    fact_row,
                )?;
                removed.facts += delete_fact_key(conn, &fact.namespace, &fact.subject, &fact.key)?;
            }
            (Kind::Message, id) => {
                removed.messages += delete_thread(conn, &id)?;
                removed.threads += 1;
            }
        }
    }
    if f.namespace.is_some() || f.subject.is_some() || f.key.is_some() || f.before.is_some() {
        if f.key.is_some() && f.subject.is_none() {
            return Err(Error::Invalid("forgetting by key needs the fact's subject too".into()));
        }
        let filter =
            "(?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR subject = ?2) AND (?4 IS NULL OR created_at < ?4)";
        let notes: Vec<String> = if f.key.is_none() {
            conn.prepare(&format!("SELECT id FROM mem_notes WHERE {filter} AND ?3 IS NULL"))?
                .query_map(params![f.namespace, f.subject, f.key, f.before], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        } else {
            Vec::new()
        };
        for id in notes {
            removed.notes += delete_note(conn, &id)?;
        }
        let keys: Vec<(String, String, String)> = conn
            .prepare(&format!(
                "SELECT DISTINCT namespace, subject, key FROM mem_facts WHERE {filter} AND (?3 IS NULL OR key = ?3)"
            ))?
            .query_map(params![f.namespace, f.subject, f.key, f.before], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (ns, s, k) in keys {
            removed.facts += delete_fact_key(conn, &ns, &s, &k)?;
        }
    }
    Ok(removed)
}

/// Enforce the retention policy of `namespace` (after a write to it).
pub(crate) fn after_write(conn: &Connection, namespace: &str, now: i64) -> Result<Removed> {
    retention::enforce(conn, namespace, now)
}
