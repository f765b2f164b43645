//! One `stepwise chat` session: a thread, a model, the tools it may call and memory. A turn
//! captures what the user says about themselves, recalls the memories relevant to the input,
//! replays the thread's history, lets the tool chooser call tools (the same chooser as an
//! agent step), streams the answer and persists the turn to the thread.

use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use stepwise_memory::{AgentMemory, Hit, Kind, NewMessage, Provenance, Thread};
use stepwise_model::{
    ChatModel, ChatRequest, FinishReason, Message, ModelError, Role, TokenSink, ToolChooser, ToolDef,
};
use stepwise_tools::{Registry, ToolContext};
use tokio_util::sync::CancellationToken;

use crate::engine::{captured_text, observation_text, stored_message, text_history, with_memories};

/// Instructions of a chat session.
pub const CHAT_INSTRUCTIONS: &str = "You are a helpful assistant. Answer briefly and directly. \
     Use what you know about the user when it answers the question.";

/// Most tool calls in one turn before the model must answer.
const MAX_CALLS: usize = 3;

/// Most tokens of one answer.
const MAX_ANSWER_TOKENS: u32 = 256;

/// A tool call made in a turn.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub tool: String,
    pub arguments: Value,
    pub result: Value,
}

/// A memory recalled for a turn.
#[derive(Debug, Clone, Serialize)]
pub struct Recalled {
    pub kind: Kind,
    pub text: String,
    pub score: f64,
}

impl From<&Hit> for Recalled {
    fn from(h: &Hit) -> Self {
        Recalled {
            kind: h.kind,
            text: h.text.clone(),
            score: h.score,
        }
    }
}

/// What one turn did (the `--json` line of a turn).
#[derive(Debug, Clone, Serialize)]
pub struct TurnOutcome {
    pub turn: u32,
    pub thread: String,
    pub input: String,
    pub answer: String,
    pub tool_calls: Vec<CallRecord>,
    pub recalled: Vec<Recalled>,
    /// What the input stated about the user and was stored (facts as `key: value`).
    pub captured: Vec<String>,
    /// Earlier messages of the thread put back into the context.
    pub history_messages: usize,
    /// Ctrl-C stopped the answer; the turn was not persisted.
    pub cancelled: bool,
}

/// A chat session.
pub struct Session {
    pub memory: AgentMemory,
    pub thread: Thread,
    model: Arc<dyn ChatModel>,
    chooser: ToolChooser,
    registry: Registry,
    tools: Vec<ToolDef>,
    tool_cx: ToolContext,
    turn: u32,
    /// The last turn, for `/memory`.
    pub last: Option<TurnOutcome>,
}

impl Session {
    pub fn new(
        memory: AgentMemory,
        thread: Thread,
        model: Arc<dyn ChatModel>,
        registry: Registry,
        tools: Vec<ToolDef>,
        tool_cx: ToolContext,
    ) -> Session {
        Session {
            memory,
            thread,
            chooser: ToolChooser::new(model.clone()),
            model,
            registry,
            tools,
            tool_cx,
            turn: 0,
            last: None,
        }
    }

    /// The tools offered to the model.
    pub fn tools(&self) -> &[ToolDef] {
        &self.tools
    }

    /// One turn: `on_token` receives the answer as it is generated.
    pub async fn turn(
        &mut self,
        input: &str,
        cancel: CancellationToken,
        on_token: TokenSink<'_>,
        on_call: &mut (dyn FnMut(&CallRecord) + Send),
    ) -> anyhow::Result<TurnOutcome> {
        self.turn += 1;
        let provenance = Provenance {
            run_id: None,
            step: Some(format!("chat:{}#{}", self.thread.id, self.turn)),
        };
        let captured = self
            .memory
            .capture(input, provenance)
            .await
            .context("storing what you said about yourself")?;
        let injected = self.memory.before_turn(input).await.context("recalling memories")?;
        let mut messages = vec![Message::system(with_memories(CHAT_INSTRUCTIONS, &injected.text))];
        // Earlier turns as text: a small model shown earlier tool-call messages imitates them
        // instead of answering. (The thread keeps the calls and results.)
        let history = text_history(&injected.history);
        messages.extend(history.iter().cloned());
        let turn_at = messages.len();
        messages.push(Message::user(input));

        let mut outcome = TurnOutcome {
            turn: self.turn,
            thread: self.thread.id.clone(),
            input: input.to_string(),
            answer: String::new(),
            tool_calls: Vec::new(),
            recalled: injected.hits.iter().map(Recalled::from).collect(),
            captured: captured.iter().map(|(c, _)| captured_text(c)).collect(),
            history_messages: history.len(),
            cancelled: false,
        };
        self.call_tools(&mut messages, &mut outcome, &cancel, on_call).await?;
        if cancel.is_cancelled() {
            outcome.cancelled = true;
            self.last = Some(outcome.clone());
            return Ok(outcome);
        }
        // The answer sees tool results as text, for the same reason, and the memories right
        // before the question: a small model attends to what is near it, and copies its own
        // earlier answers otherwise.
        let mut answer_msgs = vec![Message::system(CHAT_INSTRUCTIONS)];
        answer_msgs.extend(history);
        let context = with_tool_results(injected.text.trim_end(), &outcome.tool_calls);
        answer_msgs.push(Message::user(if context.trim().is_empty() {
            input.to_string()
        } else {
            format!("{}\n\n{input}", context.trim())
        }));
        let mut req = ChatRequest::new(answer_msgs);
        req.max_tokens = MAX_ANSWER_TOKENS;
        let stop = cancel.child_token();
        req.cancel = stop.clone();
        // Greedy decoding of a tiny model can loop on one sentence: stop at the first repeat.
        let mut guard = RepeatGuard::default();
        let mut sink = |t: &str| {
            on_token(t);
            if guard.push(t) {
                stop.cancel();
            }
        };
        let resp = self.model.chat(req, &mut sink).await.context("the model failed")?;
        outcome.answer = guard.trimmed(&resp.content);
        if resp.finish == FinishReason::Cancelled && cancel.is_cancelled() {
            outcome.cancelled = true;
        } else {
            let mut msgs: Vec<NewMessage> = messages[turn_at..].iter().map(stored_message).collect();
            msgs.push(NewMessage::new(Role::Assistant, outcome.answer.clone()));
            self.memory.after_turn(msgs).await.context("persisting the turn")?;
        }
        self.last = Some(outcome.clone());
        Ok(outcome)
    }

