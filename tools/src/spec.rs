//! Tool descriptions and the two tool traits: typed [`Tool`] for authors, object-safe
//! [`DynTool`] for the registry.

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{ToolContext, ToolError};

/// What a model, a plan checker or an MCP client needs to know about a tool.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ToolSpec {
    /// Namespaced name, e.g. `time.now` or `weather.forecast`.
    pub name: String,
    /// One or two sentences: what the tool does and when to use it.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
    /// JSON Schema of the result, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The tool changes the world (files, network writes, bookings): plans must allow it
    /// explicitly.
    pub side_effects: bool,
}

impl ToolSpec {
    /// A spec whose parameter schema is generated from `A`.
    pub fn for_args<A: JsonSchema>(name: impl Into<String>, description: impl Into<String>) -> Self {
        ToolSpec {
            name: name.into(),
            description: description.into(),
            parameters: schema_value::<A>(),
            output: None,
            side_effects: false,
        }
    }
}

/// The JSON Schema of `T` as a plain JSON value, in the dialect models and MCP expect
/// (no `$schema` key, `title` removed from the root). Generated for deserialization: this is
/// what a caller may send, so fields with `#[serde(default)]` are optional.
pub fn schema_value<T: JsonSchema>() -> Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12().for_deserialize();
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut v = schema.to_value();
    if let Some(obj) = v.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
    }
    v
}

/// A tool with typed arguments and output. Implement this; register it with
/// [`crate::Registry::register`], which wraps it as a [`DynTool`].
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Arguments, deserialized from the call's JSON object.
    type Args: DeserializeOwned + JsonSchema + Send;
    /// Result, serialized to JSON for the journal and the caller.
    type Output: Serialize + Send;

    /// Namespaced name (`group.verb`).
    fn name(&self) -> &str;
    /// What it does, for people and models.
    fn description(&self) -> String;
    /// Whether calling it changes anything outside stepwise.
    fn side_effects(&self) -> bool {
        false
    }
    /// Run the tool.
    async fn call(&self, args: Self::Args, cx: &ToolContext) -> Result<Self::Output, ToolError>;
}

/// Object-safe tool, as stored in the registry. Arguments arrive already validated against
/// `spec().parameters`.
#[async_trait]
pub trait DynTool: Send + Sync {
    /// Name, description and schemas.
    fn spec(&self) -> &ToolSpec;
    /// Run the tool with JSON arguments.
    async fn call_json(&self, args: Value, cx: &ToolContext) -> Result<Value, ToolError>;
}

/// Adapter from [`Tool`] to [`DynTool`]; built by [`typed`].
pub struct Typed<T: Tool> {
    tool: T,
    spec: ToolSpec,
}

/// Wrap a typed tool so it can live in a registry.
pub fn typed<T: Tool>(tool: T) -> Arc<dyn DynTool> {
    let mut spec = ToolSpec::for_args::<T::Args>(tool.name(), tool.description());
    spec.side_effects = tool.side_effects();
    Arc::new(Typed { tool, spec })
}

#[async_trait]
impl<T: Tool> DynTool for Typed<T> {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call_json(&self, args: Value, cx: &ToolContext) -> Result<Value, ToolError> {
        let name = self.spec.name.as_str();
        let args: T::Args = serde_path_to_error::deserialize(args).map_err(|e| {
            let path = e.path().to_string();
            ToolError::InvalidArguments {
                tool: name.to_string(),
                field: if path == "." { "(root)".into() } else { path },
                message: e.into_inner().to_string(),
            }
        })?;
        let out = self.tool.call(args, cx).await?;
        serde_json::to_value(out).map_err(|e| ToolError::failed(name, format!("output is not JSON: {e}")))
    }
}
