//! The one error type of the tools crate.

use thiserror::Error;

/// Everything that can go wrong when looking up, validating or calling a tool.
#[derive(Debug, Error)]
pub enum ToolError {
    /// No tool of that name is registered.
    #[error("unknown tool `{name}`{}", hint(suggestion.as_deref()))]
    UnknownTool { name: String, suggestion: Option<String> },
    /// The arguments do not match the tool's parameter schema.
    #[error("invalid arguments for `{tool}`: field `{field}`: {message}")]
    InvalidArguments {
        tool: String,
        /// JSON pointer-ish path of the offending field (`/tz`, `/items/2`), or `(root)`.
        field: String,
        message: String,
    },
    /// The call was refused by policy (sandbox, permissions, network rules).
    #[error("`{tool}` refused: {reason}")]
    Denied { tool: String, reason: String },
    /// The tool ran and reported a failure.
    #[error("`{tool}` failed: {message}")]
    Failed { tool: String, message: String },
    /// The tool did not finish in time.
    #[error("`{tool}` timed out after {millis} ms")]
    Timeout { tool: String, millis: u64 },
    /// The call was cancelled (run stopped, process shutting down).
    #[error("`{tool}` was cancelled")]
    Cancelled { tool: String },
    /// A tool with this name already exists.
    #[error("tool `{name}` is already registered{}", hint(Some(by.as_str())))]
    Duplicate { name: String, by: String },
    /// A tool's declared schema could not be compiled.
    #[error("tool `{tool}` has an invalid parameter schema: {message}")]
    BadSchema { tool: String, message: String },
}

fn hint(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => format!(" ({s})"),
        _ => String::new(),
    }
}

impl ToolError {
    /// Shorthand for [`ToolError::Failed`].
    pub fn failed(tool: impl Into<String>, message: impl std::fmt::Display) -> Self {
        ToolError::Failed {
            tool: tool.into(),
            message: message.to_string(),
        }
    }

    /// Shorthand for [`ToolError::Denied`].
    pub fn denied(tool: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        ToolError::Denied {
            tool: tool.into(),
            reason: reason.to_string(),
        }
    }

    /// Whether retrying the same call could plausibly succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ToolError::Failed { .. } | ToolError::Timeout { .. })
    }
}
