//! The writer thread: group commit of queued operations with cached statements.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

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
    /// An attempt of a step began.
    StepStarted {
        run: String,
        key: String,
        step_id: String,
        kind: &'static str,
        attempt: u32,
        seq: i64,
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
    // Checkpoints run on their own thread (see `checkpointer`), never inside a step's commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// WAL pages after which the checkpointer copies the log back into the database.
const CHECKPOINT_PAGES: i64 = 4000;

pub(super) fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<Msg> = Vec::with_capacity(256);
    while let Some(first) = next_message(&rx) {
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

/// The next queued write. A run that just got its commit acknowledged usually sends the next
/// one within microseconds, so spin briefly before sleeping: waking a parked thread costs
/// more than the spin.
fn next_message(rx: &mpsc::Receiver<Msg>) -> Option<Msg> {
    let spin_until = std::time::Instant::now() + std::time::Duration::from_micros(SPIN_MICROS);
    loop {
        match rx.try_recv() {
            Ok(m) => return Some(m),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if std::time::Instant::now() < spin_until => std::hint::spin_loop(),
            Err(mpsc::TryRecvError::Empty) => return rx.recv().ok(),
        }
    }
}

/// How long the writer spins for the next write before it parks.
const SPIN_MICROS: u64 = 40;

/// Copies the WAL back into the database file from its own connection, so commits never
/// pay for it. Passive: it never waits for or blocks the writer. It looks at the log with a
/// `NOOP` checkpoint (no I/O) and copies once enough pages have piled up.
pub(super) fn checkpointer(path: &Path, stop: Arc<AtomicBool>) {
    let Ok(conn) = Connection::open(path) else { return };
    let _ = conn.busy_timeout(std::time::Duration::from_millis(100));
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let pending = conn
            .query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| {
                Ok(r.get::<_, i64>(1)? - r.get::<_, i64>(2)?)
            })
            .unwrap_or(0);
        if pending >= CHECKPOINT_PAGES {
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
    }
    // Leave a short log behind for the next process.
    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
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

/// One row of `events`.
struct Ev<'a> {
    run: &'a str,
    seq: i64,
    at: i64,
    kind: &'a str,
    key: Option<&'a str>,
    step_id: Option<&'a str>,
    step_kind: Option<&'a str>,
    attempt: Option<u32>,
    status: Option<&'a str>,
    output: Option<&'a str>,
    error: Option<&'a str>,
}

impl<'a> Ev<'a> {
    fn new(run: &'a str, seq: i64, at: i64, kind: &'a str) -> Self {
        Ev {
            run,
            seq,
            at,
            kind,
            key: None,
            step_id: None,
            step_kind: None,
            attempt: None,
            status: None,
            output: None,
            error: None,
        }
    }

    fn insert(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO events (run_id, seq, at, kind, key, step_id, step_kind, attempt, status, output, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            self.run,
            self.seq,
            self.at,
            self.kind,
            self.key,
            self.step_id,
            self.step_kind,
            self.attempt,
            self.status,
            self.output,
            self.error
        ])?;
        Ok(())
    }
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
            Ev::new(id, 0, *at, "run_created").insert(conn)
        }
        Op::RunResumed { id, pid, seq, at } => {
            conn.prepare_cached(
                "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, updated_at = ?2, pid = ?3 WHERE id = ?1",
            )?
            .execute(params![id, at, pid])?;
            Ev::new(id, *seq, *at, "run_resumed").insert(conn)
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
            Ev {
                status: Some(status),
                error: error.as_deref(),
                ..Ev::new(id, *seq, *at, "run_finished")
            }
            .insert(conn)
        }
        Op::StepStarted {
            run,
            key,
            step_id,
            kind,
            attempt,
            seq,
            at,
        } => Ev {
            key: Some(key),
            step_id: Some(step_id),
            step_kind: Some(kind),
            attempt: Some(*attempt),
            status: Some("running"),
            ..Ev::new(run, *seq, *at, "step_started")
        }
        .insert(conn),
        Op::AttemptFailed {
            run,
            key,
            attempt,
            error,
            seq,
            at,
        } => Ev {
            key: Some(key),
            attempt: Some(*attempt),
            error: Some(error),
            ..Ev::new(run, *seq, *at, "attempt_failed")
        }
        .insert(conn),
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
        } => Ev {
            key: Some(key),
            step_id: Some(step_id),
            step_kind: Some(kind),
            attempt: Some(*attempt),
            status: Some(status),
            output: output.as_deref(),
            error: error.as_deref(),
            ..Ev::new(run, *seq, *at, "step_finished")
        }
        .insert(conn),
    }
}
