//! Reading the journal: runs, steps, attempts, events.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use super::Journal;
use crate::error::{Error, Result};

pub(super) fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

fn parse_json(s: Option<String>) -> Result<Option<Value>> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| Error::Corrupt(e.to_string())))
        .transpose()
}

/// One row of `runs list`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub plan_name: String,
    pub status: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    pub steps_done: i64,
    pub pid: Option<i64>,
}

/// A whole run as stored.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub plan_name: String,
    pub plan_path: Option<String>,
    #[serde(skip)]
    pub plan_source: String,
    pub plan_hash: String,
    pub inputs: Value,
    pub status: String,
    pub outputs: Option<Value>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    pub pid: Option<i64>,
    pub parent_run_id: Option<String>,
}

/// One step of a run, with its output.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub key: String,
    pub step_id: String,
    pub kind: String,
    pub status: String,
    pub attempts: u32,
    pub seq: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    pub output: Option<Value>,
}

/// One attempt of a step.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub key: String,
    pub attempt: u32,
    pub status: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
}

/// One event of a run's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub key: Option<String>,
    pub data: Option<String>,
}

pub(crate) fn run(conn: &Connection, id: &str) -> Result<RunRecord> {
    let row = conn
        .query_row(
            "SELECT id, plan_name, plan_path, plan_source, plan_hash, inputs, status, outputs, error,
                    created_at, updated_at, finished_at, pid, parent_run_id
             FROM runs WHERE id = ?1",
            params![id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, i64>(10)?,
                    r.get::<_, Option<i64>>(11)?,
                    r.get::<_, Option<i64>>(12)?,
                    r.get::<_, Option<String>>(13)?,
                ))
            },
        )
        .optional()?;
    let Some(r) = row else {
        return Err(Error::RunNotFound(id.to_string()));
    };
    Ok(RunRecord {
        id: r.0,
        plan_name: r.1,
        plan_path: r.2,
        plan_source: r.3,
        plan_hash: r.4,
        inputs: serde_json::from_str(&r.5).map_err(|e| Error::Corrupt(e.to_string()))?,
        status: r.6,
        outputs: parse_json(r.7)?,
        error: r.8,
        created_at: r.9,
        updated_at: r.10,
        finished_at: r.11,
        pid: r.12,
        parent_run_id: r.13,
    })
}

/// One row of `events`, as stored.
struct RawEvent {
    seq: i64,
    at: i64,
    kind: String,
    key: Option<String>,
    step_id: Option<String>,
    step_kind: Option<String>,
    attempt: Option<u32>,
    status: Option<String>,
    output: Option<String>,
    error: Option<String>,
}

