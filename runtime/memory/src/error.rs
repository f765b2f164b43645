//! The one error type of the memory crate.

use std::path::PathBuf;

use thiserror::Error;

/// Everything memory operations can fail with.
#[derive(Debug, Error)]
pub enum Error {
    /// SQLite reported an error.
    #[error("memory database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Migrations could not be applied.
    #[error("memory migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// sqlx reported an error while opening the database.
    #[error("memory database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// Filesystem problem.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The embedding model is missing, broken or failed.
    #[error("embedding model: {0}")]
    Model(String),
    /// A write could not be committed.
    #[error("memory write failed: {0}")]
    Write(String),
    /// The writer or embedding thread is gone (the process is shutting down).
    #[error("memory is closed")]
    Closed,
    /// The request makes no sense as given.
    #[error("{0}")]
    Invalid(String),
    /// No memory, fact or thread with that id.
    #[error("{0}")]
    NotFound(String),
    /// A line of an import file is not a valid record; nothing was imported.
    #[error("{file}:{line}: {message}; nothing was imported")]
    Import { file: String, line: usize, message: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for the memory crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
