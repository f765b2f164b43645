//! Retention: per-namespace limits and time-to-live, enforced inside every write to a
//! namespace and by an explicit garbage collection over all of them.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::store;
use crate::types::Removed;

/// The retention rule of one namespace (`*`: every namespace without its own rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub namespace: String,
    /// Notes plus current facts kept; the oldest are forgotten first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<i64>,
    /// Notes, facts and messages older than this many seconds are forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
}

/// The rule that applies to `namespace`.
pub(crate) fn policy_for(conn: &Connection, namespace: &str) -> Result<Option<Policy>> {
    Ok(conn
        .prepare_cached(
            "SELECT namespace, max_items, ttl_seconds FROM mem_policies WHERE namespace = ?1
             UNION ALL SELECT namespace, max_items, ttl_seconds FROM mem_policies WHERE namespace = '*'
             LIMIT 1",
        )?
        .query_row(params![namespace], |r| {
            Ok(Policy {
                namespace: r.get(0)?,
                max_items: r.get(1)?,
                ttl_seconds: r.get(2)?,
            })
        })
        .optional()?)
}

/// Set (or, with both limits `None`, remove) a namespace's rule.
pub(crate) fn set_policy(conn: &Connection, p: &Policy) -> Result<()> {
    if p.max_items.is_none() && p.ttl_seconds.is_none() {
        conn.execute("DELETE FROM mem_policies WHERE namespace = ?1", params![p.namespace])?;
    } else {
        conn.execute(
            "INSERT INTO mem_policies (namespace, max_items, ttl_seconds) VALUES (?1, ?2, ?3)
             ON CONFLICT (namespace) DO UPDATE SET max_items = ?2, ttl_seconds = ?3",
            params![p.namespace, p.max_items, p.ttl_seconds],
        )?;
    }
    Ok(())
}

/// Every rule.
pub(crate) fn policies(conn: &Connection) -> Result<Vec<Policy>> {
    let mut stmt = conn.prepare("SELECT namespace, max_items, ttl_seconds FROM mem_policies ORDER BY namespace")?;
    let rows = stmt.query_map([], |r| {
        Ok(Policy {
            namespace: r.get(0)?,
            max_items: r.get(1)?,
            ttl_seconds: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Apply `namespace`'s rule now.
pub(crate) fn enforce(conn: &Connection, namespace: &str, now: i64) -> Result<Removed> {
    let mut removed = Removed::default();
    let Some(p) = policy_for(conn, namespace)? else {
        return Ok(removed);
    };
    if let Some(ttl) = p.ttl_seconds {
        let cutoff = now.saturating_sub(ttl.saturating_mul(1_000_000));
        removed.add(&expire(conn, Some(namespace), cutoff)?);
    }
    if let Some(max) = p.max_items {
        // Oldest first among notes and current facts.
        let over: Vec<(String, String)> = conn
            .prepare_cached(
                "SELECT kind, id FROM (
                    SELECT 'note' AS kind, id, created_at FROM mem_notes WHERE namespace = ?1
                    UNION ALL
                    SELECT 'fact', id, created_at FROM mem_facts WHERE namespace = ?1 AND superseded_at IS NULL)
                 ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?2",
            )?
            .query_map(params![namespace, max.max(0)], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (kind, id) in over {
            if kind == "note" {
                removed.notes += store::delete_note(conn, &id)?;
            } else if let Some(f) = conn
                .query_row(
                    &format!("SELECT {} FROM mem_facts WHERE id = ?1", store::FACT_COLS),
                    params![id],
                    store::fact_row,
                )
                .optional()?
            {
                removed.facts += store::delete_fact_key(conn, &f.namespace, &f.subject, &f.key)?;
            }
        }
    }
    Ok(removed)
}

/// Forget what is older than `cutoff` (Unix µs) in `namespace` (or everywhere).
fn expire(conn: &Connection, namespace: Option<&str>, cutoff: i64) -> Result<Removed> {
    let mut removed = Removed::default();
    let notes: Vec<String> = conn
        .prepare_cached("SELECT id FROM mem_notes WHERE (?1 IS NULL OR namespace = ?1) AND created_at < ?2")?
        .query_map(params![namespace, cutoff], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in notes {
        removed.notes += store::delete_note(conn, &id)?;
    }
    conn.prepare_cached(
        "DELETE FROM mem_chunks WHERE kind = 'fact' AND owner IN
           (SELECT id FROM mem_facts WHERE (?1 IS NULL OR namespace = ?1) AND created_at < ?2)",
    )?
    .execute(params![namespace, cutoff])?;
    removed.facts += conn
        .prepare_cached("DELETE FROM mem_facts WHERE (?1 IS NULL OR namespace = ?1) AND created_at < ?2")?
        .execute(params![namespace, cutoff])?;
    removed.messages += expire_messages(conn, namespace, "created_at < ?2", cutoff)?;
    Ok(removed)
}

fn expire_messages(conn: &Connection, namespace: Option<&str>, cond: &str, t: i64) -> Result<usize> {
    let threads = "SELECT id FROM mem_threads WHERE (?1 IS NULL OR namespace = ?1)";
    conn.prepare_cached(&format!(
        "DELETE FROM mem_chunks WHERE kind = 'message' AND owner IN ({threads}) AND {cond}"
    ))?
    .execute(params![namespace, t])?;
    Ok(conn
        .prepare_cached(&format!(
            "DELETE FROM mem_messages WHERE thread_id IN ({threads}) AND {cond}"
        ))?
        .execute(params![namespace, t])?)
}

/// Garbage collection: per-item expiry times, every namespace's rule, and the change log.
pub(crate) fn gc(conn: &Connection, now: i64) -> Result<Removed> {
    let mut removed = Removed::default();
    // Items past their own expiry.
    let notes: Vec<String> = conn
        .prepare("SELECT id FROM mem_notes WHERE expires_at IS NOT NULL AND expires_at <= ?1")?
        .query_map(params![now], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in notes {
        removed.notes += store::delete_note(conn, &id)?;
    }
    conn.execute(
        "DELETE FROM mem_chunks WHERE kind = 'fact' AND expires_at IS NOT NULL AND expires_at <= ?1",
        params![now],
    )?;
    removed.facts += conn.execute(
        "DELETE FROM mem_facts WHERE expires_at IS NOT NULL AND expires_at <= ?1",
        params![now],
    )?;
    let mut namespaces: Vec<String> = conn
        .prepare(
            "SELECT namespace FROM mem_notes UNION SELECT namespace FROM mem_facts
             UNION SELECT namespace FROM mem_threads",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    namespaces.sort();
    for ns in namespaces {
        removed.add(&enforce(conn, &ns, now)?);
    }
    prune_changes(conn)?;
    Ok(removed)
}

/// Keep the change log short; caches that fall behind the pruned part reload fully.
pub(crate) fn prune_changes(conn: &Connection) -> Result<()> {
    conn.execute(
        "DELETE FROM mem_changes WHERE seq < (SELECT MAX(seq) FROM mem_changes) - 50000",
        [],
    )?;
    Ok(())
}
