//! The tool registry: names → tools, with argument validation before every call.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::{DynTool, ToolContext, ToolError, ToolSpec};

struct Entry {
    tool: Arc<dyn DynTool>,
    validator: Arc<jsonschema::Validator>,
    /// Who registered it: `builtin`, `plugin:<name>`.
    origin: String,
}

/// A set of tools, shared between runs. Cheap to clone (an `Arc` inside).
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<BTreeMap<String, Entry>>>,
}

/// One row of [`Registry::list`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolInfo {
    #[serde(flatten)]
    pub spec: ToolSpec,
    pub origin: String,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the built-in tools.
    pub fn with_builtins() -> Self {
        let r = Self::new();
        for tool in crate::builtin::all() {
            // Built-in names are distinct by construction; a clash would be a bug caught by tests.
            if let Err(e) = r.register(tool, "builtin") {
                tracing::error!("built-in tool not registered: {e}");
            }
        }
        r
    }

    /// Add a tool. A name that is already taken is refused: nothing may shadow a built-in
    /// or another plugin's tool.
    pub fn register(&self, tool: Arc<dyn DynTool>, origin: &str) -> Result<(), ToolError> {
        let spec = tool.spec();
        let validator = jsonschema::validator_for(&spec.parameters).map_err(|e| ToolError::BadSchema {
            tool: spec.name.clone(),
            message: e.to_string(),
        })?;
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = map.get(&spec.name) {
            return Err(ToolError::Duplicate {
                name: spec.name.clone(),
                by: format!("already provided by {}", old.origin),
            });
        }
        map.insert(
            spec.name.clone(),
            Entry {
                tool,
                validator: Arc::new(validator),
                origin: origin.to_string(),
            },
        );
        Ok(())
    }

    /// Remove every tool registered by `origin` (a plugin that reloads its tool list).
    pub fn unregister_origin(&self, origin: &str) {
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, e| e.origin != origin);
    }

    /// Replace every tool registered by `origin` with `tools`, at once (a plugin whose tool
    /// list changed). Names held by another origin are refused and left alone; the refusals
    /// are returned.
    pub fn replace_origin(&self, origin: &str, tools: Vec<Arc<dyn DynTool>>) -> Vec<ToolError> {
        let mut compiled = Vec::with_capacity(tools.len());
        let mut errors = Vec::new();
        for tool in tools {
            match jsonschema::validator_for(&tool.spec().parameters) {
                Ok(v) => compiled.push((tool, v)),
                Err(e) => errors.push(ToolError::BadSchema {
                    tool: tool.spec().name.clone(),
                    message: e.to_string(),
                }),
            }
        }
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, e| e.origin != origin);
        for (tool, validator) in compiled {
            let name = tool.spec().name.clone();
            if let Some(old) = map.get(&name) {
                errors.push(ToolError::Duplicate {
                    by: format!("already provided by {}", old.origin),
                    name,
                });
                continue;
            }
            map.insert(
                name,
                Entry {
                    tool,
                    validator: Arc::new(validator),
                    origin: origin.to_string(),
                },
            );
        }
        errors
    }

    /// Origins (`builtin`, `plugin:<name>`) of the tools whose names start with `prefix`.
    pub fn origins_with_prefix(&self, prefix: &str) -> Vec<String> {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<String> = map
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, e)| e.origin.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether a tool of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).contains_key(name)
    }

    /// The spec of one tool.
    pub fn spec(&self, name: &str) -> Option<ToolSpec> {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).map(|e| e.tool.spec().clone())
    }

    /// All tools, sorted by name.
    pub fn list(&self) -> Vec<ToolInfo> {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        map.values()
            .map(|e| ToolInfo {
                spec: e.tool.spec().clone(),
                origin: e.origin.clone(),
            })
            .collect()
    }

    /// All tool names, sorted.
    pub fn names(&self) -> Vec<String> {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        map.keys().cloned().collect()
    }

    /// The closest registered name to `name`, for "did you mean" hints.
    pub fn suggest(&self, name: &str) -> Option<String> {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        closest(name, map.keys().map(String::as_str))
    }

    fn get(&self, name: &str) -> Result<(Arc<dyn DynTool>, Arc<jsonschema::Validator>), ToolError> {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        match map.get(name) {
            Some(e) => Ok((e.tool.clone(), e.validator.clone())),
            None => Err(ToolError::UnknownTool {
                name: name.to_string(),
                suggestion: closest(name, map.keys().map(String::as_str)).map(|s| format!("did you mean `{s}`?")),
            }),
        }
    }

    /// Check `args` against the tool's parameter schema without calling it.
    pub fn validate(&self, name: &str, args: &Value) -> Result<(), ToolError> {
        let (_, validator) = self.get(name)?;
        check_args(name, &validator, args)
    }

    /// Validate `args` against the tool's schema, then call it.
    pub async fn call(&self, name: &str, args: Value, cx: &ToolContext) -> Result<Value, ToolError> {
        let (tool, validator) = self.get(name)?;
        check_args(name, &validator, &args)?;
        if cx.cancel.is_cancelled() {
            return Err(ToolError::Cancelled { tool: name.to_string() });
        }
        tool.call_json(args, cx).await
    }
}

fn check_args(name: &str, validator: &jsonschema::Validator, args: &Value) -> Result<(), ToolError> {
    let mut errors = validator.iter_errors(args);
    match errors.next() {
        None => Ok(()),
        Some(first) => {
            let path = first.instance_path().to_string();
            let mut field = path.trim_start_matches('/').replace('/', ".");
            let join = |f: &str, p: &str| {
                if f.is_empty() {
                    p.to_string()
                } else {
                    format!("{f}.{p}")
                }
            };
            let message = match first.kind() {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    field = join(&field, property.as_str().unwrap_or_default());
                    "is required but missing".to_string()
                }
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                    field = join(&field, &unexpected.join(", "));
                    "is not a parameter of this tool".to_string()
                }
                _ => first.to_string(),
            };
            Err(ToolError::InvalidArguments {
                tool: name.to_string(),
                field: if field.is_empty() { "(root)".into() } else { field },
                message,
            })
        }
    }
}

/// The candidate closest to `name` by edit distance, if it is close enough to be a typo.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (c.len().min(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}
