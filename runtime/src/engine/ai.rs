//! Executing `llm` and `agent` steps.
//!
//! An agent journals each tool call as a child step `<key>.turn<N>` (kind `agent.turn`)
//! through the same `StepStarted`/`StepFinished` records as any step. On resume, finished
//! turns are replayed from the journal (their calls and observations go back into the
//! conversation) and the tools are not called again; the loop continues after them.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use stepwise_model::{ChatModel, ChatRequest, Message, ModelError, ResponseFormat, ToolCall, ToolChooser, ToolDef};

use super::RunCtx;
use super::scope::{Scope, Status, StepResult};
use crate::journal::{Op, json_text, now_us};
use crate::plan::expr::{Expr, Template};
use crate::plan::{AgentStep, LlmStep};

/// An `llm`/`agent` failure, as the step's attempt sees it.
pub(crate) struct AiError {
    pub message: String,
    pub retryable: bool,
}

impl AiError {
    fn fatal(message: impl Into<String>) -> Self {
        AiError {
            message: message.into(),
            retryable: false,
        }
    }
    fn model(e: ModelError) -> Self {
        AiError {
            retryable: matches!(e, ModelError::Http { .. } | ModelError::WorkerGone),
            message: e.to_string(),
        }
    }
}

/// Most characters of a tool result shown to the model.
const MAX_OBSERVATION: usize = 2000;

const DEFAULT_INSTRUCTIONS: &str =
    "You are a helpful assistant. Call a tool when it helps; when you have what you need, answer briefly.";

