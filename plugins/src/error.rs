//! The one error type of the plugins crate.

use thiserror::Error;

/// Why a plugin could not be loaded or started.
#[derive(Debug, Error)]
pub enum PluginError {
    /// The manifest is wrong (a bad field value, a missing script).
    #[error("plugin `{plugin}`: {message}")]
    Manifest {
        plugin: String,
        /// JSON pointer of the offending field inside the plugin's manifest (`/tools/0/name`),
        /// empty for the plugin as a whole.
        field: String,
        message: String,
    },
    /// A Rhai script does not compile; `file:line:column` points at the problem.
    #[error("plugin `{plugin}`: {file}:{line}:{col}: {message}")]
    Script {
        plugin: String,
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// The MCP server could not be started or did not answer the handshake.
    #[error("plugin `{plugin}`: MCP server did not start: {message}")]
    Start { plugin: String, message: String },
    /// The plugin's name or one of its tools' names is taken.
    #[error("plugin `{plugin}`: {message}")]
    NameTaken { plugin: String, message: String },
}

impl PluginError {
    /// Name of the plugin the error is about.
    pub fn plugin(&self) -> &str {
        match self {
            PluginError::Manifest { plugin, .. }
            | PluginError::Script { plugin, .. }
            | PluginError::Start { plugin, .. }
            | PluginError::NameTaken { plugin, .. } => plugin,
        }
    }

    pub(crate) fn manifest(plugin: &str, field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        PluginError::Manifest {
            plugin: plugin.to_string(),
            field: field.into(),
            message: message.to_string(),
        }
    }
}
