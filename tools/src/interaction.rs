//! A channel from a running tool back to whoever asked for the call (an MCP client, a chat
//! window): log lines, progress, and questions such as sampling or elicitation requests.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

/// What a tool may send back to its caller while it runs. Every method has a default that
/// does nothing (or refuses), so a caller implements only what it supports.
#[async_trait]
pub trait Interaction: Send + Sync {
    /// A log message (`level` is an MCP/syslog level: `debug`, `info`, `warning`, `error`, …).
    async fn log(&self, level: &str, data: Value) {
        let _ = (level, data);
    }
    /// Progress of the call so far.
    async fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        let _ = (progress, total, message);
    }
    /// Ask the caller something (`sampling/createMessage`, `elicitation/create`) and wait
    /// for its answer.
    async fn request(&self, method: &str, params: Value) -> Result<Value, String> {
        let _ = params;
        Err(format!("the caller does not support `{method}`"))
    }
}

/// A shared [`Interaction`], as carried by a [`crate::ToolContext`].
#[derive(Clone)]
pub struct InteractionHandle(pub Arc<dyn Interaction>);

impl std::fmt::Debug for InteractionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InteractionHandle")
    }
}
