//! What an agent step and `stepwise chat` call: before a model turn, the top-k memories
//! relevant to the user's message (and the thread's recent history) to put into the prompt;
//! after it, the turn's messages persisted to the thread.
//!
//! The whole API a chat session needs, in order:
//!
//! | need | call |
//! |---|---|
//! | open the database (migrations, writer and embedding threads) | [`Memory::open`] |
//! | create or continue a thread | [`Memory::open_thread`], [`Memory::thread`], [`Memory::threads`] |
//! | recent turns to replay, within a token budget | [`Memory::history`] (or [`Memory::messages`]) |
//! | memories for the prompt (hybrid recall) + history | [`AgentMemory::before_turn`] |
//! | persist a turn (user, assistant, tool calls and results) | [`AgentMemory::after_turn`] / [`Memory::append`] |
//! | facts | [`Memory::remember_fact`], [`Memory::fact`], [`Memory::facts`] |
//! | notes and free recall | [`Memory::remember_note`], [`Memory::recall`] with a [`Query`] |
//! | the `memory.*` tools for the model | [`crate::tools::register`] |
//!
//! ```no_run
//! use stepwise_memory::{
//!     AgentMemory, AgentMemoryConfig, Memory, NewFact, NewMessage, OpenOptions, Role,
//! };
//!
//! # async fn chat(db: &std::path::Path) -> stepwise_memory::Result<()> {
//! let memory = Memory::open(db, OpenOptions::default()).await?;
//! let thread = memory.open_thread(Some("trip-planning"), "default", Some("Trip planning")).await?;
//! memory
//!     .remember_fact(NewFact {
//!         subject: "user".into(),
//!         key: "home_airport".into(),
//!         value: "AMS".into(),
//!         ..Default::default()
//!     })
//!     .await?;
//! let session = AgentMemory::new(
//!     memory.clone(),
//!     AgentMemoryConfig { thread: Some(thread.id.clone()), ..Default::default() },
//! );
//! let user = "Which airport should I fly from?";
//! let injected = session.before_turn(user).await?;
//! // System prompt += injected.text; replay injected.history (oldest first); then the user
//! // message. Stream the model's reply, then persist the turn:
//! let reply = "From Amsterdam (AMS), your home airport.";
//! session
//!     .after_turn(vec![NewMessage::new(Role::User, user), NewMessage::new(Role::Assistant, reply)])
//!     .await?;
//! # Ok(())
//! # }
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::capture::Captured;
use crate::error::Result;
use crate::memory::Memory;
use crate::threads::{Message, NewMessage};
use crate::types::{DEFAULT_NAMESPACE, Hit, Kind, Mode, Provenance, Query, Remembered};

/// Which memories to inject before each model turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecallConfig {
    /// How many memories to inject (0 turns injection off).
    #[serde(default = "default_k")]
    pub k: usize,
    /// Namespaces searched [default: the thread's namespace].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Only memories about this subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Kinds searched [default: notes, facts and messages of this thread].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<Kind>,
    /// Memories found only by vector search must be at least this similar (cosine).
    #[serde(default = "default_min_cosine")]
    pub min_cosine: f32,
    /// Longest injected text, in characters (memories past it are left out).
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
}

fn default_k() -> usize {
    5
}
fn default_min_cosine() -> f32 {
    0.3
}
fn default_max_chars() -> usize {
    2000
}

impl Default for RecallConfig {
    fn default() -> Self {
        RecallConfig {
            k: default_k(),
            namespaces: Vec::new(),
            subject: None,
            kinds: Vec::new(),
            min_cosine: default_min_cosine(),
            max_chars: default_max_chars(),
        }
    }
}

/// Memory settings of an agent step or a chat session (the `memory:` block of a plan's
/// agent step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentMemoryConfig {
    /// Thread the turns are persisted to; a thread goes on across runs and sessions.
    /// None: turns are not persisted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// Namespace of the thread and default namespace of recall.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Memories injected before each turn.
    #[serde(default)]
    pub recall: RecallConfig,
    /// Tokens of earlier thread messages put back into the context when a thread goes on.
    #[serde(default = "default_history_tokens")]
    pub history_tokens: i64,
    /// Store what the user's message states about the user (`My name is Ada`, `I prefer
    /// window seats`) as facts and notes before the turn, by the rules of
    /// [`crate::capture`]. `stepwise chat` turns it on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capture: bool,
}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_string()
}
fn default_history_tokens() -> i64 {
    1024
}

