//! Export and import as JSON Lines: one record per line, nothing lost (ids, times,
//! provenance, fact history, threads, retention rules, and the embeddings themselves, so an
//! import gives the same search results without recomputing anything).
//!
//! An export starts with a `header` record and ends with an `end` record holding the record
//! count, so a truncated file is detected even when it was cut between lines. Hand-written
//! files may leave both out; a line without `type` is a note. Import checks every line before
//! writing, then writes everything in one transaction: a bad line is reported as
//! `file:line` and nothing changes.

use std::io::{BufRead, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rusqlite::{Connection, params};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::embed::MODEL_ID;
use crate::error::{Error, Result};
use crate::memory::Memory;
use crate::quant::Quantized;
use crate::retention::{self, Policy};
use crate::store::{self, ChunkIn};
use crate::threads::{self, Role};
use crate::types::{DEFAULT_NAMESPACE, Fact, Note, Provenance};
use crate::{chunk, now_us};

/// Name in the header record.
pub const FORMAT: &str = "stepwise-memory";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    /// Model of the embeddings in this file.
    model: String,
    exported_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct End {
    /// Records between the header and this one.
    records: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChunkRec {
    text: String,
    /// Base64 of the stored int8 embedding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    embedding: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteRec {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step: Option<String>,
    #[serde(default)]
    created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chunks: Option<Vec<ChunkRec>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FactRec {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    subject: String,
    key: String,
    value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step: Option<String>,
    #[serde(default)]
    created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    superseded_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    superseded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    embedding: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThreadRec {
    id: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(default)]
    created_at: Option<i64>,
    #[serde(default)]
    updated_at: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageRec {
    thread: String,
    seq: i64,
    role: Role,
    content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokens: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step: Option<String>,
    #[serde(default)]
    created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    embedding: Option<String>,
}

/// One parsed line.
enum Record {
    Header(Header),
    End,
    Note(NoteRec),
    Fact(FactRec),
    Thread(ThreadRec),
    Message(MessageRec),
    Policy(Policy),
}

fn tagged<T: Serialize>(kind: &str, rec: &T) -> Result<String> {
    let mut v = serde_json::to_value(rec).map_err(|e| Error::Invalid(e.to_string()))?;
    if let Value::Object(m) = &mut v {
        let mut out = serde_json::Map::with_capacity(m.len() + 1);
        out.insert("type".into(), Value::from(kind));
        out.append(m);
        v = Value::Object(out);
    }
    Ok(v.to_string())
}

fn b64(blob: Option<Vec<u8>>) -> Option<String> {
    blob.map(|b| B64.encode(b))
}

/// What an export wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Exported {
    pub notes: usize,
    pub facts: usize,
    pub threads: usize,
    pub messages: usize,
    pub policies: usize,
}

/// What an import stored.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Imported {
    pub notes: usize,
    pub facts: usize,
    pub threads: usize,
    pub messages: usize,
    pub policies: usize,
    /// Records already present (same id), left as they were.
    pub skipped: usize,
    /// Chunks whose embedding came from the file.
    pub embeddings_reused: usize,
    /// Chunks embedded during the import.
    pub embeddings_computed: usize,
}

fn export_all(c: &mut Connection, out: &mut dyn Write) -> Result<Exported> {
    let tx = c.transaction()?;
    let mut n = Exported::default();
    let mut records = 0usize;
    let io = |e: std::io::Error| Error::io("export output", e);
    let mut line = |out: &mut dyn Write, s: String| -> Result<()> {
        records += 1;
        writeln!(out, "{s}").map_err(io)
    };
    let header = Header {
        format: FORMAT.into(),
        version: 1,
        model: MODEL_ID.into(),
        exported_at: now_us(),
    };
    writeln!(out, "{}", tagged("header", &header)?).map_err(io)?;
    for p in retention::policies(&tx)? {
        line(out, tagged("policy", &p)?)?;
        n.policies += 1;
    }
    {
        let mut stmt =
            tx.prepare("SELECT id, namespace, title, created_at, updated_at FROM mem_threads ORDER BY created_at, id")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let t = ThreadRec {
                id: r.get(0)?,
                namespace: r.get(1)?,
                title: r.get(2)?,
                created_at: r.get(3)?,
                updated_at: r.get(4)?,
            };
            line(out, tagged("thread", &t)?)?;
            n.threads += 1;
        }
    }
    // Records in the order of their first chunk, so an import recreates chunks in the same
    // relative order (ties in ranking then break the same way).
    let mut order = tx.prepare(
        "SELECT kind, id FROM (
            SELECT 'note' AS kind, n.id AS id, n.created_at AS at,
                   COALESCE((SELECT MIN(c.id) FROM mem_chunks c WHERE c.owner = n.id AND c.kind = 'note'), 0) AS k
              FROM mem_notes n
            UNION ALL
            SELECT 'fact', f.id, f.created_at,
                   COALESCE((SELECT MIN(c.id) FROM mem_chunks c WHERE c.owner = f.id AND c.kind = 'fact'), 0)
              FROM mem_facts f
            UNION ALL
            SELECT 'message', CAST(m.id AS TEXT), m.created_at,
                   COALESCE((SELECT c.id FROM mem_chunks c WHERE c.kind = 'message' AND c.owner = m.thread_id AND c.ord = m.seq), 0)
              FROM mem_messages m)
         ORDER BY k, at, kind, id",
    )?;
    let mut note_q = tx.prepare(&format!("SELECT {} FROM mem_notes WHERE id = ?1", store::NOTE_COLS))?;
    let mut chunk_q =
        tx.prepare("SELECT text, embedding FROM mem_chunks WHERE owner = ?1 AND kind = ?2 ORDER BY ord")?;
    let mut fact_q = tx.prepare(&format!("SELECT {} FROM mem_facts WHERE id = ?1", store::FACT_COLS))?;
    let mut msg_q = tx.prepare(&format!(
        "SELECT thread_id, {} FROM mem_messages WHERE id = ?1",
        threads::MESSAGE_COLS
    ))?;
    let mut msg_chunk_q =
        tx.prepare("SELECT embedding FROM mem_chunks WHERE kind = 'message' AND owner = ?1 AND ord = ?2")?;
    let mut rows = order.query([])?;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(0)?;
        let id: String = r.get(1)?;
        match kind.as_str() {
            "note" => {
                let note: Note = note_q.query_row(params![id], store::note_row)?;
                let chunks: Vec<ChunkRec> = chunk_q
                    .query_map(params![id, "note"], |r| {
                        Ok(ChunkRec {
                            text: r.get(0)?,
                            embedding: b64(r.get(1)?),
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let rec = NoteRec {
                    id: Some(note.id),
                    namespace: Some(note.namespace),
                    subject: note.subject,
                    title: note.title,
                    text: note.text,
                    tags: note.tags,
                    source: note.source,
                    run_id: note.provenance.run_id,
                    step: note.provenance.step,
                    created_at: Some(note.created_at),
                    expires_at: note.expires_at,
                    chunks: Some(chunks),
                };
                line(out, tagged("note", &rec)?)?;
                n.notes += 1;
            }
            "fact" => {
                let f: Fact = fact_q.query_row(params![id], store::fact_row)?;
                let emb: Option<Vec<u8>> = chunk_q
                    .query_map(params![id, "fact"], |r| r.get::<_, Option<Vec<u8>>>(1))?
                    .next()
                    .transpose()?
                    .flatten();
                let rec = FactRec {
                    id: Some(f.id),
                    namespace: Some(f.namespace),
                    subject: f.subject,
                    key: f.key,
                    value: f.value,
                    run_id: f.provenance.run_id,
                    step: f.provenance.step,
                    created_at: Some(f.created_at),
                    expires_at: f.expires_at,
                    superseded_at: f.superseded_at,
                    superseded_by: f.superseded_by,
                    embedding: b64(emb),
                };
                line(out, tagged("fact", &rec)?)?;
                n.facts += 1;
            }
            _ => {
                let (thread, m) = msg_q.query_row(params![id], |r| {
                    let thread: String = r.get(0)?;
                    // Columns shift by one: the message columns start at 1.
                    let calls: Option<String> = r.get(4)?;
                    Ok((
                        thread,
                        MessageRec {
                            thread: String::new(),
                            seq: r.get(1)?,
                            role: serde_json::from_value(Value::from(r.get::<_, String>(2)?)).unwrap_or(Role::User),
                            content: r.get(3)?,
                            tool_calls: calls.and_then(|c| serde_json::from_str(&c).ok()),
                            tool_call_id: r.get(5)?,
                            name: r.get(6)?,
                            tokens: r.get(7)?,
                            run_id: r.get(8)?,
                            step: r.get(9)?,
                            created_at: r.get(10)?,
                            embedding: None,
                        },
                    ))
                })?;
                let emb: Option<Vec<u8>> = msg_chunk_q
                    .query_map(params![thread, m.seq], |r| r.get::<_, Option<Vec<u8>>>(0))?
                    .next()
                    .transpose()?
                    .flatten();
                let rec = MessageRec {
                    thread,
                    embedding: b64(emb),
                    ..m
                };
                line(out, tagged("message", &rec)?)?;
                n.messages += 1;
            }
        }
    }
    writeln!(out, "{}", tagged("end", &End { records })?).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(n)
}

impl Memory {
    /// Write every memory as JSON Lines to `out` (on a blocking thread).
    pub async fn export(&self, out: Box<dyn Write + Send>) -> Result<Exported> {
        self.read(move |c, _| {
            let mut out = out;
            export_all(c, &mut out)
        })
        .await
    }

    /// Import JSON Lines read from `input` (named `file` in errors). Every line is checked
    /// first; then everything is written in one transaction.
    pub async fn import(&self, file: &str, input: Box<dyn BufRead + Send>) -> Result<Imported> {
        let name = file.to_string();
        let parsed = tokio::task::spawn_blocking(move || parse_all(&name, input))
            .await
            .map_err(|e| Error::Write(format!("import task failed: {e}")))??;
        self.import_records(file, parsed).await
    }

    async fn import_records(&self, file: &str, records: Vec<(usize, Record)>) -> Result<Imported> {
        let mut stats = Imported::default();
        let file_model = records.iter().find_map(|(_, r)| match r {
            Record::Header(h) => Some(h.model.clone()),
            _ => None,
        });
        let reuse = file_model.as_deref() == Some(MODEL_ID);
        let err = |line: usize, message: String| Error::Import {
            file: file.to_string(),
            line,
            message,
        };
        let decode = |line: usize, e: &Option<String>| -> Result<Option<Vec<u8>>> {
            match e {
                Some(s) if reuse => {
                    let b = B64
                        .decode(s)
                        .map_err(|x| err(line, format!("field `embedding`: not base64 ({x})")))?;
                    Quantized::from_blob(&b).ok_or_else(|| {
                        err(
                            line,
                            format!(
                                "field `embedding`: {} bytes, expected {}",
                                b.len(),
                                crate::quant::BLOB_LEN
                            ),
                        )
                    })?;
                    Ok(Some(b))
                }
                _ => Ok(None),
            }
        };
        // Chunks per record: (text, embedding if reused). Missing embeddings are computed.
        let mut plans: Vec<(usize, Record, Vec<ChunkIn>)> = Vec::with_capacity(records.len());
        for (line, rec) in records {
            let chunks = match &rec {
                Record::Note(n) => match &n.chunks {
                    Some(cs) => cs
                        .iter()
                        .map(|c| {
                            Ok(ChunkIn {
                                text: c.text.clone(),
                                embedding: decode(line, &c.embedding)?,
                            })
                        })
                        .collect::<Result<Vec<_>>>()?,
                    None => chunk::chunk(&n.text)
                        .into_iter()
                        .map(|text| ChunkIn { text, embedding: None })
                        .collect(),
                },
                // A superseded version is history: not recalled, so not indexed.
                Record::Fact(f) if f.superseded_at.is_some() => Vec::new(),
                Record::Fact(f) => vec![ChunkIn {
                    text: store::fact_text(&f.subject, &f.key, &f.value),
                    embedding: decode(line, &f.embedding)?,
                }],
                Record::Message(m) => vec![ChunkIn {
                    text: m.content.trim().to_string(),
                    embedding: decode(line, &m.embedding)?,
                }],
                _ => Vec::new(),
            };
            plans.push((line, rec, chunks));
        }
        // Compute what the file did not carry, in large batches.
        let missing: Vec<String> = plans
            .iter()
            .flat_map(|(_, r, cs)| {
                let want = !matches!(r, Record::Message(m) if !matches!(m.role, Role::User | Role::Assistant));
                cs.iter()
                    .filter(move |c| want && c.embedding.is_none() && !c.text.is_empty())
                    .map(|c| c.text.clone())
            })
            .collect();
        stats.embeddings_reused = plans
            .iter()
            .flat_map(|(_, _, cs)| cs.iter())
            .filter(|c| c.embedding.is_some())
            .count();
        if let Some(blobs) = self.embed_for_storage(&missing).await? {
            stats.embeddings_computed = blobs.len();
            let mut it = blobs.into_iter();
            for (_, r, cs) in &mut plans {
                let want = !matches!(r, Record::Message(m) if !matches!(m.role, Role::User | Role::Assistant));
                for c in cs
                    .iter_mut()
                    .filter(|c| want && c.embedding.is_none() && !c.text.is_empty())
                {
                    c.embedding = it.next();
                }
            }
        }
        let file = file.to_string();
        self.write(move |c| {
            let now = now_us();
            let mut namespaces = std::collections::BTreeSet::new();
            for (line, rec, chunks) in plans {
                write_record(c, rec, chunks, now, &mut stats, &mut namespaces).map_err(|e| Error::Import {
                    file: file.clone(),
                    line,
                    message: e.to_string(),
                })?;
            }
            for ns in namespaces {
                retention::enforce(c, &ns, now)?;
            }
            retention::prune_changes(c)?;
            Ok(stats)
        })
        .await
    }
}

fn write_record(
    c: &Connection,
    rec: Record,
    chunks: Vec<ChunkIn>,
    now: i64,
    stats: &mut Imported,
    namespaces: &mut std::collections::BTreeSet<String>,
) -> Result<()> {
    let ns = |n: Option<String>| {
        n.filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
    };
    match rec {
        Record::Header(_) | Record::End => {}
        Record::Policy(p) => {
            retention::set_policy(c, &p)?;
            stats.policies += 1;
        }
        Record::Note(n) => {
            let note = Note {
                id: n.id.unwrap_or_else(|| ulid::Ulid::new().to_string()),
                namespace: ns(n.namespace),
                subject: n.subject,
                title: n.title,
                text: n.text,
                tags: n.tags,
                source: n.source,
                provenance: Provenance {
                    run_id: n.run_id,
                    step: n.step,
                },
                created_at: n.created_at.unwrap_or(now),
                expires_at: n.expires_at,
            };
            namespaces.insert(note.namespace.clone());
            if store::insert_note(c, &note, &chunks)? {
                stats.notes += 1;
            } else {
                stats.skipped += 1;
            }
        }
        Record::Fact(f) => {
            let fact = Fact {
                id: f.id.unwrap_or_else(|| ulid::Ulid::new().to_string()),
                namespace: ns(f.namespace),
                subject: f.subject,
                key: f.key,
                value: f.value,
                provenance: Provenance {
                    run_id: f.run_id,
                    step: f.step,
                },
                created_at: f.created_at.unwrap_or(now),
                expires_at: f.expires_at,
                superseded_at: f.superseded_at,
                superseded_by: f.superseded_by,
            };
            namespaces.insert(fact.namespace.clone());
            let chunk = chunks.into_iter().next().unwrap_or(ChunkIn {
                text: store::fact_text(&fact.subject, &fact.key, &fact.value),
                embedding: None,
            });
            match store::put_fact(c, &fact, &chunk)? {
                store::PutFact::Exists | store::PutFact::Unchanged { .. } => stats.skipped += 1,
                _ => stats.facts += 1,
            }
        }
        Record::Thread(t) => {
            let at = t.created_at.unwrap_or(now);
            let added = c.execute(
                "INSERT OR IGNORE INTO mem_threads (id, namespace, title, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![t.id, ns(t.namespace), t.title, at, t.updated_at.unwrap_or(at)],
            )?;
            if added == 1 {
                stats.threads += 1;
            } else {
                stats.skipped += 1;
            }
        }
        Record::Message(m) => {
            let thread_ns: Option<String> = c
                .query_row(
                    "SELECT namespace FROM mem_threads WHERE id = ?1",
                    params![m.thread],
                    |r| r.get(0),
                )
                .ok();
            let Some(thread_ns) = thread_ns else {
                return Err(Error::Invalid(format!(
                    "message of thread `{}`, which no earlier `thread` record created",
                    m.thread
                )));
            };
            let at = m.created_at.unwrap_or(now);
            let added = c.execute(
                "INSERT OR IGNORE INTO mem_messages (thread_id, seq, role, content, tool_calls, tool_call_id, name, tokens, run_id, step, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    m.thread,
                    m.seq,
                    m.role.as_str(),
                    m.content,
                    m.tool_calls.as_ref().map(|v| v.to_string()),
                    m.tool_call_id,
                    m.name,
                    m.tokens,
                    m.run_id,
                    m.step,
                    at
                ],
            )?;
            if added == 0 {
                stats.skipped += 1;
                return Ok(());
            }
            stats.messages += 1;
            if matches!(m.role, Role::User | Role::Assistant) && !m.content.trim().is_empty() {
                let chunk = chunks.into_iter().next();
                c.execute(
                    "INSERT INTO mem_chunks (kind, owner, ord, namespace, subject, created_at, text, embedding)
                     VALUES ('message', ?1, ?2, ?3, NULL, ?4, ?5, ?6)",
                    params![
                        m.thread,
                        m.seq,
                        thread_ns,
                        at,
                        m.content.trim(),
                        chunk.and_then(|c| c.embedding)
                    ],
                )?;
            }
        }
    }
    Ok(())
}

fn field<T: DeserializeOwned>(v: Value) -> std::result::Result<T, String> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("field `{path}`: {}", e.into_inner())
        }
    })
}

