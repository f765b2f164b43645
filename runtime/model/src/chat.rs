//! The backend-neutral chat interface: messages, tools, requests, responses and the
//! [`ChatModel`] trait every backend implements.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::choose::{ChooseRequest, Decision};
use crate::error::Result;

pub use stepwise_tools::Role;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    #[serde(default)]
    pub content: String,
    /// Calls the assistant made in this message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a `tool` message: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For a `tool` message: the name of the tool that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }
    /// An assistant message with text.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
    /// An assistant message that calls a tool.
    pub fn assistant_call(call: ToolCall) -> Self {
        let mut m = Self::new(Role::Assistant, "");
        m.tool_calls.push(call);
        m
    }
    /// The result of a tool call.
    pub fn tool_result(call: &ToolCall, content: impl Into<String>) -> Self {
        let mut m = Self::new(Role::Tool, content);
        m.tool_call_id = call.id.clone();
        m.name = Some(call.name.clone());
        m
    }
}

/// A tool a model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    /// Name exactly as the caller knows it (dots allowed).
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments object (BFCL's dialect is accepted too).
    pub parameters: Value,
}

/// A call of a tool with arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub arguments: Value,
}

/// What form the answer must take.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ResponseFormat {
    /// Free text.
    #[default]
    Text,
    /// A JSON value conforming to this JSON Schema (decoding is constrained where the backend
    /// can, and the result is validated either way).
    JsonSchema(Value),
}

/// One chat completion request.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    /// Tools the model may call (backends with native tool calling only).
    pub tools: Vec<ToolDef>,
    pub format: ResponseFormat,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// 0 = greedy.
    pub temperature: f32,
    /// Seed for sampling when `temperature > 0`.
    pub seed: u32,
    /// Fires to stop generation early; the text so far is returned with `FinishReason::Cancelled`.
    pub cancel: CancellationToken,
}

impl ChatRequest {
    /// A greedy request for these messages.
    pub fn new(messages: Vec<Message>) -> Self {
        ChatRequest {
            messages,
            tools: Vec::new(),
            format: ResponseFormat::Text,
            max_tokens: 512,
            temperature: 0.0,
            seed: 42,
            cancel: CancellationToken::new(),
        }
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    Cancelled,
}

/// Token counts and timings of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Prompt tokens whose KV cache was reused from an earlier request.
    pub cached_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Time spent evaluating the prompt (after cache reuse), in milliseconds.
    pub prefill_ms: f64,
    /// Time spent generating, in milliseconds.
    pub decode_ms: f64,
}

impl Usage {
    /// Add another request's usage to this one.
    pub fn add(&mut self, o: &Usage) {
        self.prompt_tokens += o.prompt_tokens;
        self.cached_tokens += o.cached_tokens;
        self.completion_tokens += o.completion_tokens;
        self.prefill_ms += o.prefill_ms;
        self.decode_ms += o.decode_ms;
    }
}

/// The answer to a [`ChatRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    pub finish: FinishReason,
    pub usage: Usage,
}

/// What a backend can do beyond plain chat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Decoding can be constrained by a grammar / JSON Schema.
    pub grammar: bool,
    /// Continuations can be scored by likelihood (the tool chooser's strong path).
    pub logit_scoring: bool,
    /// The backend understands `tools` in requests and returns tool calls.
    pub native_tools: bool,
    /// Runs in this process.
    pub local: bool,
}

/// Receives generated text as it is produced.
pub type TokenSink<'a> = &'a mut (dyn FnMut(&str) + Send);

/// A chat model. Backends implement [`ChatModel::chat`]; everything else has a default.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// Complete the conversation, streaming text through `on_token` as it is generated.
    async fn chat(&self, req: ChatRequest, on_token: TokenSink<'_>) -> Result<ChatResponse>;

    /// A short name for logs and the journal (model file or endpoint + model).
    fn label(&self) -> String {
        "model".into()
    }

    /// What this backend can do.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Choose a tool call (or none) for the conversation. The default asks the backend's
    /// native tool calling through [`ChatModel::chat`] and checks the answer against the
    /// offered tools; the local backend overrides it with constrained decoding.
    async fn choose(&self, req: ChooseRequest) -> Result<Decision> {
        crate::choose::native::choose(self, req).await
    }
}
