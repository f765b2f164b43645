//! What a tool call may know about the world it runs in.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Rules for `http.get` and any other tool that reaches the network.
#[derive(Debug, Clone)]
pub struct NetPolicy {
    /// Allow loopback, private, link-local and other non-public addresses.
    pub allow_private: bool,
    /// Largest response body read, in bytes.
    pub max_response_bytes: u64,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for NetPolicy {
    fn default() -> Self {
        NetPolicy {
            allow_private: false,
            max_response_bytes: 5 * 1024 * 1024,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Per-call context: where files may be touched, network rules, cancellation, and which run
/// and step the call belongs to (for logs and artifacts).
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// Root directory that file tools are confined to.
    pub workspace: PathBuf,
    /// Network rules.
    pub net: NetPolicy,
    /// Fires when the run is cancelled or the process shuts down.
    pub cancel: CancellationToken,
    /// Run this call belongs to, if any.
    pub run_id: Option<String>,
    /// Step key (`fetch`, `fan[3].lookup`) this call belongs to, if any.
    pub step: Option<String>,
    /// Where progress, logs and questions of the call go (an MCP client calling stepwise).
    pub interaction: Option<crate::InteractionHandle>,
    /// Directory of offline data sets (airports, cities), see [`default_data_dir`].
    pub data_dir: PathBuf,
}

/// Where offline data lives: `$STEPWISE_DATA_DIR`, else `$XDG_CACHE_HOME/stepwise/data`
/// (filled by `.ci/setup`).
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STEPWISE_DATA_DIR") {
        return PathBuf::from(d);
    }
    dirs::cache_dir()
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("stepwise")
        .join("data")
}

impl ToolContext {
    /// A context rooted at `workspace` with default policies.
    pub fn new(workspace: impl Into<PathBuf>) -> Self {
        ToolContext {
            workspace: workspace.into(),
            net: NetPolicy::default(),
            cancel: CancellationToken::new(),
            run_id: None,
            step: None,
            data_dir: default_data_dir(),
            interaction: None,
        }
    }

    /// The same context, labelled for one step of one run.
    pub fn for_step(&self, run_id: &str, step: &str) -> Self {
        let mut cx = self.clone();
        cx.run_id = Some(run_id.to_string());
        cx.step = Some(step.to_string());
        cx
    }
}
