//! Executing `llm` and `agent` steps.
//!
//! An agent journals each turn as child steps through the same `StepStarted`/`StepFinished`
//! events as any step: the model's decision (`<key>.turn<N>.decision`) and the tool call with
//! its observation (`<key>.turn<N>`). On resume, journaled turns are replayed (their calls and
//! observations go back into the conversation), finished tools are not called again, and
//! the loop continues after them.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use stepwise_memory::{AgentMemory, Captured, NewMessage, Provenance};
use stepwise_model::{
    ChatModel, ChatRequest, Message, ModelError, ResponseFormat, Role, ToolCall, ToolChooser, ToolDef,
};

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

/// System message of an agent step without `instructions`.
pub const DEFAULT_INSTRUCTIONS: &str =
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

    /// The tools an agent step may call: allowed by the plan's policy and by the step's own
    /// list (names or globs; a side-effecting tool must be named).
    fn agent_tools(&self, a: &AgentStep) -> Vec<ToolDef> {
        crate::plan::ToolPolicy::visible(&[&self.plan.policy, &a.policy], &self.shared.registry)
            .into_iter()
            .map(|spec| ToolDef {
                name: spec.name,
                description: spec.description,
                parameters: spec.parameters,
            })
            .collect()
    }

    /// A journaled part of an agent's turn, replayed on resume.
    fn replayed(&self, key: &str) -> Option<Arc<Value>> {
        let d = self.done.lock().ok()?;
        d.get(key)
            .filter(|r| r.status == Status::Succeeded)
            .map(|r| r.output.clone())
    }

    /// Record one part of an agent turn (`agent.decision` or `agent.tool`) as finished; it
    /// is on disk before the agent goes on.
    async fn journal_part(&self, key: &str, step_id: &str, kind: &'static str, record: &Value) -> Result<(), AiError> {
        self.shared
            .journal
            .commit(vec![Op::StepFinished {
                run: self.id.clone(),
                key: key.to_string(),
                step_id: step_id.to_string(),
                kind,
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
    ///
    /// Turn `N` journals two parts: `<key>.turn<N>.decision` (the model's choice: a call or
    /// an answer) as soon as it is made, and `<key>.turn<N>` (kind `agent.tool`: started
    /// before the tool runs, finished with the call and its observation). On resume both
    /// are replayed: the model is not asked again for a journaled decision and a finished
    /// tool is not called again. A decision whose tool had not finished runs its tool.
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
        let memory = match &a.memory {
            Some(m) => Some(self.agent_memory(m, scope, &task, key, step_id).await?),
            None => None,
        };
        let mut messages = vec![Message::system(instructions)];
        let mut prompt = task.clone();
        if let Some((_, rec)) = &memory {
            let history: Vec<Message> = serde_json::from_value(rec["history"].clone()).unwrap_or_default();
            messages.extend(history);
            // The memories go right before the task: a small model uses what is near the
            // question, and copies earlier answers of the thread otherwise.
            prompt = with_memories(rec["text"].as_str().unwrap_or_default().trim(), &task)
                .trim()
                .to_string();
        }
        let task_at = messages.len();
        messages.push(Message::user(prompt));
        let mut st = AgentState {
            messages,
            calls: Vec::new(),
            tokens: 0,
            repeats: 0,
        };
        for turn in 1..=a.max_turns + 1 {
            let turn_key = format!("{key}.turn{turn}");
            let decision_key = format!("{turn_key}.decision");
            let decision = match self.replayed(&decision_key) {
                Some(d) => (*d).clone(),
                None => {
                    self.check_budgets(a, started, &st, turn)?;
                    let must_answer = turn > a.max_turns || st.repeats >= 2;
                    let d = self.decide(&chooser, &model, &tools, &mut st, must_answer).await?;
                    self.journal_part(&decision_key, step_id, "agent.decision", &d).await?;
                    d
                }
            };
            if let Some(answer) = decision.get("answer").and_then(Value::as_str) {
                let mut out = agent_output(answer, turn, &st, "answered");
                if let Some((mem, rec)) = &memory {
                    let turn = &st.messages[task_at + 1..];
                    out["memory"] = self.persist_turn(mem, rec, &task, turn, answer, key).await?;
                }
                return Ok(out);
            }
            let call: ToolCall = serde_json::from_value(decision["call"].clone())
                .map_err(|e| AiError::fatal(format!("journaled decision `{decision_key}` is unreadable: {e}")))?;
            if st
                .calls
                .iter()
                .any(|c| c["tool"] == call.name.as_str() && c["arguments"] == call.arguments)
            {
                st.repeats += 1;
                if st.repeats > 2 {
                    return Err(AiError::fatal(format!(
                        "agent stopped (repeated call): `{}` with the same arguments {} again after being told \
                         to answer",
                        call.name, call.arguments
                    )));
                }
                // The result is already in the conversation. First repeat: steer. Second:
                // the next turn gets no tools and must answer.
                st.messages.push(Message::user(format!(
                    "You already called `{}` with these arguments; its result is above. Use it to answer now.",
                    call.name
                )));
                continue;
            }
            let (result, replayed) = match self.replayed(&turn_key) {
                Some(r) => (r["result"].clone(), true),
                None => (self.call_tool(&call, &turn_key, step_id).await?, false),
            };
            st.calls
                .push(json!({"tool": call.name, "arguments": call.arguments, "replayed": replayed}));
            st.messages.push(Message::assistant_call(call.clone()));
            st.messages.push(Message::tool_result(&call, observation_text(&result)));
        }
        Err(budget(
            format!("{} turns used without a final answer", a.max_turns),
            &st,
        ))
    }

    /// Before an agent with `memory:` starts: capture what the task states about the user,
    /// recall the memories relevant to it and read the thread's history. All of it is
    /// journaled as `<key>.memory` (kind `agent.memory`), so a resumed run sees the same
    /// context.
    async fn agent_memory(
        &self,
        m: &crate::plan::AgentMemory,
        scope: &Scope,
        task: &str,
        key: &str,
        step_id: &str,
    ) -> Result<(AgentMemory, Value), AiError> {
        let Some(memory) = self.shared.config.memory.clone() else {
            return Err(AiError::fatal(
                "the agent has a `memory:` block but this engine has no memory database",
            ));
        };
        let mut config = m.config.clone();
        if let Some(t) = &m.thread {
            let id = self.text(t, scope)?;
            if let Some(why) = stepwise_memory::threads::thread_id_problem(&id) {
                return Err(AiError::fatal(format!("memory.thread: {why}")));
            }
            config.thread = Some(id);
        }
        let mem = AgentMemory::new(memory, config);
        let memory_key = format!("{key}.memory");
        if let Some(rec) = self.replayed(&memory_key) {
            return Ok((mem, (*rec).clone()));
        }
        let db = |e: stepwise_memory::Error| AiError::fatal(format!("memory: {e}"));
        let provenance = Provenance {
            run_id: Some(self.id.clone()),
            step: Some(key.to_string()),
        };
        let captured = mem.capture(task, provenance).await.map_err(db)?;
        let injected = mem.before_turn(task).await.map_err(db)?;
        let history = text_history(&injected.history);
        let rec = json!({
            "thread": mem.config().thread,
            "namespace": mem.config().namespace,
            "text": injected.text,
            "recalled": injected.hits.iter().map(|h| json!({"kind": h.kind, "id": h.id, "text": h.text, "score": h.score})).collect::<Vec<_>>(),
            "captured": captured.iter().map(|(c, r)| json!({"memory": captured_text(c), "id": r.id})).collect::<Vec<_>>(),
            "history": history,
        });
        self.journal_part(&memory_key, step_id, "agent.memory", &rec).await?;
        Ok((mem, rec))
    }

    /// Persist the agent's turn to its thread (once per run, also across resumes) and say
    /// what memory did, for the step's output.
    async fn persist_turn(
        &self,
        mem: &AgentMemory,
        rec: &Value,
        task: &str,
        turn: &[Message],
        answer: &str,
        key: &str,
    ) -> Result<Value, AiError> {
        let mut msgs = vec![NewMessage::new(Role::User, task)];
        // Steering messages of the loop (repair, repeat) are not the user's words.
        msgs.extend(turn.iter().filter(|m| m.role != Role::User).map(stored_message));
        msgs.push(NewMessage::new(Role::Assistant, answer));
        let stored = mem
            .after_step(&self.id, key, msgs)
            .await
            .map_err(|e| AiError::fatal(format!("memory: persisting the turn: {e}")))?;
        Ok(json!({
            "thread": rec["thread"],
            "recalled": rec["recalled"].as_array().map(|a| a.iter().map(|h| h["text"].clone()).collect::<Vec<_>>()),
            "captured": rec["captured"].as_array().map(|a| a.iter().map(|c| c["memory"].clone()).collect::<Vec<_>>()),
            "history_messages": rec["history"].as_array().map_or(0, Vec::len),
            "persisted": stored.map_or(0, |s| s.len()),
        }))
    }

    fn check_budgets(&self, a: &AgentStep, started: Instant, st: &AgentState, turn: u32) -> Result<(), AiError> {
        if self.cancel.is_cancelled() {
            return Err(AiError::fatal("cancelled"));
        }
        if let Some(b) = a.time_budget
            && started.elapsed() > b
        {
            return Err(budget(
                format!(
                    "time budget of {} used up in turn {turn}",
                    humantime::format_duration(b)
                ),
                st,
            ));
        }
        if st.tokens > u64::from(a.max_tokens) {
            return Err(budget(
                format!(
                    "token budget of {} used up ({} tokens) in turn {turn}",
                    a.max_tokens, st.tokens
                ),
                st,
            ));
        }
        Ok(())
    }

    /// The model's decision for this turn: `{"call": …}` or `{"answer": …}`. An invalid call
    /// gets one repair attempt. With `must_answer` (turns used up) it answers.
    async fn decide(
        &self,
        chooser: &ToolChooser,
        model: &Arc<dyn ChatModel>,
        tools: &[ToolDef],
        st: &mut AgentState,
        must_answer: bool,
    ) -> Result<Value, AiError> {
        if !must_answer {
            let mut repaired = false;
            loop {
                let d = chooser
                    .choose_with(&st.messages, tools, self.cancel.child_token())
                    .await;
                let problem = match d {
                    Ok(d) => {
                        st.tokens += usage_tokens(&d.usage);
                        match d.call {
                            Some(c) => match self.shared.registry.validate(&c.name, &c.arguments) {
                                Ok(()) if tools.iter().any(|t| t.name == c.name) => return Ok(json!({"call": c})),
                                Ok(()) => format!("`{}` is not one of the tools you may call", c.name),
                                Err(e) => e.to_string(),
                            },
                            None => break,
                        }
                    }
                    Err(ModelError::BadOutput(m)) => m,
                    Err(e) => return Err(AiError::model(e)),
                };
                if repaired {
                    return Err(AiError::fatal(format!(
                        "the model's tool call is invalid after one repair attempt: {problem}"
                    )));
                }
                repaired = true;
                st.messages.push(Message::user(format!(
                    "That tool call was not valid: {problem}. Call one of the tools with arguments that match \
                     its parameters, or answer."
                )));
            }
        }
        let answer = self.final_answer(model, &st.messages, &mut st.tokens).await?;
        Ok(json!({"answer": answer}))
    }

    /// Call a tool for an agent, journaling its start and its observation.
    async fn call_tool(&self, call: &ToolCall, turn_key: &str, step_id: &str) -> Result<Value, AiError> {
        self.shared.journal.submit(vec![Op::StepStarted {
            run: self.id.clone(),
            key: turn_key.to_string(),
            step_id: step_id.to_string(),
            kind: "agent.tool",
            attempt: 1,
            seq: self.next_event(),
            at: now_us(),
        }]);
        let cx = self.tool_cx.for_step(&self.id, turn_key);
        let result = match self.shared.registry.call(&call.name, call.arguments.clone(), &cx).await {
            Ok(v) => v,
            // A failing tool is an observation: the model may correct itself.
            Err(e) => json!({"error": e.to_string()}),
        };
        self.journal_part(
            turn_key,
            step_id,
            "agent.tool",
            &json!({"call": call, "result": result}),
        )
        .await?;
        Ok(result)
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
        *tokens += usage_tokens(&resp.usage);
        Ok(resp.content.trim().to_string())
    }
}

/// What an agent has done so far.
struct AgentState {
    messages: Vec<Message>,
    calls: Vec<Value>,
    /// Prompt tokens evaluated (not reused from the cache) plus tokens generated.
    tokens: u64,
    /// Calls repeated with the same arguments so far.
    repeats: u32,
}

fn usage_tokens(u: &stepwise_model::Usage) -> u64 {
    u64::from(u.prompt_tokens.saturating_sub(u.cached_tokens)) + u64::from(u.completion_tokens)
}

fn agent_output(answer: &str, turn: u32, st: &AgentState, status: &str) -> Value {
    json!({"answer": answer, "status": status, "turns": turn, "calls": st.calls, "tokens": st.tokens,
           "repeated_calls": st.repeats})
}

fn budget(what: String, st: &AgentState) -> AiError {
    let last = st
        .calls
        .last()
        .map(|c| format!("; last call: {}", c["tool"].as_str().unwrap_or("?")))
        .unwrap_or_default();
    AiError::fatal(format!(
        "agent stopped (budget): {what}, after {} tool call(s){last}",
        st.calls.len()
    ))
}

/// `first` and `then` with a blank line between them; `then` alone when `first` is empty
/// (recalled memories before a task, instructions before memories).
pub(crate) fn with_memories(first: &str, then: &str) -> String {
    if then.trim().is_empty() {
        first.to_string()
    } else if first.trim().is_empty() {
        then.to_string()
    } else {
        format!("{first}\n\n{then}")
    }
}

/// A stored thread message as the model sees it (the role is the same type on both sides).
pub(crate) fn model_message(m: &stepwise_memory::Message) -> Message {
    let m = &m.message;
    Message {
        role: m.role,
        content: m.content.clone(),
        tool_calls: m
            .tool_calls
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default(),
        tool_call_id: m.tool_call_id.clone(),
        name: m.name.clone(),
    }
}

/// Earlier messages of a thread to replay, as text: the user's messages and the answers.
/// A small model shown earlier tool-call messages imitates them instead of answering; the
/// thread keeps the calls and results, and recall can still bring them up.
pub(crate) fn text_history(history: &[stepwise_memory::Message]) -> Vec<Message> {
    history
        .iter()
        .map(model_message)
        .filter(|m| matches!(m.role, Role::User | Role::Assistant) && m.tool_calls.is_empty())
        .filter(|m| !m.content.trim().is_empty())
        .collect()
}

/// A model message as a thread stores it.
pub(crate) fn stored_message(m: &Message) -> NewMessage {
    let mut n = NewMessage::new(m.role, m.content.clone());
    if !m.tool_calls.is_empty() {
        n.tool_calls = serde_json::to_value(&m.tool_calls).ok();
    }
    n.tool_call_id = m.tool_call_id.clone();
    n.name = m.name.clone();
    n
}

/// A captured memory in words (`name: Ada`, or the note).
pub(crate) fn captured_text(c: &Captured) -> String {
    match c {
        Captured::Fact { key, value } => format!("{}: {value}", key.replace('_', " ")),
        Captured::Note(t) => t.clone(),
    }
}

pub(crate) fn observation_text(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    clip(&s, MAX_OBSERVATION)
}

pub(crate) fn clip(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        format!("{}…", &s[..s.floor_char_boundary(n)])
    }
}
