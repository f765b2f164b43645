//! Small tools for testing plans and measuring the engine.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Tool, ToolContext, ToolError};

/// `util.noop`: returns its input unchanged. Useful to measure engine overhead.
pub struct Noop;

/// Arguments of `util.noop`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoopArgs {
    /// Any value; returned as the output.
    #[serde(default)]
    pub value: serde_json::Value,
}

#[async_trait]
impl Tool for Noop {
    type Args = NoopArgs;
    type Output = serde_json::Value;

    fn name(&self) -> &str {
        "util.noop"
    }
    fn description(&self) -> String {
        "Does nothing and returns `value` unchanged.".into()
    }
    async fn call(&self, args: NoopArgs, _cx: &ToolContext) -> Result<serde_json::Value, ToolError> {
        Ok(args.value)
    }
}

/// `util.sleep`: waits, then returns. Cancellable.
pub struct Sleep;

/// Arguments of `util.sleep`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepArgs {
    /// How long to wait, in milliseconds (at most one hour).
    #[schemars(range(min = 0, max = 3_600_000))]
    pub ms: u64,
}

/// Output of `util.sleep`.
#[derive(Debug, Serialize)]
pub struct SleepOutput {
    pub slept_ms: u64,
}

#[async_trait]
impl Tool for Sleep {
    type Args = SleepArgs;
    type Output = SleepOutput;

    fn name(&self) -> &str {
        "util.sleep"
    }
    fn description(&self) -> String {
        "Waits for `ms` milliseconds.".into()
    }
    async fn call(&self, args: SleepArgs, cx: &ToolContext) -> Result<SleepOutput, ToolError> {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(args.ms)) => Ok(SleepOutput { slept_ms: args.ms }),
            _ = cx.cancel.cancelled() => Err(ToolError::Cancelled { tool: "util.sleep".into() }),
        }
    }
}
