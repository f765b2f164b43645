//! The one error type of the runtime crate.

use thiserror::Error;

use crate::plan::Diagnostics;

/// Everything the runtime can fail with. CLI code adds context with anyhow at the edge.
#[derive(Debug, Error)]
pub enum Error {
    /// The plan has problems; each has a position.
    #[error("{0}")]
    Plan(Diagnostics),
    /// Inputs do not match the plan's inputs schema.
    #[error("invalid inputs:\n  {}", .0.join("\n  "))]
    Inputs(Vec<String>),
    /// SQLite reported an error.
    #[error("journal database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Migrations could not be applied.
    #[error("journal migration failed: {0}\n  hint: {1}")]
    Migrate(sqlx::migrate::MigrateError, String),
    /// sqlx reported an error while opening the database.
    #[error("journal database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// The journal writer thread is gone (the process is shutting down).
    #[error("the journal is closed")]
    JournalClosed,
    /// No run with that id.
    #[error("no run `{0}` in this database")]
    RunNotFound(String),
    /// The run cannot be resumed in its state.
    #[error("run `{id}` cannot be resumed: {why}")]
    NotResumable { id: String, why: String },
    /// Filesystem problem.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Stored data could not be decoded (corrupted or written by a newer version).
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    /// A step failed and nothing handled it.
    #[error("step `{key}` failed: {message}")]
    StepFailed { key: String, message: String },
    /// The run was cancelled.
    #[error("run cancelled")]
    Cancelled,
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// Result alias for the runtime crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
