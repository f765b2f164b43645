//! The run journal in SQLite.
//!
//! Schema changes are sqlx migrations in `migrations/`, applied when the journal opens. Writes
//! go to one dedicated thread that owns a rusqlite connection with cached statements: it takes
//! every write queued since its last commit and commits them together (group commit), then
//! acknowledges each. A step waits for that acknowledgement before anything that depends on
//! it starts, so a finished step is on disk before the next one begins. Reads use their own
//! connections on blocking threads (WAL lets them run beside the writer). Nothing here runs
//! SQLite on the async executor's threads.

mod read;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

pub use read::{AttemptRecord, EventRecord, RunRecord, RunSummary, StepRecord};
pub(crate) use read::{max_seq as read_max_seq, run as read_run, steps as read_steps};
pub use write::Op;

/// How hard each commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a commit survives a killed process; the last commits
    /// may be lost if the machine loses power.
    #[default]
    Normal,
    /// WAL with `synchronous=FULL`: every commit is fsynced.
    Full,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// Now, in Unix microseconds.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

struct Msg {
    ops: Vec<Op>,
    ack: Option<oneshot::Sender<Result<()>>>,
}

struct Inner {
    tx: std::sync::Mutex<Option<mpsc::Sender<Msg>>>,
    threads: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    stop_checkpointer: Arc<std::sync::atomic::AtomicBool>,
    path: PathBuf,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets the writer drain what is queued and exit.
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        self.stop_checkpointer.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut ts) = self.threads.lock() {
            for t in ts.drain(..) {
                let _ = t.join();
            }
        }
    }
}

/// Handle to the journal of one database file. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    // Field order matters: this sender must be dropped before `inner`, whose `Drop` waits
    // for the writer thread to see every sender gone.
    sender: mpsc::Sender<Msg>,
    inner: Arc<Inner>,
}

impl Journal {
    /// Open (creating if needed) the database at `path`, apply migrations, start the writer.
    pub async fn open(path: &Path, durability: Durability) -> Result<Journal> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        }
        migrate(path).await?;
        let conn = write::open_writer(path, durability)?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let catch_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer_catch_up = catch_up.clone();
        let writer = std::thread::Builder::new()
            .name("stepwise-journal".into())
            .spawn(move || write::writer_loop(conn, rx, writer_catch_up))
            .map_err(|e| Error::io("cannot start the journal thread", e))?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, st) = (path.to_path_buf(), stop.clone());
        let checkpointer = std::thread::Builder::new()
            .name("stepwise-checkpoint".into())
            .spawn(move || write::checkpointer(&p, st, catch_up))
            .map_err(|e| Error::io("cannot start the checkpoint thread", e))?;
        Ok(Journal {
            inner: Arc::new(Inner {
                tx: std::sync::Mutex::new(Some(tx.clone())),
                threads: std::sync::Mutex::new(vec![writer, checkpointer]),
                stop_checkpointer: stop,
                path: path.to_path_buf(),
            }),
            sender: tx,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Queue writes without waiting for them to be committed. They are committed in order,
    /// before or together with any write queued later.
    pub fn submit(&self, ops: Vec<Op>) {
        let _ = self.sender.send(Msg { ops, ack: None });
    }

    /// Queue writes and wait until they are committed.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<()> {
        let (ack, done) = oneshot::channel();
        self.sender
            .send(Msg { ops, ack: Some(ack) })
            .map_err(|_| Error::JournalClosed)?;
        done.await.map_err(|_| Error::JournalClosed)?
    }

    /// Run a read on a blocking thread with a fresh read-only connection.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = read::open_reader(&path)?;
            f(&conn)
        })
        .await
        .map_err(|e| Error::Corrupt(format!("read task failed: {e}")))?
    }

    /// Wait until everything queued so far is committed.
    pub async fn flush(&self) -> Result<()> {
        self.commit(Vec::new()).await
    }
}

/// Apply the migrations in `migrations/` with sqlx.
async fn migrate(path: &Path) -> Result<()> {
    use sqlx::ConnectOptions;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await?;
    sqlx::migrate!("../migrations").run(&mut conn).await.map_err(|e| {
        let hint = match e {
            sqlx::migrate::MigrateError::VersionMismatch(_) | sqlx::migrate::MigrateError::VersionMissing(_) => {
                format!(
                    "{} was written by a different (development) build of stepwise; keep it aside and use a new \
                 file with --db or STEPWISE_DB",
                    path.display()
                )
            }
            _ => format!("{} could not be brought up to date", path.display()),
        };
        Error::Migrate(e, hint)
    })?;
    use sqlx::Connection;
    conn.close().await?;
    Ok(())
}

/// JSON text of a value, for storage.
pub(crate) fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}
