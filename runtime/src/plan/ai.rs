//! The `llm` and `agent` step kinds: their plan-file form and their checked form.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::expr::Template;

/// Which model a step uses. Without it, the run's default model (`--model`,
/// `$STEPWISE_MODEL`, else the built-in `smollm2-135m`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ModelSpec {
    /// A catalog name (`smollm2-135m`, `qwen2.5-coder-0.5b`) or a path to a GGUF file.
    Name(String),
    /// An OpenAI-compatible server (llama-server, Ollama, vLLM, …).
    OpenAi {
        /// Where and which model.
        openai: OpenAiSpec,
    },
}

/// An OpenAI-compatible endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAiSpec {
    /// Base URL with the version path, e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// Model name the server knows.
    pub model: String,
    /// Name of the environment variable holding the API key, if the server needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
}

/// Kind `llm`: one model call. The output is the answer's text, or with `schema`, a JSON
/// value that conforms to it (decoding is constrained by the schema and the result is
/// validated before it is recorded).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmSpec {
    /// The user message; may hold `${…}` expressions.
    pub prompt: String,
    /// System message; may hold `${…}` expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// JSON Schema of the output. Without it the output is text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// Model to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// Most tokens to generate (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature (default 0: greedy, reproducible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

/// Kind `agent`: a model that calls tools until it can answer. Every turn is journaled, so
/// a resumed run continues mid-agent without calling a finished tool again.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// The task (user message); may hold `${…}` expressions.
    pub prompt: String,
    /// How to behave (system message); may hold `${…}` expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Tools it may call: names or globs (`time.*`). The plan's `tools` policy applies too.
    pub tools: Vec<String>,
    /// Most tool calls before it must answer (default 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// Token budget: prompt tokens evaluated plus tokens generated (default 16384).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Time budget for the whole agent, e.g. `2m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget: Option<String>,
    /// Model to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// Memory: before the agent starts, the memories most relevant to the prompt are put into
    /// its instructions and the thread's earlier messages are replayed; its turns (prompt,
    /// tool calls and results, answer) are then persisted to the thread, once per run.
    /// `thread` may hold `${…}` expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<stepwise_memory::AgentMemoryConfig>,
}

/// A checked `llm` step.
#[derive(Debug)]
pub struct LlmStep {
    pub prompt: Template,
    pub system: Option<Template>,
    pub schema: Option<Value>,
    pub validator: Option<Arc<jsonschema::Validator>>,
    pub model: Option<ModelSpec>,
    pub max_tokens: u32,
    pub temperature: f32,
}

/// A checked `agent` step.
#[derive(Debug)]
pub struct AgentStep {
    pub prompt: Template,
    pub instructions: Option<Template>,
    /// Names or globs, as written.
    pub tools: Vec<String>,
    /// The step's own allowlist, layered on the plan's policy: a side-effecting tool must be
    /// named, not matched by a glob.
    pub policy: super::ToolPolicy,
    pub max_turns: u32,
    pub max_tokens: u32,
    pub time_budget: Option<Duration>,
    pub model: Option<ModelSpec>,
    pub memory: Option<AgentMemory>,
}

/// A checked `memory:` block of an agent step.
#[derive(Debug)]
pub struct AgentMemory {
    /// As written (`thread` unrendered).
    pub config: stepwise_memory::AgentMemoryConfig,
    /// The thread id with its `${…}` expressions.
    pub thread: Option<Template>,
}
