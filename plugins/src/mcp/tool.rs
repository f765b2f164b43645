//! One tool of an MCP server, as a [`DynTool`] of the registry.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use serde_json::{Value, json};
use stepwise_tools::{DynTool, ToolContext, ToolError, ToolSpec};

use super::client::McpServer;
use super::sanitize::sanitize_description;

/// A tool of an MCP server, registered as `<plugin>.<tool>`.
pub struct McpTool {
    spec: ToolSpec,
    remote: String,
    server: Weak<McpServer>,
}

impl McpTool {
    /// Wrap a listed tool. It counts as side-effecting unless the server annotates it
    /// `readOnlyHint: true` or the manifest lists it under `read_only`.
    pub(crate) fn new(server: &Arc<McpServer>, t: &rmcp::model::Tool, forced_read_only: bool) -> Self {
        let read_only = forced_read_only || t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true);
        let raw = t.description.as_deref().or(t.title.as_deref()).unwrap_or("");
        let mut parameters = Value::Object((*t.input_schema).clone());
        if parameters.get("type").is_none() {
            parameters["type"] = json!("object");
        }
        McpTool {
            spec: ToolSpec {
                name: format!("{}.{}", server.name, t.name),
                description: sanitize_description(raw),
                parameters,
                output: t.output_schema.as_ref().map(|o| Value::Object((**o).clone())),
                side_effects: !read_only,
            },
            remote: t.name.to_string(),
            server: Arc::downgrade(server),
        }
    }
}

#[async_trait]
impl DynTool for McpTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call_json(&self, args: Value, cx: &ToolContext) -> Result<Value, ToolError> {
        let name = self.spec.name.as_str();
        let server = self
            .server
            .upgrade()
            .ok_or_else(|| ToolError::failed(name, "the plugin was shut down"))?;
        let (service, generation) = server.connection().await.map_err(|e| ToolError::failed(name, e))?;
        let mut params = CallToolRequestParams::new(self.remote.clone());
        params.arguments = match args {
            Value::Object(m) => Some(m),
            Value::Null => None,
            other => {
                return Err(ToolError::failed(
                    name,
                    format!("arguments must be an object, got {other}"),
                ));
            }
        };
        let call = service.peer().call_tool(params);
        let timeout = server.call_timeout;
        let outcome = tokio::select! {
            r = tokio::time::timeout(timeout, call) => r,
            _ = cx.cancel.cancelled() => return Err(ToolError::Cancelled { tool: name.to_string() }),
        };
        match outcome {
            Ok(Ok(result)) => convert(name, result),
            Ok(Err(e)) => {
                let (message, lost) = server.explain(&e);
                if lost {
                    server.mark_down(generation, message.clone()).await;
                    Err(ToolError::failed(
                        name,
                        format!("{message}; the server will be restarted on the next call"),
                    ))
                } else {
                    Err(ToolError::failed(name, message))
                }
            }
            Err(_) => {
                if !server.alive(&service).await {
                    server
                        .mark_down(
                            generation,
                            format!("it stopped answering (a call ran past {timeout:?})"),
                        )
                        .await;
                }
                Err(ToolError::Timeout {
                    tool: name.to_string(),
                    millis: timeout.as_millis() as u64,
                })
            }
        }
    }
}

/// A tool result as a JSON value: structured content when the server gives it, the text
/// of a single text block, otherwise the content blocks themselves. `isError` results are
/// tool failures carrying the server's text.
fn convert(name: &str, r: CallToolResult) -> Result<Value, ToolError> {
    if r.is_error == Some(true) {
        let text: Vec<String> = r
            .content
            .iter()
            .filter_map(|c| match c {
                ContentBlock::Text(t) => Some(t.text.clone()),
                _ => None,
            })
            .collect();
        let msg = if text.is_empty() {
            "the tool reported an error without a message".to_string()
        } else {
            text.join("\n")
        };
        return Err(ToolError::failed(name, msg));
    }
    if let Some(s) = r.structured_content {
        return Ok(s);
    }
    match r.content.as_slice() {
        [] => Ok(Value::Null),
        [ContentBlock::Text(t)] => Ok(Value::String(t.text.clone())),
        blocks => serde_json::to_value(blocks).map_err(|e| ToolError::failed(name, format!("result is not JSON: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(v: Value) -> CallToolResult {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn results_become_values_or_failures() {
        let r = result(json!({"content": [{"type": "text", "text": "hi"}]}));
        assert_eq!(convert("t", r).unwrap(), json!("hi"));
        let r = result(json!({"content": [{"type": "text", "text": "{}"}], "structuredContent": {"a": 1}}));
        assert_eq!(convert("t", r).unwrap(), json!({"a": 1}));
        let r = result(json!({"content": [{"type": "text", "text": "bad zone"}], "isError": true}));
        let e = convert("t", r).unwrap_err();
        assert!(e.to_string().contains("bad zone"));
        let r = result(
            json!({"content": [{"type": "text", "text": "a"}, {"type": "image", "data": "AA==", "mimeType": "image/png"}]}),
        );
        let v = convert("t", r).unwrap();
        assert_eq!(v[1]["type"], "image");
    }
}
