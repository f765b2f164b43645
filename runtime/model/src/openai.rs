//! The OpenAI-compatible backend: chat completions with tools and streaming, for
//! llama-server, Ollama, vLLM and anything else that speaks the protocol.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chat::{
    Capabilities, ChatModel, ChatRequest, ChatResponse, FinishReason, Message, ResponseFormat, Role, TokenSink,
    ToolCall, Usage,
};
use crate::error::{ModelError, Result};

/// Where and how to reach an OpenAI-compatible server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenAiConfig {
    /// Base URL including the version path, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// Model name sent with each request.
    pub model: String,
    /// Bearer token, if the server wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Whole-request timeout.
    #[serde(default = "default_timeout", with = "secs")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(300)
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

impl OpenAiConfig {
    /// A config for `base_url` and `model`, without a key.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout: default_timeout(),
        }
    }
}

/// A chat model behind an OpenAI-compatible HTTP endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiModel {
    cfg: OpenAiConfig,
    http: reqwest::Client,
}

impl OpenAiModel {
    pub fn new(cfg: OpenAiConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| ModelError::Http {
                endpoint: cfg.base_url.clone(),
                message: format!("cannot build an HTTP client: {e}"),
            })?;
        Ok(OpenAiModel { cfg, http })
    }

    fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.cfg.base_url.trim_end_matches('/'))
    }

    fn body(&self, req: &ChatRequest) -> Value {
        let messages: Vec<Value> = req.messages.iter().map(message_json).collect();
        let mut body = json!({
            "model": self.cfg.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "seed": req.seed,
        });
        if !req.tools.is_empty() {
            body["tools"] = Value::Array(
                req.tools
                    .iter()
                    .map(|t| {
                        json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters}})
                    })
                    .collect(),
            );
            body["tool_choice"] = json!("auto");
        }
        if let ResponseFormat::JsonSchema(schema) = &req.format {
            body["response_format"] =
                json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}});
        }
        body
    }
}

fn message_json(m: &Message) -> Value {
    let mut v = json!({"role": m.role.as_str(), "content": m.content});
    if m.role == Role::Assistant && !m.tool_calls.is_empty() {
        v["tool_calls"] = Value::Array(
            m.tool_calls
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    json!({"id": c.id.clone().unwrap_or_else(|| format!("call_{i}")), "type": "function",
                       "function": {"name": c.name, "arguments": c.arguments.to_string()}})
                })
                .collect(),
        );
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = json!(id);
    }
    if m.role == Role::Tool
        && let Some(n) = &m.name
    {
        v["name"] = json!(n);
    }
    v
}

/// A tool call being assembled from stream deltas.
#[derive(Default)]
struct PartialCall {
    id: Option<String>,
    name: String,
    args: String,
}

#[async_trait]
impl ChatModel for OpenAiModel {
    async fn chat(&self, req: ChatRequest, on_token: TokenSink<'_>) -> Result<ChatResponse> {
        let url = self.endpoint();
        let http_err = |message: String| ModelError::Http {
            endpoint: url.clone(),
            message,
        };
        let t0 = Instant::now();
        let mut rb = self.http.post(&url).json(&self.body(&req));
        if let Some(k) = &self.cfg.api_key {
            rb = rb.bearer_auth(k);
        }
        let resp = tokio::select! {
            r = rb.send() => r.map_err(|e| http_err(format!("request failed: {e}")))?,
            _ = req.cancel.cancelled() => return Err(ModelError::Cancelled),
        };
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(http_err(format!(
                "HTTP {status}: {}",
                text.chars().take(500).collect::<String>()
            )));
        }
        let mut stream = resp.bytes_stream();
        let mut buf = Vec::<u8>::new();
        let mut content = String::new();
        let mut calls: Vec<PartialCall> = Vec::new();
        let mut finish = FinishReason::Stop;
        let mut usage = Usage::default();
        let mut first_token: Option<Instant> = None;
        let mut done = false;
        while !done {
            let chunk = tokio::select! {
                c = stream.next() => c,
                _ = req.cancel.cancelled() => { finish = FinishReason::Cancelled; break; }
            };
            let Some(chunk) = chunk else { break };
            let chunk = chunk.map_err(|e| http_err(format!("reading the stream failed: {e}")))?;
            buf.extend_from_slice(&chunk);
            while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim();
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let data = data.trim();
                if data == "[DONE]" {
                    done = true;
                    break;
                }
                let ev: Value =
                    serde_json::from_str(data).map_err(|e| http_err(format!("bad stream event `{data}`: {e}")))?;
                if let Some(u) = ev.get("usage").filter(|u| !u.is_null()) {
                    usage.prompt_tokens = u["prompt_tokens"].as_u64().unwrap_or(0) as u32;
                    usage.completion_tokens = u["completion_tokens"].as_u64().unwrap_or(0) as u32;
                    usage.cached_tokens = u["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0) as u32;
                }
                let Some(choice) = ev.get("choices").and_then(|c| c.get(0)) else {
                    continue;
                };
                let delta = &choice["delta"];
                if let Some(t) = delta.get("content").and_then(Value::as_str)
                    && !t.is_empty()
                {
                    first_token.get_or_insert_with(Instant::now);
                    on_token(t);
                    content.push_str(t);
                }
                if let Some(tcs) = delta.get("tool_calls").and_then(Value::as_array) {
                    first_token.get_or_insert_with(Instant::now);
                    for tc in tcs {
                        let i = tc.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                        while calls.len() <= i {
                            calls.push(PartialCall::default());
                        }
                        let c = &mut calls[i];
                        if let Some(id) = tc.get("id").and_then(Value::as_str) {
                            c.id = Some(id.to_string());
                        }
                        if let Some(n) = tc["function"].get("name").and_then(Value::as_str) {
                            c.name.push_str(n);
                        }
                        if let Some(a) = tc["function"].get("arguments").and_then(Value::as_str) {
                            c.args.push_str(a);
                        }
                    }
                }
                match choice.get("finish_reason").and_then(Value::as_str) {
                    Some("length") => finish = FinishReason::Length,
                    Some("tool_calls") => finish = FinishReason::ToolCalls,
                    Some(_) => finish = FinishReason::Stop,
                    None => {}
                }
            }
        }
        let end = Instant::now();
        let ft = first_token.unwrap_or(end);
        usage.prefill_ms = (ft - t0).as_secs_f64() * 1e3;
        usage.decode_ms = (end - ft).as_secs_f64() * 1e3;
        let mut tool_calls = Vec::new();
        for c in calls {
            let arguments = if c.args.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&c.args).map_err(|e| {
                    ModelError::BadOutput(format!("arguments of `{}` are not JSON ({e}): {}", c.name, c.args))
                })?
            };
            tool_calls.push(ToolCall {
                id: c.id,
                name: c.name,
                arguments,
            });
        }
        if !tool_calls.is_empty() && finish == FinishReason::Stop {
            finish = FinishReason::ToolCalls;
        }
        Ok(ChatResponse {
            content,
            tool_calls,
            finish,
            usage,
        })
    }

    fn label(&self) -> String {
        format!("{} at {}", self.cfg.model, self.cfg.base_url)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            grammar: true,
            logit_scoring: false,
            native_tools: true,
            local: false,
        }
    }
}
