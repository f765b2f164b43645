//! Language models for stepwise.
//!
//! - [`ChatModel`]: the backend-neutral chat interface (streaming, cancellation, tools).
//! - [`llama`]: the in-process llama.cpp backend (GGUF, mmap, shared between users).
//! - [`openai`]: the OpenAI-compatible HTTP backend.
//! - [`catalog`] and [`pull`]: the models stepwise knows, fetched from PyPI packages and
//!   pinned by sha256.
//! - [`choose`]: the tool chooser: constrained, likelihood-scored tool calls that work on
//!   tiny models.
//! - [`template`]: chat prompts rendered from the model's own Jinja template.

pub mod bfcl;
pub mod catalog;
pub mod chat;
pub mod choose;
mod error;
pub mod llama;
pub mod openai;
pub mod pull;
pub mod template;

pub use catalog::{CATALOG, CatalogEntry, ModelRef};
pub use chat::{
    Capabilities, ChatModel, ChatRequest, ChatResponse, FinishReason, Message, ResponseFormat, Role, TokenSink,
    ToolCall, ToolDef, Usage,
};
pub use choose::{ArgMode, ChooseOptions, ChooseRequest, Decision, Strategy, ToolChooser, ToolPrompt};
pub use error::{ModelError, Result};
pub use llama::{LocalModel, LocalOptions};
pub use openai::{OpenAiConfig, OpenAiModel};
