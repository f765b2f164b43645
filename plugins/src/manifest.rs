//! Plugin manifests: what a plan's `plugins:` section and a file in a plugins directory say.
//!
//! A plugin is named by its key in the plan (`plugins: {clock: {...}}`) or by its file name
//! (`plugins/clock.yaml`); its tools are registered as `<plugin>.<tool>`. Two kinds exist:
//! `rhai` (tools written as Rhai functions) and `mcp` (a Model Context Protocol server,
//! started as a child process over stdio or reached over streamable HTTP).
//!
//! Strings in `command`, `args`, `env`, `cwd`, `url` and `headers` may use `${workspace}`
//! (the run's workspace directory) and `${env.NAME}` (an environment variable of stepwise).

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum PluginSpec {
    /// Tools written as Rhai functions, run in the same sandbox as script steps.
    Rhai(RhaiPluginSpec),
    /// A Model Context Protocol server.
    Mcp(McpPluginSpec),
}

impl PluginSpec {
    /// `rhai` or `mcp`.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginSpec::Rhai(_) => "rhai",
            PluginSpec::Mcp(_) => "mcp",
        }
    }

    /// The plugin's own description, if it has one.
    pub fn description(&self) -> Option<&str> {
        match self {
            PluginSpec::Rhai(r) => r.description.as_deref(),
            PluginSpec::Mcp(m) => m.description.as_deref(),
        }
    }
}

/// A plugin of kind `rhai`: a script defining one Rhai function per tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RhaiPluginSpec {
    /// What the plugin is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Rhai source defining the tool functions. Set this or `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Path of a `.rhai` file defining the tool functions, relative to the file that declares
    /// the plugin. Set this or `script`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Time limit of one tool call, e.g. `5s` (default `10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// The tools. Each is a Rhai function taking one argument, the arguments map, and
    /// returning the tool's result. A result of the form `#{"$mcp": #{content: [...]}}` is
    /// passed to MCP clients of `stepwise mcp serve` as is (images, audio, `isError`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<RhaiToolSpec>,
    /// Resources offered to MCP clients by `stepwise mcp serve`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<RhaiResourceSpec>,
    /// Prompts offered to MCP clients by `stepwise mcp serve`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<RhaiPromptSpec>,
}

/// A resource served over MCP, read by calling a Rhai function. The function gets
/// `#{uri: ..., <template variables>...}` and returns the text, or `#{blob: <base64>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RhaiResourceSpec {
    /// Fixed URI of the resource. Set this or `uri_template`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// RFC 6570 level-1 template (`test://items/{id}`); the variables are passed to the
    /// function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_template: Option<String>,
    /// Short name.
    pub name: String,
    /// What it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MIME type of the contents (default `text/plain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Rhai function that reads it.
    pub function: String,
}

/// A prompt served over MCP. The Rhai function gets the arguments map and returns a list
/// of messages (`#{role: "user", content: #{type: "text", text: ...}}`) or a string (one
/// user message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RhaiPromptSpec {
    /// Prompt name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<PromptArgumentSpec>,
    /// Rhai function that builds the messages.
    pub function: String,
}

/// One argument of a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptArgumentSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

/// One tool of a Rhai plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RhaiToolSpec {
    /// Tool name within the plugin (letters, digits, `_`, `-`); registered as `<plugin>.<name>`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"))]
    pub name: String,
    /// What the tool does and when to use it.
    pub description: String,
    /// JSON Schema of the arguments object (default: an object with any properties).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Name of the Rhai function to call (default: the tool's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The tool changes something outside stepwise; plans must allow it explicitly.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub side_effects: bool,
}

/// A plugin of kind `mcp`: a Model Context Protocol server. Set `command` (a child process
/// spoken to over stdio) or `url` (streamable HTTP).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpPluginSpec {
    /// What the plugin is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Program to start (looked up on `PATH`), spoken to over stdin/stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Arguments of `command`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment variables of `command`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory of `command` (default: the workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Streamable-HTTP endpoint of a running server, e.g. `http://127.0.0.1:3001/mcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// HTTP headers sent with every request to `url` (e.g. `Authorization`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Protocol negotiation: `auto` (default: try `server/discover` for 2026-07-28, fall back
    /// to `initialize` for 2025-11-25), or one version to insist on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ProtocolChoice>,
    /// Time limit of connecting and listing tools, e.g. `30s` (default `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_timeout: Option<String>,
    /// Time limit of one tool call (default `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Only register the server's tools matching these names or globs (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// Server tools to treat as read-only even without a `readOnlyHint` annotation. Every
    /// other tool that the server does not annotate read-only counts as side-effecting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_only: Vec<String>,
}

/// Which MCP protocol version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum ProtocolChoice {
    /// Try `server/discover` (2026-07-28), fall back to `initialize` (2025-11-25).
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// The `initialize` handshake of protocol 2025-11-25.
    #[serde(rename = "2025-11-25")]
    V2025_11_25,
    /// `server/discover` and per-request metadata of protocol 2026-07-28.
    #[serde(rename = "2026-07-28")]
    V2026_07_28,
}

/// Parse a duration field (`500ms`, `30s`, `2m`), naming the field on error.
pub fn parse_duration(field: &str, value: Option<&str>, default: Duration) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(s) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("`{field}`: `{s}` is not a duration ({e}); write e.g. `500ms`, `30s`, `2m`")),
    }
}

/// Whether `name` can name a plugin: letters, digits, `_` and `-`, not starting with `-`.
pub fn valid_plugin_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Expand `${workspace}` and `${env.NAME}` in a manifest string.
pub fn expand(s: &str, workspace: &std::path::Path) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("`{s}`: `${{` without a closing `}}`"));
        };
        let key = after[..end].trim();
        if key == "workspace" {
            out.push_str(&workspace.display().to_string());
        } else if let Some(var) = key.strip_prefix("env.") {
            let v = std::env::var(var).map_err(|_| format!("`{s}`: environment variable `{var}` is not set"))?;
            out.push_str(&v);
        } else {
            return Err(format!(
                "`{s}`: unknown variable `{key}`; plugin settings may use `${{workspace}}` and `${{env.NAME}}`"
            ));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_unknown_fields_are_refused() {
        let v = serde_json::json!({"kind": "mcp", "command": "mcp-server-time", "args": ["--local-timezone", "UTC"]});
        let p: PluginSpec = serde_json::from_value(v).unwrap();
        assert_eq!(p.kind(), "mcp");
        let v = serde_json::json!({"kind": "mcp", "comand": "x"});
        let e = serde_json::from_value::<PluginSpec>(v).unwrap_err().to_string();
        assert!(e.contains("comand"), "{e}");
        let v = serde_json::json!({"kind": "rhai", "script": "fn a(x) { 1 }", "tools": [{"name": "a", "description": "d"}]});
        assert_eq!(serde_json::from_value::<PluginSpec>(v).unwrap().kind(), "rhai");
    }

    #[test]
    fn expansion() {
        let ws = std::path::Path::new("/tmp/ws");
        assert_eq!(expand("${workspace}/x", ws).unwrap(), "/tmp/ws/x");
        assert!(expand("${nope}", ws).unwrap_err().contains("unknown variable"));
        assert!(
            expand("${env.STEPWISE_SURELY_UNSET_VAR}", ws)
                .unwrap_err()
                .contains("not set")
        );
    }
}