impl RunCtx {
    fn text(&self, t: &Template, scope: &Scope) -> Result<String, AiError> {
        let v = t
            .render(&mut |e: &Expr| scope.eval(&self.shared.expr_engine, e))
            .map_err(|e| AiError::fatal(format!("prompt: {e}")))?;
        Ok(match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    async fn model(&self, spec: Option<&crate::plan::ModelSpec>) -> Result<Arc<dyn ChatModel>, AiError> {
        self.shared.config.models.get(spec).await.map_err(AiError::fatal)
    }

    /// Run an `llm` step: text, or JSON conforming to the step's schema.
    pub(crate) async fn llm(&self, l: &LlmStep, scope: &Scope) -> Result<Value, AiError> {
        let prompt = self.text(&l.prompt, scope)?;
        let mut messages = Vec::new();
        if let Some(s) = &l.system {
            messages.push(Message::system(self.text(s, scope)?));
        }
        messages.push(Message::user(prompt));
        let model = self.model(l.model.as_ref()).await?;
        let mut req = ChatRequest::new(messages);
        req.max_tokens = l.max_tokens;
        req.temperature = l.temperature;
        req.cancel = self.cancel.child_token();
        if let Some(schema) = &l.schema {
            req.format = ResponseFormat::JsonSchema(schema.clone());
        }
        let resp = model.chat(req, &mut |_| {}).await.map_err(AiError::model)?;
        let Some(validator) = &l.validator else {
            return Ok(Value::String(resp.content.trim().to_string()));
        };
        let text = resp.content.trim();
        let value: Value = serde_json::from_str(text).map_err(|e| {
            AiError::fatal(format!(
                "the model's answer is not JSON ({e}); it was: {}",
                clip(text, 300)
            ))
        })?;
        if let Some(err) = validator.iter_errors(&value).next() {
            let at = err.instance_path().to_string();
            return Err(AiError::fatal(format!(
                "the model's JSON does not conform to the step's schema at `{}`: {err}; it was: {}",
                if at.is_empty() { "/" } else { &at },
                clip(text, 300)
            )));
        }
        Ok(value)
    }

    /// The tools an agent step may call: listed by the step and allowed by the plan.
    fn agent_tools(&self, a: &AgentStep) -> Vec<ToolDef> {
        self.shared
            .registry
            .list()
            .into_iter()
            .filter(|t| a.allows(&t.spec.name))
            .filter(|t| self.plan.policy.refusal(&t.spec.name, t.spec.side_effects).is_none())
            .map(|t| ToolDef {
                name: t.spec.name,
                description: t.spec.description,
                parameters: t.spec.parameters,
            })
            .collect()
    }

    async fn journal_turn(&self, key: &str, step_id: &str, record: &Value) -> Result<(), AiError> {
        self.shared
            .journal
            .commit(vec![Op::StepFinished {
                run: self.id.clone(),
                key: key.to_string(),
                step_id: step_id.to_string(),
                kind: "agent.turn",
                status: "succeeded",
                attempt: 1,
                output: Some(json_text(record)),
                error: None,
                seq: self.next_event(),
                at: now_us(),
            }])
            .await
            .map_err(|e| AiError::fatal(format!("journal: {e}")))?;
        if let Ok(mut d) = self.done.lock() {
            d.insert(
                key.to_string(),
                StepResult {
                    status: Status::Succeeded,
                    output: Arc::new(record.clone()),
                },
            );
        }
        Ok(())
    }

    /// Run an `agent` step.
    pub(crate) async fn agent(&self, a: &AgentStep, scope: &Scope, key: &str, step_id: &str) -> Result<Value, AiError> {
        let started = Instant::now();
        let task = self.text(&a.prompt, scope)?;
        let instructions = match &a.instructions {
            Some(t) => self.text(t, scope)?,
            None => DEFAULT_INSTRUCTIONS.to_string(),
        };
        let tools = self.agent_tools(a);
        if tools.is_empty() {
            return Err(AiError::fatal(format!(
                "none of the agent's tools ({}) may be called under this plan's tool policy",
                a.tools.join(", ")
            )));
        }
        let model = self.model(a.model.as_ref()).await?;
        let chooser = ToolChooser::new(model.clone());
        let mut messages = vec![Message::system(instructions), Message::user(task)];
        let mut calls: Vec<Value> = Vec::new();
        let mut seen: Vec<(String, Value)> = Vec::new();
        let mut tokens = 0u64;
        let mut steered = false;
        let mut turn = 0u32;
        loop {
            turn += 1;
            let turn_key = format!("{key}.turn{turn}");
            let replay = self.done.lock().ok().and_then(|d| d.get(&turn_key).cloned());
            if let Some(r) = replay {
                // A finished turn: put its call and observation back, do not call again.
                if let Some(answer) = r.output.get("answer").and_then(Value::as_str) {
                    return Ok(agent_output(answer, turn, &calls, "answered"));
                }
                let call: ToolCall = serde_json::from_value(r.output["call"].clone())
                    .map_err(|e| AiError::fatal(format!("journaled turn `{turn_key}` is unreadable: {e}")))?;
                let obs = observation_text(&r.output["result"]);
                seen.push((call.name.clone(), call.arguments.clone()));
                calls.push(json!({"tool": call.name, "arguments": call.arguments, "replayed": true}));
                messages.push(Message::assistant_call(call.clone()));
                messages.push(Message::tool_result(&call, obs));
                continue;
            }
            if let Some(b) = a.time_budget
                && started.elapsed() > b
            {
                return Err(budget(
                    format!("time budget of {} used up", humantime::format_duration(b)),
                    turn,
                    &calls,
                ));
            }
            if tokens > u64::from(a.max_tokens) {
                return Err(budget(
                    format!("token budget of {} used up ({tokens} tokens)", a.max_tokens),
                    turn,
                    &calls,
                ));
            }
            if self.cancel.is_cancelled() {
                return Err(AiError::fatal("cancelled"));
            }
            // The model chooses a call or an answer; an invalid call gets one repair attempt.
            let mut repaired = false;
            let decision = loop {
                let d = chooser.choose_with(&messages, &tools, self.cancel.child_token()).await;
                let problem = match d {
                    Ok(d) => match &d.call {
                        Some(c) => match self.shared.registry.validate(&c.name, &c.arguments) {
                            Ok(()) if tools.iter().any(|t| t.name == c.name) => break d,
                            Ok(()) => format!("`{}` is not one of the tools you may call", c.name),
                            Err(e) => e.to_string(),
                        },
                        None => break d,
                    },
                    Err(ModelError::BadOutput(m)) => m,
                    Err(e) => return Err(AiError::model(e)),
                };
                if repaired {
                    return Err(AiError::fatal(format!(
                        "the model's tool call is invalid after one repair attempt: {problem}"
                    )));
                }
                repaired = true;
                messages.push(Message::user(format!(
                    "That tool call was not valid: {problem}. Call one of the tools with arguments that match its parameters, or answer."
                )));
            };
            tokens += u64::from(
                decision
                    .usage
                    .prompt_tokens
                    .saturating_sub(decision.usage.cached_tokens),
            ) + u64::from(decision.usage.completion_tokens);
            let Some(call) = decision.call else {
                let answer = self.final_answer(&model, &messages, &mut tokens).await?;
                self.journal_turn(&turn_key, step_id, &json!({"answer": answer}))
                    .await?;
                return Ok(agent_output(&answer, turn, &calls, "answered"));
            };
            if turn > a.max_turns {
                return Err(budget(
                    format!("{} turns used without a final answer", a.max_turns),
                    turn,
                    &calls,
                ));
            }
            if seen.iter().any(|(n, args)| *n == call.name && *args == call.arguments) {
                if steered {
                    return Err(AiError::fatal(format!(
                        "agent stopped: it repeated the call `{}` with the same arguments {} after being told the result",
                        call.name, call.arguments
                    )));
                }
                // Steer once: the result is already in the conversation.
                steered = true;
                messages.push(Message::user(format!(
                    "You already called `{}` with these arguments; its result is above. Use it to answer now.",
                    call.name
                )));
                turn -= 1;
                continue;
            }
            self.shared.journal.submit(vec![Op::StepStarted {
                run: self.id.clone(),
                key: turn_key.clone(),
                step_id: step_id.to_string(),
                kind: "agent.turn",
                attempt: 1,
                seq: self.next_step_seq(),
                at: now_us(),
            }]);
            let cx = self.tool_cx.for_step(&self.id, &turn_key);
            let result = match self.shared.registry.call(&call.name, call.arguments.clone(), &cx).await {
                Ok(v) => v,
                // A failing tool is an observation: the model may correct itself.
                Err(e) => json!({"error": e.to_string()}),
            };
            let record = json!({"call": call, "result": result});
            self.journal_turn(&turn_key, step_id, &record).await?;
            seen.push((call.name.clone(), call.arguments.clone()));
            calls.push(json!({"tool": call.name, "arguments": call.arguments}));
            messages.push(Message::assistant_call(call.clone()));
            messages.push(Message::tool_result(&call, observation_text(&result)));
        }
    }

    async fn final_answer(
        &self,
        model: &Arc<dyn ChatModel>,
        messages: &[Message],
        tokens: &mut u64,
    ) -> Result<String, AiError> {
        let mut req = ChatRequest::new(messages.to_vec());
        req.max_tokens = 256;
        req.cancel = self.cancel.child_token();
        let resp = model.chat(req, &mut |_| {}).await.map_err(AiError::model)?;
        *tokens += u64::from(resp.usage.prompt_tokens.saturating_sub(resp.usage.cached_tokens))
            + u64::from(resp.usage.completion_tokens);
        Ok(resp.content.trim().to_string())
    }
}

fn agent_output(answer: &str, turn: u32, calls: &[Value], status: &str) -> Value {
    json!({"answer": answer, "status": status, "turns": turn, "calls": calls})
}

fn budget(what: String, turn: u32, calls: &[Value]) -> AiError {
    let last = calls
        .last()
        .map(|c| format!("; last call: {}", c["tool"].as_str().unwrap_or("?")))
        .unwrap_or_default();
    AiError::fatal(format!(
        "agent stopped (budget): {what} after {} tool call(s){last}",
        turn.saturating_sub(1)
    ))
}

fn observation_text(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    clip(&s, MAX_OBSERVATION)
}

fn clip(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        format!("{}…", &s[..s.floor_char_boundary(n)])
    }
}
