//! Conversation threads: what `stepwise chat` and agent steps persist turn by turn, and read
//! back when a thread goes on in a new session.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::memory::Memory;
use crate::now_us;
use crate::store::ChunkIn;
use crate::types::{DEFAULT_NAMESPACE, Kind, Provenance};

pub use stepwise_tools::Role;

/// Why `id` cannot name a new thread, if it cannot: 1–128 characters of letters, digits
/// and `.` `_` `-` `:`.
pub fn thread_id_problem(id: &str) -> Option<String> {
    if id.trim().is_empty() {
        return Some("a thread id cannot be empty".into());
    }
    if id.chars().count() > 128 {
        return Some(format!(
            "thread id `{}…` is longer than 128 characters",
            id.chars().take(20).collect::<String>()
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
    {
        return Some(format!(
            "thread id `{id}` holds {c:?}; use letters, digits and `.` `_` `-` `:`"
        ));
    }
    None
}

/// A message to append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMessage {
    pub role: Role,
    pub content: String,
    /// Calls an assistant message asked for (JSON array of `{id, name, arguments}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Value>,
    /// Role tool: the call this result answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Role tool: the tool's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tokens by the chat model's tokenizer, if counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<i64>,
    #[serde(flatten)]
    pub provenance: Provenance,
}

impl NewMessage {
    /// A plain message.
    pub fn new(role: Role, content: impl Into<String>) -> NewMessage {
        NewMessage {
            role,
            content: content.into(),
            tool_calls: None,
            tool_call_id: None,
            name: None,
            tokens: None,
            provenance: Provenance::default(),
        }
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub seq: i64,
    #[serde(flatten)]
    pub message: NewMessage,
    /// Unix microseconds.
    pub created_at: i64,
}

impl Message {
    /// Tokens, counted or estimated (about 4 characters per token).
    pub fn tokens_or_estimate(&self) -> i64 {
        self.message
            .tokens
            .unwrap_or_else(|| (self.message.content.chars().count() as i64 / 4).max(1) + 4)
    }
}

/// A thread's header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thread {
    pub id: String,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Messages in it.
    #[serde(default)]
    pub messages: i64,
}

fn thread_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Thread> {
    Ok(Thread {
        id: r.get(0)?,
        namespace: r.get(1)?,
        title: r.get(2)?,
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
        messages: r.get(5)?,
    })
}

const THREAD_SQL: &str = "SELECT t.id, t.namespace, t.title, t.created_at, t.updated_at,
    (SELECT COUNT(*) FROM mem_messages m WHERE m.thread_id = t.id) FROM mem_threads t";

pub(crate) fn get_thread(c: &Connection, id: &str) -> Result<Option<Thread>> {
    Ok(c.prepare_cached(&format!("{THREAD_SQL} WHERE t.id = ?1"))?
        .query_row(params![id], thread_row)
        .optional()?)
}

pub(crate) fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    let calls: Option<String> = r.get(3)?;
    Ok(Message {
        seq: r.get(0)?,
        message: NewMessage {
            role: Role::parse(&r.get::<_, String>(1)?).unwrap_or(Role::User),
            content: r.get(2)?,
            tool_calls: calls.and_then(|c| serde_json::from_str(&c).ok()),
            tool_call_id: r.get(4)?,
            name: r.get(5)?,
            tokens: r.get(6)?,
            provenance: Provenance {
                run_id: r.get(7)?,
                step: r.get(8)?,
            },
        },
        created_at: r.get(9)?,
    })
}

pub(crate) const MESSAGE_COLS: &str =
    "seq, role, content, tool_calls, tool_call_id, name, tokens, run_id, step, created_at";

/// Insert messages at the end of a thread (created if missing). Returns their seqs.
pub(crate) fn append(
    c: &Connection,
    thread: &str,
    namespace: &str,
    msgs: &[(NewMessage, Option<Vec<u8>>)],
    at: i64,
) -> Result<Vec<i64>> {
    c.prepare_cached(
        "INSERT INTO mem_threads (id, namespace, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (id) DO UPDATE SET updated_at = ?3",
    )?
    .execute(params![thread, namespace, at])?;
    let ns: String = c.query_row(
        "SELECT namespace FROM mem_threads WHERE id = ?1",
        params![thread],
        |r| r.get(0),
    )?;
    let mut seq: i64 = c.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM mem_messages WHERE thread_id = ?1",
        params![thread],
        |r| r.get(0),
    )?;
    let mut seqs = Vec::with_capacity(msgs.len());
    for (m, emb) in msgs {
        seq += 1;
        let calls = m.tool_calls.as_ref().map(|v| v.to_string());
        c.prepare_cached(
            "INSERT INTO mem_messages (thread_id, seq, role, content, tool_calls, tool_call_id, name, tokens, run_id, step, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            thread,
            seq,
            m.role.as_str(),
            m.content,
            calls,
            m.tool_call_id,
            m.name,
            m.tokens,
            m.provenance.run_id,
            m.provenance.step,
            at
        ])?;
        if indexed(m.role) && !m.content.trim().is_empty() {
            let chunk = ChunkIn {
                text: m.content.trim().to_string(),
                embedding: emb.clone(),
            };
            c.prepare_cached(
                "INSERT INTO mem_chunks (kind, owner, ord, namespace, subject, created_at, text, embedding)
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7)",
            )?
            .execute(params![
                Kind::Message.as_str(),
                thread,
                seq,
                ns,
                at,
                chunk.text,
                chunk.embedding
            ])?;
        }
        seqs.push(seq);
    }
    Ok(seqs)
}

