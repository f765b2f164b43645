//! Tools for stepwise: the typed [`Tool`] trait for authors, the object-safe [`DynTool`]
//! the registry stores, [`ToolSpec`] with a JSON Schema of the arguments, the [`Registry`]
//! that validates arguments before every call, and the built-in tools.

pub mod builtin;
mod context;
mod error;
mod interaction;
mod registry;
mod role;
mod spec;
pub mod sys;

pub use context::{NetPolicy, ToolContext, default_data_dir};
pub use error::ToolError;
pub use interaction::{Interaction, InteractionHandle};
pub use registry::{Registry, ToolInfo, closest};
pub use role::Role;
pub use spec::{DynTool, Tool, ToolSpec, Typed, schema_value, typed};
