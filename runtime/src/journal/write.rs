//! The writer thread: group commit of queued operations with cached statements.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::{Connection, params};

use super::{Durability, Msg};
use crate::error::{Error, Result};

/// One write to the journal. Every variant also appends an event to the run's timeline.
#[derive(Debug, Clone)]
pub enum Op {
    /// A new run.
    RunCreated {
        id: String,
        plan_name: String,
        plan_path: Option<String>,
        plan_source: String,
        plan_hash: String,
        inputs: String,
        pid: u32,
        parent: Option<String>,
        at: i64,
    },
    /// A run picked up again by a process (resume).
    RunResumed { id: String, pid: u32, seq: i64, at: i64 },
    /// A run ended.
    RunFinished {
        id: String,
        status: &'static str,
        outputs: Option<String>,
        error: Option<String>,
        seq: i64,
        at: i64,
    },
    /// An attempt of a step began. `seq` orders steps; `ev` is the event's sequence number.
    StepStarted {
        run: String,
        key: String,
        step_id: String,
        kind: &'static str,
        attempt: u32,
        seq: i64,
        ev: i64,
        at: i64,
    },
    /// An attempt failed (the step may retry).
    AttemptFailed {
        run: String,
        key: String,
        attempt: u32,
        error: String,
        seq: i64,
        at: i64,
    },
    /// A step reached a final state: `succeeded`, `failed`, `continued` (failed, run goes
    /// on), or `skipped`.
    StepFinished {
        run: String,
        key: String,
        step_id: String,
        kind: &'static str,
        status: &'static str,
        attempt: u32,
        output: Option<String>,
        error: Option<String>,
        seq: i64,
        at: i64,
    },
}

pub(super) fn open_writer(path: &Path, durability: Durability) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", durability.pragma())?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

pub(super) fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<Msg> = Vec::with_capacity(256);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let result = apply_batch(&mut conn, &batch);
        for m in batch.drain(..) {
            if let Some(ack) = m.ack {
                let _ = ack.send(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(Error::Corrupt(format!("journal write failed: {e}"))),
                });
            }
        }
        if let Err(e) = result {
            tracing::error!("journal write failed: {e}");
        }
    }
}

fn apply_batch(conn: &mut Connection, batch: &[Msg]) -> rusqlite::Result<()> {
    if batch.iter().all(|m| m.ops.is_empty()) {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for m in batch {
        for op in &m.ops {
            apply(&tx, op)?;
        }
    }
    tx.commit()
}

fn event(
    conn: &Connection,
    run: &str,
    seq: i64,
    at: i64,
    kind: &str,
    key: Option<&str>,
    data: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO events (run_id, seq, at, kind, key, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![run, seq, at, kind, key, data])?;
    Ok(())
}

fn apply(conn: &Connection, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::RunCreated {
            id,
            plan_name,
            plan_path,
            plan_source,
            plan_hash,
            inputs,
            pid,
            parent,
            at,
        } => {
            conn.prepare_cached(
                "INSERT INTO runs (id, plan_name, plan_path, plan_source, plan_hash, inputs, status, created_at, updated_at, pid, parent_run_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7, ?7, ?8, ?9)",
            )?
            .execute(params![id, plan_name, plan_path, plan_source, plan_hash, inputs, at, pid, parent])?;
            event(conn, id, 0, *at, "run_created", None, None)
        }
        Op::RunResumed { id, pid, seq, at } => {
            conn.prepare_cached(
                "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, updated_at = ?2, pid = ?3 WHERE id = ?1",
            )?
            .execute(params![id, at, pid])?;
            event(conn, id, *seq, *at, "run_resumed", None, None)
        }
        Op::RunFinished {
            id,
            status,
            outputs,
            error,
            seq,
            at,
        } => {
            conn.prepare_cached(
                "UPDATE runs SET status = ?2, outputs = ?3, error = ?4, updated_at = ?5, finished_at = ?5, pid = NULL WHERE id = ?1",
            )?
            .execute(params![id, status, outputs, error, at])?;
            let kind = if *status == "succeeded" {
                "run_succeeded"
            } else {
                "run_failed"
            };
            event(conn, id, *seq, *at, kind, None, error.as_deref())
        }
        Op::StepStarted {
            run,
            key,
            step_id,
            kind,
            attempt,
            seq,
            ev,
            at,
        } => {
            conn.prepare_cached(
                "INSERT INTO steps (run_id, key, step_id, kind, status, attempts, seq, started_at)
                 VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7)
                 ON CONFLICT (run_id, key) DO UPDATE SET status = 'running', attempts = ?5, error = NULL, finished_at = NULL",
            )?
            .execute(params![run, key, step_id, kind, attempt, seq, at])?;
            conn.prepare_cached(
                "INSERT OR REPLACE INTO attempts (run_id, key, attempt, status, started_at) VALUES (?1, ?2, ?3, 'running', ?4)",
            )?
            .execute(params![run, key, attempt, at])?;
            event(conn, run, *ev, *at, "step_started", Some(key), None)
        }
        Op::AttemptFailed {
            run,
            key,
            attempt,
            error,
            seq,
            at,
        } => {
            conn.prepare_cached(
                "UPDATE attempts SET status = 'failed', finished_at = ?4, error = ?5 WHERE run_id = ?1 AND key = ?2 AND attempt = ?3",
            )?
            .execute(params![run, key, attempt, at, error])?;
            event(conn, run, *seq, *at, "attempt_failed", Some(key), Some(error))
        }
        Op::StepFinished {
            run,
            key,
            step_id,
            kind,
            status,
            attempt,
            output,
            error,
            seq,
            at,
        } => {
            // Skipped steps never started: insert their row here.
            conn.prepare_cached(
                "INSERT INTO steps (run_id, key, step_id, kind, status, attempts, seq, started_at, finished_at, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)
                 ON CONFLICT (run_id, key) DO UPDATE SET status = ?5, attempts = ?6, finished_at = ?8, error = ?9",
            )?
            .execute(params![run, key, step_id, kind, status, attempt, seq, at, error])?;
            if *attempt > 0 {
                let a_status = if *status == "succeeded" { "succeeded" } else { "failed" };
                conn.prepare_cached(
                    "UPDATE attempts SET status = ?4, finished_at = ?5, error = ?6 WHERE run_id = ?1 AND key = ?2 AND attempt = ?3",
                )?
                .execute(params![run, key, attempt, a_status, at, error])?;
            }
            if let Some(out) = output {
                conn.prepare_cached("INSERT OR REPLACE INTO outputs (run_id, key, value) VALUES (?1, ?2, ?3)")?
                    .execute(params![run, key, out])?;
            }
            let ev = match *status {
                "succeeded" => "step_succeeded",
                "skipped" => "step_skipped",
                "continued" => "step_failed_continued",
                _ => "step_failed",
            };
            event(conn, run, *seq, *at, ev, Some(key), error.as_deref())
        }
    }
}
