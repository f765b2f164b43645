//! Plugin host for stepwise: the Rhai sandbox used by script steps and Rhai tools, plugin
//! manifests, Rhai tools, the MCP client, and the [`PluginHost`] that starts plugins and
//! registers their tools as `<plugin>.<tool>`.

mod error;
pub mod host;
pub mod manifest;
pub mod mcp;
pub mod rhai_sandbox;
pub mod rhai_tool;

pub use error::PluginError;
pub use host::{PluginDecl, PluginHost, PluginInfo, ServedPrompt, ServedResource};
pub use manifest::PluginSpec;
