//! The MCP client: supervised connections to MCP servers ([`McpServer`]) whose tools are
//! registered as `<plugin>.<tool>`.

mod client;
mod sanitize;
mod tool;

pub use client::McpServer;
pub use sanitize::{MAX_DESCRIPTION_CHARS, sanitize_description};
pub use tool::McpTool;