impl Default for AgentMemoryConfig {
    fn default() -> Self {
        AgentMemoryConfig {
            thread: None,
            namespace: default_namespace(),
            recall: RecallConfig::default(),
            history_tokens: default_history_tokens(),
            capture: false,
        }
    }
}

/// What to add to a model's context for one turn.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Injected {
    /// The memories chosen, most relevant first.
    pub hits: Vec<Hit>,
    /// Them as a system-prompt section (empty when there are none).
    pub text: String,
    /// Earlier messages of the thread to replay before the new user message, oldest first.
    pub history: Vec<Message>,
}

/// Memory as one agent step or chat session uses it.
#[derive(Clone)]
pub struct AgentMemory {
    memory: Memory,
    config: AgentMemoryConfig,
}

impl AgentMemory {
    /// Bind a memory handle to a step's or session's settings.
    pub fn new(memory: Memory, config: AgentMemoryConfig) -> AgentMemory {
        AgentMemory { memory, config }
    }

    /// The settings.
    pub fn config(&self) -> &AgentMemoryConfig {
        &self.config
    }

    /// The memory handle.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// Before a turn: the memories relevant to `user_input` and the thread's recent history.
    /// Messages already in `history` are not injected again as memories.
    pub async fn before_turn(&self, user_input: &str) -> Result<Injected> {
        let history = match &self.config.thread {
            Some(t) if self.config.history_tokens > 0 => self.memory.history(t, self.config.history_tokens).await?,
            _ => Vec::new(),
        };
        let rc = &self.config.recall;
        if rc.k == 0 || user_input.trim().is_empty() {
            return Ok(Injected {
                history,
                ..Default::default()
            });
        }
        let mut q = Query::new(user_input, rc.k + history.len().min(rc.k));
        q.namespaces = if rc.namespaces.is_empty() {
            vec![self.config.namespace.clone()]
        } else {
            rc.namespaces.clone()
        };
        q.subject = rc.subject.clone();
        q.kinds = rc.kinds.clone();
        q.thread = self.config.thread.clone();
        q.mode = Mode::Hybrid;
        q.min_cosine = Some(rc.min_cosine);
        let mut hits = self.memory.recall(q).await?;
        let in_history = |h: &Hit| {
            h.kind == Kind::Message
                && self.config.thread.as_deref() == Some(h.id.as_str())
                && history.iter().any(|m| m.seq == h.ord)
        };
        hits.retain(|h| !in_history(h));
        // A thread's messages only count when this session is that thread.
        hits.retain(|h| h.kind != Kind::Message || self.config.thread.as_deref() == Some(h.id.as_str()));
        hits.truncate(rc.k);
        let (text, kept) = render(&hits, rc.max_chars);
        hits.truncate(kept);
        Ok(Injected { hits, text, history })
    }

    /// With `capture` on: store what `user_input` states about the user (see
    /// [`crate::capture`]) in the session's namespace. Call before [`AgentMemory::before_turn`]
    /// so the turn can already use it.
    pub async fn capture(&self, user_input: &str, provenance: Provenance) -> Result<Vec<(Captured, Remembered)>> {
        if !self.config.capture {
            return Ok(Vec::new());
        }
        crate::capture::remember(&self.memory, &self.config.namespace, user_input, provenance).await
    }

    /// After a turn: persist its messages (user input, assistant replies, tool calls and
    /// results) to the thread, if one is configured. Returns their sequence numbers.
    pub async fn after_turn(&self, messages: Vec<NewMessage>) -> Result<Vec<i64>> {
        match &self.config.thread {
            Some(t) => self.memory.append(t, &self.config.namespace, messages).await,
            None => Ok(Vec::new()),
        }
    }
}

impl AgentMemory {
    /// [`AgentMemory::after_turn`] for a step of a run: persisted once, even when a resumed
    /// run gets here again (see [`Memory::append_once`]). `None`: no thread, or already stored.
    pub async fn after_step(&self, run_id: &str, step: &str, messages: Vec<NewMessage>) -> Result<Option<Vec<i64>>> {
        match &self.config.thread {
            Some(t) => {
                self.memory
                    .append_once(t, &self.config.namespace, run_id, step, messages)
                    .await
            }
            None => Ok(None),
        }
    }
}

