//! The [`Memory`] handle: open, remember, recall, forget, list, retention.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::db::{self, Durability};
use crate::embed::{Embedder, model};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::quant::{Quantized, quantize};
use crate::retention::{self, Policy};
use crate::store::{self, ChunkIn, PutFact};
use crate::types::{
    DEFAULT_NAMESPACE, Fact, Forget, Hit, Kind, Mode, NewFact, NewNote, Note, Query, Remembered, Removed,
};
use crate::writer::Writer;
use crate::{chunk, now_us, recall};

/// Whether writes compute embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmbedMode {
    /// Embed every write and query; fail if the model is missing.
    Required,
    /// Embed when the model is installed; otherwise store for lexical recall only (with a
    /// warning) until `memory reindex`.
    #[default]
    IfAvailable,
    /// Never embed (lexical recall only).
    Off,
}

/// How to open a [`Memory`].
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub durability: Durability,
    /// Folder of all-MiniLM-L6-v2 [default: `~/.cache/stepwise/models/minilm`].
    pub model_dir: Option<PathBuf>,
    pub embed: EmbedMode,
}

pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) writer: Writer,
    pub(crate) embedder: Option<Embedder>,
    pub(crate) mode: EmbedMode,
    /// Vectors and keyword postings; written only to catch up with the database, searches
    /// share it.
    index: RwLock<Index>,
    readers: Mutex<Vec<Connection>>,
    warned: AtomicBool,
}

impl Inner {
    fn take_reader(&self) -> Result<Connection> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(c) => Ok(c),
            None => db::open_reader(&self.path),
        }
    }

    fn put_reader(&self, c: Connection) {
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(c);
        }
    }
}

/// Handle to the memory of one database file. Cheap to clone.
#[derive(Clone)]
pub struct Memory {
    pub(crate) inner: Arc<Inner>,
}

/// Sizes, for `memory stats` and benchmarks.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub notes: i64,
    pub facts: i64,
    pub fact_versions: i64,
    pub threads: i64,
    pub messages: i64,
    pub chunks: i64,
    pub embedded_chunks: i64,
    /// Database file plus its WAL, in bytes.
    pub db_bytes: u64,
    /// Vector index held in this process (codes and the slot table), in bytes.
    pub index_bytes: usize,
    /// Keyword index held in this process (postings, lengths, terms), in bytes.
    pub keyword_index_bytes: usize,
}

fn ns_or_default(ns: String) -> String {
    if ns.trim().is_empty() {
        DEFAULT_NAMESPACE.to_string()
    } else {
        ns
    }
}

impl Memory {
    /// Open (creating if needed) the database at `path`, apply migrations, start the writer
    /// and (lazily loading) embedding threads.
    pub async fn open(path: &Path, opts: OpenOptions) -> Result<Memory> {
        db::migrate(path).await?;
        let writer = Writer::start(path, opts.durability)?;
        let embedder = match opts.embed {
            EmbedMode::Off => None,
            _ => Some(Embedder::start(opts.model_dir.unwrap_or_else(model::default_dir))?),
        };
        Ok(Memory {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer,
                embedder,
                mode: opts.embed,
                index: RwLock::new(Index::default()),
                readers: Mutex::new(Vec::new()),
                warned: AtomicBool::new(false),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The embedding thread, if embeddings are on.
    pub fn embedder(&self) -> Option<&Embedder> {
        self.inner.embedder.as_ref()
    }

    /// Run `f` with a read connection on a blocking thread.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Inner) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.take_reader()?;
            let r = f(&mut conn, &inner);
            inner.put_reader(conn);
            r
        })
        .await
        .map_err(|e| Error::Write(format!("read task failed: {e}")))?
    }