/// Parse and check every line; the first problem is returned as `file:line`.
fn parse_all(file: &str, input: Box<dyn BufRead + Send>) -> Result<Vec<(usize, Record)>> {
    let err = |line: usize, message: String| Error::Import {
        file: file.to_string(),
        line,
        message,
    };
    let mut out: Vec<(usize, Record)> = Vec::new();
    let mut header_seen = false;
    let mut end_seen: Option<usize> = None;
    let mut last = 0usize;
    for (i, l) in input.lines().enumerate() {
        let n = i + 1;
        last = n;
        let l = l.map_err(|e| err(n, format!("cannot read: {e}")))?;
        if l.trim().is_empty() {
            continue;
        }
        if let Some(e) = end_seen {
            return Err(err(n, format!("a record after the end record of line {e}")));
        }
        let v: Value = serde_json::from_str(&l).map_err(|e| {
            if e.is_eof() {
                err(
                    n,
                    format!("the line ends in the middle of a record ({e}); the file looks truncated"),
                )
            } else {
                err(n, format!("not valid JSON: {e}"))
            }
        })?;
        let Value::Object(mut m) = v else {
            return Err(err(n, "expected a JSON object".into()));
        };
        let kind = match m.remove("type") {
            None => "note".to_string(),
            Some(Value::String(s)) => s,
            Some(other) => return Err(err(n, format!("field `type`: expected a string, found {other}"))),
        };
        let v = Value::Object(m);
        let rec = match kind.as_str() {
            "header" => {
                if !out.is_empty() {
                    return Err(err(n, "the header must be the first record".into()));
                }
                let h: Header = field(v).map_err(|e| err(n, e))?;
                if h.format != FORMAT || h.version != 1 {
                    return Err(err(
                        n,
                        format!(
                            "unsupported format `{}` version {} (expected {FORMAT} 1)",
                            h.format, h.version
                        ),
                    ));
                }
                header_seen = true;
                Record::Header(h)
            }
            "end" => {
                let e: End = field(v).map_err(|e| err(n, e))?;
                let records = out.iter().filter(|(_, r)| !matches!(r, Record::Header(_))).count();
                if e.records != records {
                    return Err(err(
                        n,
                        format!(
                            "the end record counts {} records but {records} came before it",
                            e.records
                        ),
                    ));
                }
                end_seen = Some(n);
                Record::End
            }
            "note" => {
                let r: NoteRec = field(v).map_err(|e| err(n, e))?;
                if r.text.trim().is_empty() {
                    return Err(err(n, "field `text`: a note needs some text".into()));
                }
                Record::Note(r)
            }
            "fact" => {
                let r: FactRec = field(v).map_err(|e| err(n, e))?;
                if r.subject.trim().is_empty() || r.key.trim().is_empty() || r.value.trim().is_empty() {
                    return Err(err(n, "a fact needs a non-empty `subject`, `key` and `value`".into()));
                }
                Record::Fact(r)
            }
            "thread" => Record::Thread(field(v).map_err(|e| err(n, e))?),
            "message" => Record::Message(field(v).map_err(|e| err(n, e))?),
            "policy" => Record::Policy(field(v).map_err(|e| err(n, e))?),
            other => {
                return Err(err(
                    n,
                    format!(
                        "unknown record type `{other}` (expected note, fact, thread, message, policy, header or end)"
                    ),
                ));
            }
        };
        out.push((n, rec));
    }
    if header_seen && end_seen.is_none() {
        return Err(err(
            last + 1,
            "the file ends without the end record its header promises; it looks truncated".into(),
        ));
    }
    Ok(out)
}
