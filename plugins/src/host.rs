//! The plugin host: starts plugins, registers their tools as `<plugin>.<tool>`, refuses a
//! plugin whose name is taken, and stops them at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use stepwise_tools::{Registry, ToolError, ToolSpec};

use crate::PluginError;
use crate::manifest::{PluginSpec, RhaiPromptSpec, RhaiResourceSpec, valid_plugin_name};
use crate::mcp::McpServer;
use crate::rhai_tool::{self, RhaiFn, ScriptOrigin};

/// A plugin to start: its name, manifest, and where relative paths start.
#[derive(Clone)]
pub struct PluginDecl {
    /// Plugin name (the key in `plugins:`, or the manifest file's stem).
    pub name: String,
    pub spec: PluginSpec,
    /// Directory of the file that declared it (for `file:` of Rhai plugins).
    pub base_dir: Option<PathBuf>,
    /// Name of the declaring file, for messages.
    pub declared_in: String,
    /// Where an inline Rhai `script` sits in the declaring file, for error positions.
    pub inline_origin: Option<ScriptOrigin>,
}

enum Running {
    Rhai {
        resources: Vec<Arc<ServedResource>>,
        prompts: Vec<Arc<ServedPrompt>>,
    },
    Mcp(Arc<McpServer>),
}

/// A resource a Rhai plugin serves over MCP.
pub struct ServedResource {
    pub plugin: String,
    pub spec: RhaiResourceSpec,
    pub read: RhaiFn,
}

/// A prompt a Rhai plugin serves over MCP.
pub struct ServedPrompt {
    pub plugin: String,
    pub spec: RhaiPromptSpec,
    pub get: RhaiFn,
}

struct Loaded {
    spec: PluginSpec,
    base_dir: Option<PathBuf>,
    declared_in: String,
    running: Running,
}

/// One row of [`PluginHost::list`].
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// File that declared it.
    pub declared_in: String,
    /// MCP protocol version agreed with the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    pub tools: Vec<ToolSpec>,
}

/// Starts and keeps plugins for one process. Cheap to share behind an `Arc`.
pub struct PluginHost {
    registry: Registry,
    workspace: PathBuf,
    loaded: tokio::sync::Mutex<BTreeMap<String, Loaded>>,
}