    /// Let the chooser call tools until it chooses none (or [`MAX_CALLS`]).
    async fn call_tools(
        &self,
        messages: &mut Vec<Message>,
        outcome: &mut TurnOutcome,
        cancel: &CancellationToken,
        on_call: &mut (dyn FnMut(&CallRecord) + Send),
    ) -> anyhow::Result<()> {
        if self.tools.is_empty() {
            return Ok(());
        }
        for _ in 0..MAX_CALLS {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let call = match self
                .chooser
                .choose_with(messages, &self.tools, cancel.child_token())
                .await
            {
                Ok(d) => match d.call {
                    Some(c) => c,
                    None => return Ok(()),
                },
                // An unusable call: answer without tools.
                Err(ModelError::BadOutput(m)) => {
                    tracing::debug!("chooser: {m}");
                    return Ok(());
                }
                Err(ModelError::Cancelled) => return Ok(()),
                Err(e) => return Err(anyhow::Error::new(e).context("the tool chooser failed")),
            };
            if self.registry.validate(&call.name, &call.arguments).is_err()
                || outcome
                    .tool_calls
                    .iter()
                    .any(|c| c.tool == call.name && c.arguments == call.arguments)
            {
                return Ok(());
            }
            let result = match self
                .registry
                .call(&call.name, call.arguments.clone(), &self.tool_cx)
                .await
            {
                Ok(v) => v,
                Err(e) => json!({"error": e.to_string()}),
            };
            let record = CallRecord {
                tool: call.name.clone(),
                arguments: call.arguments.clone(),
                result: result.clone(),
            };
            on_call(&record);
            outcome.tool_calls.push(record);
            messages.push(Message::assistant_call(call.clone()));
            messages.push(Message::tool_result(&call, observation_text(&result)));
        }
        Ok(())
    }
}

/// `system` followed by what the tools called in this turn returned.
fn with_tool_results(system: &str, calls: &[CallRecord]) -> String {
    if calls.is_empty() {
        return system.to_string();
    }
    let mut s = format!("{system}\n\nTool results for the user's question:\n");
    for c in calls {
        s.push_str(&format!(
            "- {} {}: {}\n",
            c.tool,
            c.arguments,
            observation_text(&c.result)
        ));
    }
    s
}

/// Spots an answer that starts repeating a sentence it already said.
#[derive(Default)]
struct RepeatGuard {
    text: String,
    /// Byte offset where the repeat begins.
    repeat_at: Option<usize>,
}

impl RepeatGuard {
    /// Add generated text; true when the last finished sentence was said before.
    fn push(&mut self, t: &str) -> bool {
        self.text.push_str(t);
        if self.repeat_at.is_some() || !t.contains(['.', '!', '?', '\n']) {
            return self.repeat_at.is_some();
        }
        let ends: Vec<usize> = self
            .text
            .match_indices(['.', '!', '?', '\n'])
            .map(|(i, _)| i + 1)
            .collect();
        let mut start = 0;
        let mut seen: Vec<&str> = Vec::new();
        for end in ends {
            let sentence = self.text[start..end].trim();
            if sentence.len() >= 8 && seen.contains(&sentence) {
                self.repeat_at = Some(start);
                return true;
            }
            seen.push(sentence);
            start = end;
        }
        false
    }

    /// The answer without the repeat.
    fn trimmed(&self, content: &str) -> String {
        match self.repeat_at {
            Some(at) if at <= content.len() && content.is_char_boundary(at) => content[..at].trim().to_string(),
            _ => content.trim().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_sentence_stops_the_answer() {
        let mut g = RepeatGuard::default();
        let text = "I'm glad to help. Ask me anything. I'm glad to help. I'm glad";
        let mut stopped = false;
        for piece in text.split_inclusive(' ') {
            stopped |= g.push(piece);
        }
        assert!(stopped);
        assert_eq!(g.trimmed(text), "I'm glad to help. Ask me anything.");
        let mut g = RepeatGuard::default();
        assert!(!g.push("It is 3.5 km. Ok. Ok."), "short sentences may repeat");
        assert_eq!(g.trimmed("It is 3.5 km. Ok. Ok."), "It is 3.5 km. Ok. Ok.");
    }
}
