//! stepwise runtime: the plan format, the durable engine and its SQLite journal, and the
//! command-line interface of the `stepwise` binary.

pub mod bench;
pub mod bench_model;
pub mod cli;
pub mod engine;
pub mod error;
pub mod journal;
pub mod mcp;
pub mod plan;

pub use engine::{Engine, EngineConfig, EngineEvent, RunOutcome};
pub use error::{Error, Result};
pub use journal::{Durability, Journal};