impl PluginHost {
    /// A host registering tools into `registry`; MCP servers get `workspace` as their root.
    pub fn new(registry: Registry, workspace: PathBuf) -> Self {
        PluginHost {
            registry,
            workspace,
            loaded: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// The registry plugins register into.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Start a plugin unless the same one is already running. A name already used by
    /// built-in tools, another plugin, or a different definition of this plugin is refused.
    pub async fn ensure(&self, d: &PluginDecl) -> Result<(), PluginError> {
        let name = d.name.as_str();
        if !valid_plugin_name(name) {
            return Err(PluginError::manifest(
                name,
                "",
                "a plugin name uses letters, digits, `_` and `-` (its tools are named `<plugin>.<tool>`)",
            ));
        }
        let mut loaded = self.loaded.lock().await;
        if let Some(l) = loaded.get(name) {
            if l.spec == d.spec && l.base_dir == d.base_dir {
                return Ok(());
            }
            return Err(PluginError::NameTaken {
                plugin: name.to_string(),
                message: format!(
                    "a different plugin of this name is already loaded (from {}); rename one of them",
                    l.declared_in
                ),
            });
        }
        let origin = format!("plugin:{name}");
        let holders: Vec<String> = self
            .registry
            .origins_with_prefix(&format!("{name}."))
            .into_iter()
            .filter(|o| *o != origin)
            .collect();
        if !holders.is_empty() {
            return Err(PluginError::NameTaken {
                plugin: name.to_string(),
                message: format!(
                    "the name is taken: tools `{name}.*` already come from {}; choose another plugin name",
                    holders.join(", ")
                ),
            });
        }
        let running = match &d.spec {
            PluginSpec::Rhai(r) => {
                let (source, origin_info) = match (&r.script, &r.file) {
                    (Some(s), None) => (
                        s.clone(),
                        d.inline_origin.clone().unwrap_or_else(|| ScriptOrigin {
                            file: format!("{} (plugin `{name}` script)", d.declared_in),
                            map: None,
                        }),
                    ),
                    (None, Some(f)) => {
                        let path = d.base_dir.as_deref().unwrap_or(Path::new(".")).join(f);
                        let text = std::fs::read_to_string(&path).map_err(|e| {
                            PluginError::manifest(name, "/file", format!("cannot read `{}`: {e}", path.display()))
                        })?;
                        (
                            text,
                            ScriptOrigin {
                                file: path.display().to_string(),
                                map: None,
                            },
                        )
                    }
                    (Some(_), Some(_)) => {
                        return Err(PluginError::manifest(name, "", "set `script` or `file`, not both"));
                    }
                    (None, None) => {
                        return Err(PluginError::manifest(
                            name,
                            "",
                            "a `rhai` plugin needs `script` (inline Rhai) or `file` (a .rhai file)",
                        ));
                    }
                };
                let loaded = rhai_tool::load(name, r, &source, origin_info)?;
                let errors = self.registry.replace_origin(&origin, loaded.tools);
                if !errors.is_empty() {
                    self.registry.unregister_origin(&origin);
                    return Err(tool_errors(name, errors));
                }
                Running::Rhai {
                    resources: loaded
                        .resources
                        .into_iter()
                        .map(|(spec, read)| {
                            Arc::new(ServedResource {
                                plugin: name.to_string(),
                                spec,
                                read,
                            })
                        })
                        .collect(),
                    prompts: loaded
                        .prompts
                        .into_iter()
                        .map(|(spec, get)| {
                            Arc::new(ServedPrompt {
                                plugin: name.to_string(),
                                spec,
                                get,
                            })
                        })
                        .collect(),
                }
            }
            PluginSpec::Mcp(m) => {
                Running::Mcp(McpServer::start(name, m, self.workspace.clone(), self.registry.clone()).await?)
            }
        };
        loaded.insert(
            name.to_string(),
            Loaded {
                spec: d.spec.clone(),
                base_dir: d.base_dir.clone(),
                declared_in: d.declared_in.clone(),
                running,
            },
        );
        Ok(())
    }

    /// Every loaded plugin with its tools, sorted by name.
    pub async fn list(&self) -> Vec<PluginInfo> {
        let loaded = self.loaded.lock().await;
        let all = self.registry.list();
        let mut out = Vec::new();
        for (name, l) in loaded.iter() {
            let origin = format!("plugin:{name}");
            let protocol = match &l.running {
                Running::Mcp(s) => s.protocol_version().await,
                Running::Rhai { .. } => None,
            };
            out.push(PluginInfo {
                name: name.clone(),
                kind: l.spec.kind(),
                description: l.spec.description().map(str::to_string),
                declared_in: l.declared_in.clone(),
                protocol,
                tools: all
                    .iter()
                    .filter(|t| t.origin == origin)
                    .map(|t| t.spec.clone())
                    .collect(),
            });
        }
        out
    }

    /// Resources served by the loaded Rhai plugins.
    pub async fn resources(&self) -> Vec<Arc<ServedResource>> {
        let loaded = self.loaded.lock().await;
        loaded
            .values()
            .flat_map(|l| match &l.running {
                Running::Rhai { resources, .. } => resources.clone(),
                Running::Mcp(_) => Vec::new(),
            })
            .collect()
    }

    /// Prompts served by the loaded Rhai plugins.
    pub async fn prompts(&self) -> Vec<Arc<ServedPrompt>> {
        let loaded = self.loaded.lock().await;
        loaded
            .values()
            .flat_map(|l| match &l.running {
                Running::Rhai { prompts, .. } => prompts.clone(),
                Running::Mcp(_) => Vec::new(),
            })
            .collect()
    }

    /// Stop every plugin (MCP child processes are terminated) and remove their tools.
    pub async fn shutdown(&self) {
        let mut loaded = self.loaded.lock().await;
        for (name, l) in std::mem::take(&mut *loaded) {
            if let Running::Mcp(s) = &l.running {
                s.shutdown().await;
            }
            self.registry.unregister_origin(&format!("plugin:{name}"));
        }
    }
}

fn tool_errors(plugin: &str, errors: Vec<ToolError>) -> PluginError {
    let msg = errors.iter().map(ToolError::to_string).collect::<Vec<_>>().join("; ");
    if errors.iter().any(|e| matches!(e, ToolError::Duplicate { .. })) {
        PluginError::NameTaken {
            plugin: plugin.to_string(),
            message: msg,
        }
    } else {
        PluginError::manifest(plugin, "/tools", msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rhai_decl(name: &str, script: &str) -> PluginDecl {
        let spec: PluginSpec = serde_json::from_value(serde_json::json!({
            "kind": "rhai", "script": script,
            "tools": [{"name": "noop", "description": "returns its input"}]
        }))
        .unwrap();
        PluginDecl {
            name: name.into(),
            spec,
            base_dir: None,
            declared_in: "test.yaml".into(),
            inline_origin: None,
        }
    }

    #[tokio::test]
    async fn names_cannot_shadow_builtins_or_other_plugins() {
        let host = PluginHost::new(Registry::with_builtins(), std::env::temp_dir());
        let e = host.ensure(&rhai_decl("util", "fn noop(a) { a }")).await.unwrap_err();
        assert!(e.to_string().contains("already come from builtin"), "{e}");
        host.ensure(&rhai_decl("mine", "fn noop(a) { a }")).await.unwrap();
        // The same definition again is fine; a different one under the same name is not.
        host.ensure(&rhai_decl("mine", "fn noop(a) { a }")).await.unwrap();
        let e = host.ensure(&rhai_decl("mine", "fn noop(a) { 1 }")).await.unwrap_err();
        assert!(e.to_string().contains("different plugin of this name"), "{e}");
        assert!(host.registry().contains("mine.noop"));
        let list = host.list().await;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].tools[0].name, "mine.noop");
        host.shutdown().await;
        assert!(!host.registry().contains("mine.noop"));
    }
}
