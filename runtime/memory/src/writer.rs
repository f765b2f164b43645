//! The writer thread. Every write is a closure run on one dedicated thread that owns a
//! rusqlite connection. The thread takes all writes queued since its last commit and runs them
//! in one transaction (group commit), each inside its own savepoint so a failing write is
//! rolled back alone; each caller hears back only once its write is committed.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::db::{Durability, open_writer};
use crate::error::{Error, Result};

trait Job: Send {
    /// Run the write; false if it failed (its savepoint is then rolled back).
    fn apply(&mut self, conn: &Connection) -> bool;
    /// Report the outcome once the transaction is committed (or failed).
    fn finish(self: Box<Self>, commit: std::result::Result<(), String>);
}

struct Task<T, F> {
    f: Option<F>,
    out: Option<Result<T>>,
    ack: oneshot::Sender<Result<T>>,
}

impl<T: Send, F: FnOnce(&Connection) -> Result<T> + Send> Job for Task<T, F> {
    fn apply(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else { return false };
        let r = f(conn);
        let ok = r.is_ok();
        self.out = Some(r);
        ok
    }

    fn finish(self: Box<Self>, commit: std::result::Result<(), String>) {
        let r = match (self.out, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (_, Err(e)) => Err(Error::Write(e)),
            (None, Ok(())) => Err(Error::Write("the write was never run".into())),
        };
        let _ = self.ack.send(r);
    }
}

/// Handle to the writer thread. Dropping the last handle lets the thread drain and exit.
pub(crate) struct Writer {
    tx: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Open the writer connection and start its thread.
    pub(crate) fn start(path: &Path, durability: Durability) -> Result<Writer> {
        let conn = open_writer(path, durability)?;
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("stepwise-memory-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| Error::io("memory writer thread", e))?;
        Ok(Writer { tx })
    }

    /// Run `f` in a write transaction and wait until it is committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (ack, done) = oneshot::channel();
        let task: Box<dyn Job> = Box::new(Task {
            f: Some(f),
            out: None,
            ack,
        });
        self.tx.send(task).map_err(|_| Error::Closed)?;
        done.await.map_err(|_| Error::Closed)?
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(64);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let result = run_batch(&mut conn, &mut batch).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!("memory write failed: {e}");
        }
        for job in batch.drain(..) {
            job.finish(result.clone());
        }
    }
}

fn run_batch(conn: &mut Connection, batch: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for job in batch.iter_mut() {
        let sp = tx.savepoint()?;
        if job.apply(&sp) {
            sp.commit()?;
        } else {
            // The default drop behaviour of a savepoint is to roll back.
            sp.finish()?;
        }
    }
    tx.commit()
}
