//! Memory for stepwise agents, in the same SQLite database as the run journal.
//!
//! - **Stores**: conversation threads (messages with roles, tool calls and results, token
//!   counts), facts (`subject.key = value` per namespace with provenance; a newer value
//!   supersedes the older one, which stays as history) and notes (free text, chunked).
//! - **Recall**: BM25 over an in-memory inverted index (MaxScore pruning) and exact cosine
//!   over int8 all-MiniLM-L6-v2 embeddings held in memory, fused by reciprocal rank,
//!   filtered by namespace, subject, kind and time.
//! - **Threads**: all SQLite work runs on the writer thread (group commit) or on blocking
//!   threads; inference runs on the embedding thread. Nothing blocks a tokio worker.

pub mod agent;
pub mod bench;
mod bm25;
pub mod capture;
pub mod chunk;
mod db;
pub mod embed;
pub mod error;
mod index;
pub mod io;
mod memory;
pub mod quant;
pub mod recall;
pub mod retention;
mod store;
pub mod text;
pub mod threads;
pub mod tools;
pub mod types;
mod vector;
mod writer;

pub use agent::{AgentMemory, AgentMemoryConfig, Injected, RecallConfig};
pub use capture::Captured;
pub use db::Durability;
pub use embed::Embedder;
pub use error::{Error, Result};
pub use memory::{EmbedMode, Memory, OpenOptions, Stats};
pub use retention::Policy;
pub use store::fact_text;
pub use threads::{Message, NewMessage, Role, Thread};
pub use types::{
    DEFAULT_NAMESPACE, Fact, Forget, Hit, Kind, Mode, NewFact, NewNote, Note, Provenance, Query, Remembered, Removed,
};

/// Now, in Unix microseconds.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
