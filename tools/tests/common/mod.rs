//! Shared helpers for the built-in tool tests: call a tool through the registry, as the
//! engine does (schema validation first, then the typed call).
#![allow(dead_code)]

use serde_json::Value;
use stepwise_tools::{Registry, ToolContext, ToolError};

pub async fn call(name: &str, args: Value, cx: &ToolContext) -> Result<Value, ToolError> {
    Registry::with_builtins().call(name, args, cx).await
}

pub fn cx() -> ToolContext {
    ToolContext::new(std::env::temp_dir())
}

/// The error, or a panic showing the unexpected success.
pub fn fails(r: Result<Value, ToolError>) -> ToolError {
    match r {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e,
    }
}