/// Memories as a prompt section, within `max_chars`; returns the text and how many hits it
/// holds (the first `n` of `hits`).
///
/// The form is short and direct so that small models use it: what is known about the user
/// first (facts as `key: value`, notes about the user as written), then other notes and facts,
/// then earlier messages of the conversation:
///
/// ```text
/// Known facts about the user:
/// - The user's name is Ada.
/// - The user always takes a window seat.
/// ```
pub fn render(hits: &[Hit], max_chars: usize) -> (String, usize) {
    let mut kept = 0;
    let mut used = 0;
    // Lines per section, in hit order; sections print in a fixed order.
    let mut sections: [(&str, Vec<String>); 3] = [
        ("Known facts about the user:", Vec::new()),
        ("Other things you know:", Vec::new()),
        ("Said earlier in this conversation:", Vec::new()),
    ];
    for h in hits {
        let about_user = h.subject.as_deref() == Some("user");
        let (section, line) = match h.kind {
            Kind::Fact if about_user => (0, fact_line(h)),
            Kind::Fact => (1, h.text.clone()),
            Kind::Note if about_user => (0, h.text.clone()),
            Kind::Note => match &h.title {
                Some(t) => (1, format!("{t}: {}", h.text)),
                None => (1, h.text.clone()),
            },
            Kind::Message => (2, h.text.clone()),
        };
        let line = format!("- {}\n", line.trim());
        let header = if sections[section].1.is_empty() {
            sections[section].0.len() + 1
        } else {
            0
        };
        if used + header + line.len() > max_chars && kept > 0 {
            break;
        }
        used += header + line.len();
        sections[section].1.push(line);
        kept += 1;
    }
    let mut out = String::new();
    for (title, lines) in sections {
        if !lines.is_empty() {
            out.push_str(title);
            out.push('\n');
            out.extend(lines);
        }
    }
    (out, kept)
}

/// A fact about the user as a sentence: `user home airport: AMS` → `The user's home airport
/// is AMS.` (what small models use best).
fn fact_line(h: &Hit) -> String {
    let subject = h.subject.as_deref().unwrap_or_default();
    let rest = h.text.strip_prefix(subject).map(str::trim_start).unwrap_or(&h.text);
    match rest.split_once(": ") {
        Some((key, value)) => format!("The user's {key} is {}.", value.trim_end_matches('.')),
        None => rest.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(kind: Kind, text: &str) -> Hit {
        Hit {
            id: "01J".into(),
            kind,
            namespace: "default".into(),
            subject: None,
            key: None,
            title: None,
            ord: 0,
            text: text.into(),
            score: 0.03,
            fts_rank: Some(1),
            vector_rank: None,
            cosine: None,
            created_at: 1_764_000_000_000_000,
        }
    }

    #[test]
    fn render_lists_memories_within_the_budget() {
        let mut fact = hit(Kind::Fact, "user home airport: AMS");
        fact.subject = Some("user".into());
        let mut about = hit(Kind::Note, "The user always takes a window seat.");
        about.subject = Some("user".into());
        let hits = vec![
            hit(Kind::Message, "I am vegetarian"),
            fact,
            hit(Kind::Note, &"x".repeat(100)),
            about,
        ];
        let (text, kept) = render(&hits, 10_000);
        assert_eq!(kept, 4);
        assert_eq!(
            text,
            format!(
                "Known facts about the user:\n- The user's home airport is AMS.\n- The user always takes a window seat.\n\
                 Other things you know:\n- {}\nSaid earlier in this conversation:\n- I am vegetarian\n",
                "x".repeat(100)
            )
        );
        let (short, kept) = render(&hits, 120);
        assert_eq!(kept, 2, "{short}");
        assert!(!short.contains("xxx"), "{short}");
        assert_eq!(render(&[], 100), (String::new(), 0));
    }

    #[test]
    fn config_has_defaults_and_rejects_unknown_fields() {
        let c: AgentMemoryConfig = serde_json::from_str(r#"{"thread":"t1","recall":{"k":3}}"#).unwrap_or_default();
        assert_eq!(c.thread.as_deref(), Some("t1"));
        assert_eq!(c.recall.k, 3);
        assert_eq!(c.namespace, "default");
        assert!((c.recall.min_cosine - 0.3).abs() < 1e-6);
        let bad = serde_json::from_str::<AgentMemoryConfig>(r#"{"threads":"t1"}"#);
        assert!(bad.is_err_and(|e| e.to_string().contains("unknown field `threads`")));
    }
}
