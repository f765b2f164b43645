//! Plans: the file format ([`spec`]), parsing with positions ([`yaml`]), expressions
//! ([`expr`]) and checking into the [`Plan`] the engine runs ([`check`]).

pub mod ai;
pub mod check;
pub mod diag;
pub mod expr;
mod inputs;
pub mod model;
pub mod plugins;
pub mod spec;
pub mod yaml;

pub use ai::{AgentMemory, AgentSpec, AgentStep, LlmSpec, LlmStep, ModelSpec, OpenAiSpec};
pub use check::{CheckEnv, load_file, load_str};
pub use diag::{Diagnostic, Diagnostics};
pub use model::*;
pub use spec::{PlanSpec, plan_schema_json};