    /// Run `f` in a write transaction on the writer thread.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.writer.write(f).await
    }

    /// Whether embeddings can be computed now (mode on and model installed).
    pub fn can_embed(&self) -> bool {
        match &self.inner.embedder {
            Some(e) => model::check(e.dir()).is_ok(),
            None => false,
        }
    }

    /// Embeddings for `texts`, stored form; `None` when embeddings are off or (in
    /// `IfAvailable` mode) the model is not installed.
    pub(crate) async fn embed_for_storage(&self, texts: &[String]) -> Result<Option<Vec<Vec<u8>>>> {
        let Some(e) = self.usable_embedder()? else {
            return Ok(None);
        };
        let vecs = e.embed(texts.to_vec()).await?;
        Ok(Some(vecs.iter().map(|v| quantize(v).to_blob()).collect()))
    }

    fn usable_embedder(&self) -> Result<Option<&Embedder>> {
        let Some(e) = &self.inner.embedder else {
            return Ok(None);
        };
        match (self.inner.mode, model::check(e.dir())) {
            (_, Ok(())) => Ok(Some(e)),
            (EmbedMode::Required, Err(err)) => Err(err),
            (_, Err(err)) => {
                if !self.inner.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "{err}; memories are stored for keyword recall only until `stepwise memory reindex`"
                    );
                }
                Ok(None)
            }
        }
    }

    /// Remember a note (chunked and indexed for recall).
    pub async fn remember_note(&self, n: NewNote) -> Result<Remembered> {
        self.remember_note_at(n, now_us()).await
    }

    /// [`Memory::remember_note`] with an explicit creation time (Unix µs).
    pub async fn remember_note_at(&self, n: NewNote, at: i64) -> Result<Remembered> {
        let text = n.text.trim().to_string();
        if text.is_empty() {
            return Err(Error::Invalid("a note needs some text".into()));
        }
        let chunks = chunk::chunk(&text);
        let blobs = self.embed_for_storage(&chunks).await?;
        let embedded = blobs.is_some();
        let chunks_in: Vec<ChunkIn> = chunks
            .into_iter()
            .enumerate()
            .map(|(i, text)| ChunkIn {
                text,
                embedding: blobs.as_ref().and_then(|b| b.get(i).cloned()),
            })
            .collect();
        let note = Note {
            id: ulid::Ulid::new().to_string(),
            namespace: ns_or_default(n.namespace),
            subject: n.subject.filter(|s| !s.is_empty()),
            title: n.title.filter(|s| !s.is_empty()),
            text,
            tags: n.tags,
            source: n.source,
            provenance: n.provenance,
            created_at: at,
            expires_at: n.ttl_seconds.map(|t| at.saturating_add(t.saturating_mul(1_000_000))),
        };
        let count = chunks_in.len();
        self.write(move |c| {
            store::insert_note(c, &note, &chunks_in)?;
            let evicted = store::after_write(c, &note.namespace, now_us())?;
            Ok(Remembered {
                id: note.id,
                kind: Kind::Note,
                chunks: count,
                embedded,
                superseded: None,
                unchanged: false,
                evicted: evicted.total(),
            })
        })
        .await
    }

    /// Remember a fact; a different current value for the same key is superseded.
    pub async fn remember_fact(&self, f: NewFact) -> Result<Remembered> {
        self.remember_fact_at(f, now_us()).await
    }

    /// [`Memory::remember_fact`] with an explicit time (Unix µs).
    pub async fn remember_fact_at(&self, f: NewFact, at: i64) -> Result<Remembered> {
        let (subject, key, value) = (f.subject.trim(), f.key.trim(), f.value.trim());
        if subject.is_empty() || key.is_empty() || value.is_empty() {
            return Err(Error::Invalid("a fact needs a subject, a key and a value".into()));
        }
        let text = store::fact_text(subject, key, value);
        let blobs = self.embed_for_storage(std::slice::from_ref(&text)).await?;
        let embedded = blobs.is_some();
        let chunk = ChunkIn {
            text,
            embedding: blobs.and_then(|mut b| b.pop()),
        };
        let fact = Fact {
            id: ulid::Ulid::new().to_string(),
            namespace: ns_or_default(f.namespace),
            subject: subject.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            provenance: f.provenance,
            created_at: at,
            expires_at: f.ttl_seconds.map(|t| at.saturating_add(t.saturating_mul(1_000_000))),
            superseded_at: None,
            superseded_by: None,
        };
        self.write(move |c| {
            let r = store::put_fact(c, &fact, &chunk)?;
            let evicted = store::after_write(c, &fact.namespace, now_us())?.total();
            Ok(match r {
                PutFact::Unchanged { id } => Remembered {
                    id,
                    kind: Kind::Fact,
                    chunks: 0,
                    embedded,
                    superseded: None,
                    unchanged: true,
                    evicted,
                },
                PutFact::Added { superseded } => Remembered {
                    id: fact.id,
                    kind: Kind::Fact,
                    chunks: 1,
                    embedded,
                    superseded,
                    unchanged: false,
                    evicted,
                },
                PutFact::History | PutFact::Exists => Remembered {
                    id: fact.id,
                    kind: Kind::Fact,
                    chunks: 0,
                    embedded,
                    superseded: None,
                    unchanged: true,
                    evicted,
                },
            })
        })
        .await
    }

    /// The embedding of a query, quantized; `None` if embeddings are unavailable.
    async fn query_vector(&self, q: &Query) -> Result<Option<Quantized>> {
        if q.mode == Mode::Fts {
            return Ok(None);
        }
        let e = match self.usable_embedder() {
            Ok(Some(e)) => e,
            Ok(None) if q.mode == Mode::Vector => {
                return Err(Error::Model(
                    "vector search needs all-MiniLM-L6-v2; run `stepwise memory pull-model`".into(),
                ));
            }
            Ok(None) => return Ok(None),
            Err(e) => return Err(e),
        };
        let v = e.embed(vec![q.text.clone()]).await?;
        Ok(v.first().map(|v| quantize(v)))
    }

    /// The `q.k` memories most relevant to `q.text`.
    pub async fn recall(&self, q: Query) -> Result<Vec<Hit>> {
        let qv = self.query_vector(&q).await?;
        self.recall_with_vector(q, qv).await
    }

    /// [`Memory::recall`] with the query embedding already computed (benchmarks, evaluation).
    pub async fn recall_with_vector(&self, q: Query, qv: Option<Quantized>) -> Result<Vec<Hit>> {
        if q.k == 0 {
            return Ok(Vec::new());
        }
        self.read(move |conn, inner| {
            inner.index.write().unwrap_or_else(|p| p.into_inner()).sync(conn)?;
            let index = inner.index.read().unwrap_or_else(|p| p.into_inner());
            recall::recall(conn, &index, &q, qv.as_ref(), now_us())
        })
        .await
    }

    /// Load (or catch up) the in-memory index (vectors and keywords) now rather than at the
    /// first recall. Returns the number of embedded chunks.
    pub async fn warm(&self) -> Result<usize> {
        self.read(|conn, inner| {
            let mut index = inner.index.write().unwrap_or_else(|p| p.into_inner());
            index.sync(conn)?;
            Ok(index.len())
        })
        .await
    }

    /// Forget notes, facts (every version) and threads.
    pub async fn forget(&self, f: Forget) -> Result<Removed> {
        if f.ids.is_empty() && f.namespace.is_none() && f.subject.is_none() && f.before.is_none() {
            return Err(Error::Invalid(
                "say what to forget: ids, or a namespace, subject, key or time".into(),
            ));
        }
        self.write(move |c| store::forget(c, &f)).await
    }

    /// Notes, newest first.
    pub async fn notes(&self, namespace: Option<String>, subject: Option<String>, limit: usize) -> Result<Vec<Note>> {
        self.read(move |c, _| {
            let mut stmt = c.prepare(&format!(
                "SELECT {} FROM mem_notes WHERE (?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR subject = ?2)
                 ORDER BY created_at DESC, id DESC LIMIT ?3",
                store::NOTE_COLS
            ))?;
            let rows = stmt.query_map(params![namespace, subject, limit as i64], store::note_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Facts, newest first: current values, or every version with `history`.
    pub async fn facts(
        &self,
        namespace: Option<String>,
        subject: Option<String>,
        key: Option<String>,
        history: bool,
        limit: usize,
    ) -> Result<Vec<Fact>> {
        self.read(move |c, _| {
            let mut stmt = c.prepare(&format!(
                "SELECT {} FROM mem_facts WHERE (?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR subject = ?2)
                   AND (?3 IS NULL OR key = ?3) AND (?4 OR superseded_at IS NULL)
                 ORDER BY created_at DESC, id DESC LIMIT ?5",
                store::FACT_COLS
            ))?;
            let rows = stmt.query_map(params![namespace, subject, key, history, limit as i64], store::fact_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// The current value of one fact.
    pub async fn fact(&self, namespace: &str, subject: &str, key: &str) -> Result<Option<Fact>> {
        let (n, s, k) = (namespace.to_string(), subject.to_string(), key.to_string());
        self.read(move |c, _| store::current_fact(c, &n, &s, &k)).await
    }

    /// Set a namespace's retention rule (both limits `None` removes it) and apply it now.
    pub async fn set_policy(&self, p: Policy) -> Result<Removed> {
        self.write(move |c| {
            retention::set_policy(c, &p)?;
            if p.namespace == "*" {
                retention::gc(c, now_us())
            } else {
                retention::enforce(c, &p.namespace, now_us())
            }
        })
        .await
    }

    /// Every retention rule.
    pub async fn policies(&self) -> Result<Vec<Policy>> {
        self.read(|c, _| retention::policies(c)).await
    }

    /// Apply every expiry and retention rule now.
    pub async fn gc(&self) -> Result<Removed> {
        self.write(|c| retention::gc(c, now_us())).await
    }

    /// Counts and sizes.
    pub async fn stats(&self) -> Result<Stats> {
        let path = self.inner.path.clone();
        self.read(move |c, inner| {
            let count = |sql: &str| -> Result<i64> { Ok(c.query_row(sql, [], |r| r.get(0))?) };
            let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            Ok(Stats {
                notes: count("SELECT COUNT(*) FROM mem_notes")?,
                facts: count("SELECT COUNT(*) FROM mem_facts WHERE superseded_at IS NULL")?,
                fact_versions: count("SELECT COUNT(*) FROM mem_facts")?,
                threads: count("SELECT COUNT(*) FROM mem_threads")?,
                messages: count("SELECT COUNT(*) FROM mem_messages")?,
                chunks: count("SELECT COUNT(*) FROM mem_chunks")?,
                embedded_chunks: count("SELECT COUNT(*) FROM mem_chunks WHERE embedding IS NOT NULL")?,
                db_bytes: size(path.clone()) + size(PathBuf::from(format!("{}-wal", path.display()))),
                index_bytes: inner.index.read().unwrap_or_else(|p| p.into_inner()).vector_bytes(),
                keyword_index_bytes: inner.index.read().unwrap_or_else(|p| p.into_inner()).text_bytes(),
            })
        })
        .await
    }

    /// Embed every chunk stored without an embedding (written while the model was missing).
    /// Returns how many were embedded; `progress(done, total)` is called after each batch.
    pub async fn reindex(&self, progress: &(dyn Fn(usize, usize) + Sync)) -> Result<usize> {
        let Some(_) = self.usable_embedder()? else {
            return Err(Error::Model(
                "reindexing needs all-MiniLM-L6-v2; run `stepwise memory pull-model`".into(),
            ));
        };
        let total: i64 = self
            .read(|c, _| {
                Ok(
                    c.query_row("SELECT COUNT(*) FROM mem_chunks WHERE embedding IS NULL", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .await?;
        let mut done = 0usize;
        loop {
            let batch: Vec<(i64, String)> = self
                .read(|c, _| {
                    let mut stmt =
                        c.prepare("SELECT id, text FROM mem_chunks WHERE embedding IS NULL ORDER BY id LIMIT 256")?;
                    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    Ok(rows.collect::<rusqlite::Result<_>>()?)
                })
                .await?;
            if batch.is_empty() {
                break;
            }
            let texts: Vec<String> = batch.iter().map(|(_, t)| t.clone()).collect();
            let blobs = self
                .embed_for_storage(&texts)
                .await?
                .ok_or_else(|| Error::Model("the embedding model became unavailable".into()))?;
            let n = batch.len();
            self.write(move |c| {
                let mut stmt = c.prepare_cached("UPDATE mem_chunks SET embedding = ?2 WHERE id = ?1")?;
                for ((id, _), b) in batch.iter().zip(blobs) {
                    stmt.execute(params![id, b])?;
                }
                Ok(())
            })
            .await?;
            done += n;
            progress(done, total as usize);
        }
        Ok(done)
    }
}
