//! Plugin host for stepwise: the Rhai sandbox used by script steps and Rhai tools, and
//! (later) MCP servers.

pub mod rhai_sandbox;