fn raw_events(conn: &Connection, id: &str) -> Result<Vec<RawEvent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at, kind, key, step_id, step_kind, attempt, status, output, error
         FROM events WHERE run_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        Ok(RawEvent {
            seq: r.get(0)?,
            at: r.get(1)?,
            kind: r.get(2)?,
            key: r.get(3)?,
            step_id: r.get(4)?,
            step_kind: r.get(5)?,
            attempt: r.get(6)?,
            status: r.get(7)?,
            output: r.get(8)?,
            error: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Fold a run's events into its steps (in the order they first started) and attempts.
fn fold(events: Vec<RawEvent>) -> Result<(Vec<StepRecord>, Vec<AttemptRecord>)> {
    let mut steps: Vec<StepRecord> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut attempts: Vec<AttemptRecord> = Vec::new();
    let mut attempt_index: std::collections::HashMap<(String, u32), usize> = std::collections::HashMap::new();
    for e in events {
        let Some(key) = e.key else { continue };
        let i = *index.entry(key.clone()).or_insert_with(|| {
            steps.push(StepRecord {
                key: key.clone(),
                step_id: e.step_id.clone().unwrap_or_default(),
                kind: e.step_kind.clone().unwrap_or_default(),
                status: String::new(),
                attempts: 0,
                seq: e.seq,
                started_at: None,
                finished_at: None,
                error: None,
                output: None,
            });
            steps.len() - 1
        });
        let s = &mut steps[i];
        let attempt = e.attempt.unwrap_or(0);
        match e.kind.as_str() {
            "step_started" => {
                s.status = "running".into();
                s.attempts = s.attempts.max(attempt);
                s.started_at.get_or_insert(e.at);
                s.finished_at = None;
                s.error = None;
                attempt_index.insert((key.clone(), attempt), attempts.len());
                attempts.push(AttemptRecord {
                    key,
                    attempt,
                    status: "running".into(),
                    started_at: e.at,
                    finished_at: None,
                    error: None,
                });
            }
            "attempt_failed" => {
                if let Some(&a) = attempt_index.get(&(key, attempt)) {
                    attempts[a].status = "failed".into();
                    attempts[a].finished_at = Some(e.at);
                    attempts[a].error = e.error;
                }
            }
            "step_finished" => {
                let status = e.status.unwrap_or_default();
                s.started_at.get_or_insert(e.at);
                s.finished_at = Some(e.at);
                s.attempts = s.attempts.max(attempt);
                s.error = e.error.clone();
                s.output = parse_json(e.output)?;
                if let Some(&a) = attempt_index.get(&(key, attempt)) {
                    attempts[a].status = if status == "succeeded" {
                        status.clone()
                    } else {
                        "failed".into()
                    };
                    attempts[a].finished_at = Some(e.at);
                    attempts[a].error = e.error;
                }
                s.status = status;
            }
            _ => {}
        }
    }
    Ok((steps, attempts))
}

pub(crate) fn steps(conn: &Connection, id: &str) -> Result<Vec<StepRecord>> {
    Ok(fold(raw_events(conn, id)?)?.0)
}

pub(crate) fn events(conn: &Connection, id: &str) -> Result<Vec<EventRecord>> {
    let mut stmt =
        conn.prepare("SELECT seq, at, kind, key, COALESCE(error, status) FROM events WHERE run_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map(params![id], |r| {
        Ok(EventRecord {
            seq: r.get(0)?,
            at: r.get(1)?,
            kind: r.get(2)?,
            key: r.get(3)?,
            data: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The highest event sequence number of a run.
pub(crate) fn max_seq(conn: &Connection, id: &str) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?1",
        params![id],
        |r| r.get(0),
    )?)
}

impl Journal {
    /// Most recent runs first.
    pub async fn list_runs(&self, limit: u32, status: Option<String>) -> Result<Vec<RunSummary>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT r.id, r.plan_name, r.status, r.created_at, r.finished_at, r.error, r.pid,
                        (SELECT COUNT(DISTINCT e.key) FROM events e WHERE e.run_id = r.id AND e.kind = 'step_finished'
                           AND e.status IN ('succeeded','skipped','continued'))
                 FROM runs r WHERE (?2 IS NULL OR r.status = ?2) AND r.parent_run_id IS NULL
                 ORDER BY r.created_at DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![limit, status], |r| {
                Ok(RunSummary {
                    id: r.get(0)?,
                    plan_name: r.get(1)?,
                    status: r.get(2)?,
                    created_at: r.get(3)?,
                    finished_at: r.get(4)?,
                    error: r.get(5)?,
                    pid: r.get(6)?,
                    steps_done: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// One run.
    pub async fn get_run(&self, id: &str) -> Result<RunRecord> {
        let id = id.to_string();
        self.read(move |conn| run(conn, &id)).await
    }

    /// A run with its steps, attempts and events.
    pub async fn run_details(
        &self,
        id: &str,
    ) -> Result<(RunRecord, Vec<StepRecord>, Vec<AttemptRecord>, Vec<EventRecord>)> {
        let id = id.to_string();
        self.read(move |conn| {
            let (steps, attempts) = fold(raw_events(conn, &id)?)?;
            Ok((run(conn, &id)?, steps, attempts, events(conn, &id)?))
        })
        .await
    }

    /// Resolve a run id or a unique prefix of one.
    pub async fn resolve_id(&self, prefix: &str) -> Result<String> {
        let p = prefix.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare("SELECT id FROM runs WHERE id = ?1 OR id LIKE ?1 || '%' LIMIT 3")?;
            let ids: Vec<String> = stmt
                .query_map(params![p], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            match ids.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(Error::RunNotFound(p.clone())),
                many if many.contains(&p) => Ok(p.clone()),
                _ => Err(Error::RunNotFound(format!(
                    "{p} (ambiguous prefix; give more characters)"
                ))),
            }
        })
        .await
    }
}
