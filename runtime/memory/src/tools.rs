//! Tools for agents: `memory.remember`, `memory.recall`, `memory.forget`.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stepwise_tools::{Registry, Tool, ToolContext, ToolError, typed};

use crate::memory::Memory;
use crate::types::{Forget, Hit, Kind, NewFact, NewNote, Provenance, Query, Remembered, Removed};

/// Register the three memory tools; `namespace` is used when a call names none.
pub fn register(registry: &Registry, memory: Memory, namespace: &str) -> Result<(), ToolError> {
    let ns = namespace.to_string();
    registry.register(
        typed(Remember {
            memory: memory.clone(),
            namespace: ns.clone(),
        }),
        "memory",
    )?;
    registry.register(
        typed(Recall {
            memory: memory.clone(),
            namespace: ns.clone(),
        }),
        "memory",
    )?;
    registry.register(typed(ForgetTool { memory, namespace: ns }), "memory")?;
    Ok(())
}

fn provenance(cx: &ToolContext) -> Provenance {
    Provenance {
        run_id: cx.run_id.clone(),
        step: cx.step.clone(),
    }
}

/// `memory.remember`
pub struct Remember {
    memory: Memory,
    namespace: String,
}

/// Arguments of `memory.remember`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RememberArgs {
    /// What to remember: a note's text, or with `key` the fact's value.
    #[schemars(length(min = 1, max = 20000))]
    pub text: String,
    /// Who or what it is about (`user`, a place, a project). Facts default to `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Makes this a fact `subject.key = text`; a later value for the same key replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Namespace [default: the agent's].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels for a note.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Forget it after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub ttl_seconds: Option<i64>,
}

#[async_trait]
impl Tool for Remember {
    type Args = RememberArgs;
    type Output = Remembered;

    fn name(&self) -> &str {
        "memory.remember"
    }
    fn description(&self) -> String {
        "Stores something to recall later: a note (free text), or with `key` a fact `subject.key = text` that \
         replaces the previous value of that key."
            .into()
    }
    fn side_effects(&self) -> bool {
        true
    }
    async fn call(&self, a: RememberArgs, cx: &ToolContext) -> Result<Remembered, ToolError> {
        let namespace = a.namespace.unwrap_or_else(|| self.namespace.clone());
        let r = match a.key {
            Some(key) => {
                self.memory
                    .remember_fact(NewFact {
                        namespace,
                        subject: a.subject.unwrap_or_else(|| "user".into()),
                        key,
                        value: a.text,
                        provenance: provenance(cx),
                        ttl_seconds: a.ttl_seconds,
                    })
                    .await
            }
            None => {
                self.memory
                    .remember_note(NewNote {
                        namespace,
                        subject: a.subject,
                        text: a.text,
                        tags: a.tags,
                        source: Some("memory.remember".into()),
                        provenance: provenance(cx),
                        ttl_seconds: a.ttl_seconds,
                        ..Default::default()
                    })
                    .await
            }
        };
        r.map_err(|e| ToolError::failed("memory.remember", e))
    }
}

/// `memory.recall`
pub struct Recall {
    memory: Memory,
    namespace: String,
}

/// Arguments of `memory.recall`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecallArgs {
    /// What to look for, in words.
    #[schemars(length(min = 1, max = 2000))]
    pub query: String,
    /// How many memories to return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 50))]
    pub k: Option<usize>,
    /// Namespace [default: the agent's].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only memories about this subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Only this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// Only memories from this time on (RFC 3339, e.g. `2026-01-31T00:00:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// Output of `memory.recall`.
#[derive(Debug, Serialize)]
pub struct RecallOutput {
    pub memories: Vec<Hit>,
}

#[async_trait]
impl Tool for Recall {
    type Args = RecallArgs;
    type Output = RecallOutput;

    fn name(&self) -> &str {
        "memory.recall"
    }
    fn description(&self) -> String {
        "Finds stored notes, facts and earlier messages relevant to a query, by meaning and by keywords.".into()
    }
    async fn call(&self, a: RecallArgs, _cx: &ToolContext) -> Result<RecallOutput, ToolError> {
        let mut q = Query::new(a.query, a.k.unwrap_or(5));
        q.namespaces = vec![a.namespace.unwrap_or_else(|| self.namespace.clone())];
        q.subject = a.subject;
        q.kinds = a.kind.into_iter().collect();
        q.since = match a.since {
            Some(s) => Some(
                chrono::DateTime::parse_from_rfc3339(&s)
                    .map_err(|e| ToolError::InvalidArguments {
                        tool: "memory.recall".into(),
                        field: "since".into(),
                        message: format!("`{s}` is not an RFC 3339 time ({e}); e.g. 2026-01-31T00:00:00Z"),
                    })?
                    .timestamp_micros(),
            ),
            None => None,
        };
        let memories = self
            .memory
            .recall(q)
            .await
            .map_err(|e| ToolError::failed("memory.recall", e))?;
        Ok(RecallOutput { memories })
    }
}

/// `memory.forget`
pub struct ForgetTool {
    memory: Memory,
    namespace: String,
}

/// Arguments of `memory.forget`: an id (from `memory.recall`), or a subject (and key).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgetArgs {
    /// Id of a note, fact or thread, as `memory.recall` returned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Forget everything about this subject (with `key`: only that fact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A fact key of `subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Namespace [default: the agent's].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[async_trait]
impl Tool for ForgetTool {
    type Args = ForgetArgs;
    type Output = Removed;

    fn name(&self) -> &str {
        "memory.forget"
    }
    fn description(&self) -> String {
        "Removes a memory for good: by `id`, or every memory about a `subject` (only fact `key` if given).".into()
    }
    fn side_effects(&self) -> bool {
        true
    }
    async fn call(&self, a: ForgetArgs, _cx: &ToolContext) -> Result<Removed, ToolError> {
        let f = match (a.id, a.subject) {
            (Some(id), _) => Forget {
                ids: vec![id],
                ..Default::default()
            },
            (None, Some(subject)) => Forget {
                namespace: Some(a.namespace.unwrap_or_else(|| self.namespace.clone())),
                subject: Some(subject),
                key: a.key,
                ..Default::default()
            },
            (None, None) => {
                return Err(ToolError::InvalidArguments {
                    tool: "memory.forget".into(),
                    field: "id".into(),
                    message: "give `id`, or `subject` (and `key`)".into(),
                });
            }
        };
        self.memory
            .forget(f)
            .await
            .map_err(|e| ToolError::failed("memory.forget", e))
    }
}