fn ns_of(namespace: &str) -> String {
    if namespace.is_empty() {
        DEFAULT_NAMESPACE.to_string()
    } else {
        namespace.to_string()
    }
}

/// Messages that go into the recall index (tool results and system prompts do not).
fn indexed(role: Role) -> bool {
    matches!(role, Role::User | Role::Assistant)
}

impl Memory {
    /// A thread's header, if it exists.
    pub async fn thread(&self, id: &str) -> Result<Option<Thread>> {
        let id = id.to_string();
        self.read(move |c, _| get_thread(c, &id)).await
    }

    /// Create a thread (a new id when `id` is `None`) or return the existing one.
    pub async fn open_thread(&self, id: Option<&str>, namespace: &str, title: Option<&str>) -> Result<Thread> {
        let id = id.map(str::to_string).unwrap_or_else(|| ulid::Ulid::new().to_string());
        if id.trim().is_empty() {
            return Err(Error::Invalid("a thread id cannot be empty".into()));
        }
        let ns = if namespace.is_empty() {
            DEFAULT_NAMESPACE.to_string()
        } else {
            namespace.to_string()
        };
        let title = title.map(str::to_string);
        self.write(move |c| {
            let at = now_us();
            c.prepare_cached(
                "INSERT INTO mem_threads (id, namespace, title, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![id, ns, title, at])?;
            get_thread(c, &id)?.ok_or_else(|| Error::NotFound(format!("thread `{id}` vanished")))
        })
        .await
    }

    /// Threads, most recently active first.
    pub async fn threads(&self, namespace: Option<String>, limit: usize) -> Result<Vec<Thread>> {
        self.read(move |c, _| {
            let mut stmt = c.prepare(&format!(
                "{THREAD_SQL} WHERE (?1 IS NULL OR t.namespace = ?1) ORDER BY t.updated_at DESC, t.id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![namespace, limit as i64], thread_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Persist messages (a turn) at the end of a thread, creating it in `namespace` if
    /// needed. User and assistant messages are also indexed for recall. Returns their
    /// sequence numbers.
    pub async fn append(&self, thread: &str, namespace: &str, msgs: Vec<NewMessage>) -> Result<Vec<i64>> {
        if thread.trim().is_empty() {
            return Err(Error::Invalid("a thread id cannot be empty".into()));
        }
        let rows = self.embedded_rows(msgs).await?;
        let (thread, ns) = (thread.to_string(), ns_of(namespace));
        self.write(move |c| {
            let at = now_us();
            let seqs = append(c, &thread, &ns, &rows, at)?;
            crate::store::after_write(c, &ns, at)?;
            Ok(seqs)
        })
        .await
    }

    /// [`Memory::append`] exactly once per run step: when the thread already holds messages
    /// written by `run_id`/`step` (a resumed run persisting the same turn again), nothing is
    /// written and `None` is returned. The check and the insert are one transaction.
    pub async fn append_once(
        &self,
        thread: &str,
        namespace: &str,
        run_id: &str,
        step: &str,
        msgs: Vec<NewMessage>,
    ) -> Result<Option<Vec<i64>>> {
        let (t, r, s) = (thread.to_string(), run_id.to_string(), step.to_string());
        let seen = move |c: &Connection| -> Result<bool> {
            Ok(c.prepare_cached(
                "SELECT 1 FROM mem_messages WHERE thread_id = ?1 AND run_id = ?2 AND step = ?3 LIMIT 1",
            )?
            .query_row(params![t, r, s], |_| Ok(()))
            .optional()?
            .is_some())
        };
        let seen2 = seen.clone();
        // Cheap check first (no embedding work for a turn already stored) …
        if self.read(move |c, _| seen2(&*c)).await? {
            return Ok(None);
        }
        let msgs: Vec<NewMessage> = msgs
            .into_iter()
            .map(|mut m| {
                m.provenance = Provenance {
                    run_id: Some(run_id.to_string()),
                    step: Some(step.to_string()),
                };
                m
            })
            .collect();
        let rows = self.embedded_rows(msgs).await?;
        let (thread, ns) = (thread.to_string(), ns_of(namespace));
        // … and the authoritative one inside the write transaction.
        self.write(move |c| {
            if seen(c)? {
                return Ok(None);
            }
            let at = now_us();
            let seqs = append(c, &thread, &ns, &rows, at)?;
            crate::store::after_write(c, &ns, at)?;
            Ok(Some(seqs))
        })
        .await
    }

    /// Messages with the embeddings of those indexed for recall.
    async fn embedded_rows(&self, msgs: Vec<NewMessage>) -> Result<Vec<(NewMessage, Option<Vec<u8>>)>> {
        let texts: Vec<String> = msgs
            .iter()
            .filter(|m| indexed(m.role) && !m.content.trim().is_empty())
            .map(|m| m.content.trim().to_string())
            .collect();
        let mut blobs = self.embed_for_storage(&texts).await?.map(|b| b.into_iter());
        Ok(msgs
            .into_iter()
            .map(|m| {
                let e = if indexed(m.role) && !m.content.trim().is_empty() {
                    blobs.as_mut().and_then(Iterator::next)
                } else {
                    None
                };
                (m, e)
            })
            .collect())
    }

    /// Messages of a thread in order; with `after`, only those with a greater seq.
    pub async fn messages(&self, thread: &str, after: Option<i64>, limit: usize) -> Result<Vec<Message>> {
        let thread = thread.to_string();
        self.read(move |c, _| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLS} FROM mem_messages WHERE thread_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![thread, after.unwrap_or(0), limit as i64], message_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// The latest messages of a thread that fit in `max_tokens` (counted, or estimated
    /// where not counted), oldest first: the history to put back into a chat model's context
    /// when a thread goes on. System messages are left out (the caller writes its own).
    pub async fn history(&self, thread: &str, max_tokens: i64) -> Result<Vec<Message>> {
        let thread = thread.to_string();
        self.read(move |c, _| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLS} FROM mem_messages WHERE thread_id = ?1 AND role <> 'system' ORDER BY seq DESC"
            ))?;
            let mut rows = stmt.query(params![thread])?;
            let mut out = Vec::new();
            let mut used = 0i64;
            while let Some(r) = rows.next()? {
                let m = message_row(r)?;
                let t = m.tokens_or_estimate();
                if used + t > max_tokens && !out.is_empty() {
                    break;
                }
                used += t;
                out.push(m);
            }
            // Do not start on a tool result whose call was cut off.
            while out.last().is_some_and(|m: &Message| m.message.role == Role::Tool) {
                out.pop();
            }
            out.reverse();
            Ok(out)
        })
        .await
    }
}
