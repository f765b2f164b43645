//! The records memory stores and returns.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Namespace used when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";

/// What a recalled item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Free text (or one chunk of it).
    Note,
    /// A current `subject.key = value`.
    Fact,
    /// A message of a conversation thread.
    Message,
}

impl Kind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Note => "note",
            Kind::Fact => "fact",
            Kind::Message => "message",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "note" => Some(Kind::Note),
            "fact" => Some(Kind::Fact),
            "message" => Some(Kind::Message),
            _ => None,
        }
    }
}

/// Which run and step wrote a memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Run id, if written by a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Step key, if written by a step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// A note to remember.
#[derive(Debug, Clone, Default)]
pub struct NewNote {
    /// Namespace; [`DEFAULT_NAMESPACE`] when empty.
    pub namespace: String,
    /// Who or what it is about.
    pub subject: Option<String>,
    /// Short title.
    pub title: Option<String>,
    /// The text.
    pub text: String,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Where it came from (file, URL, tool).
    pub source: Option<String>,
    /// Who wrote it.
    pub provenance: Provenance,
    /// Forget it after this many seconds.
    pub ttl_seconds: Option<i64>,
}

/// A fact to remember: `subject.key = value` in a namespace.
#[derive(Debug, Clone, Default)]
pub struct NewFact {
    /// Namespace; [`DEFAULT_NAMESPACE`] when empty.
    pub namespace: String,
    /// Who or what it is about (`user`, a city, a project).
    pub subject: String,
    /// The attribute (`home_airport`).
    pub key: String,
    /// The value (`AMS`).
    pub value: String,
    /// Who wrote it.
    pub provenance: Provenance,
    /// Forget it after this many seconds.
    pub ttl_seconds: Option<i64>,
}

/// What a write stored.
#[derive(Debug, Clone, Serialize)]
pub struct Remembered {
    /// Id of the note or fact.
    pub id: String,
    /// Note or fact.
    pub kind: Kind,
    /// Chunks indexed for recall.
    pub chunks: usize,
    /// Whether the chunks got embeddings (false: lexical recall only until `memory reindex`).
    pub embedded: bool,
    /// The fact version this one replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded: Option<String>,
    /// The fact already had this value; nothing was written.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unchanged: bool,
    /// Memories removed by the namespace's retention policy during this write.
    #[serde(skip_serializing_if = "is_zero")]
    pub evicted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A stored note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub id: String,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(flatten)]
    pub provenance: Provenance,
    /// Unix microseconds.
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// A stored fact version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub id: String,
    pub namespace: String,
    pub subject: String,
    pub key: String,
    pub value: String,
    #[serde(flatten)]
    pub provenance: Provenance,
    /// Unix microseconds.
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// When a newer value replaced this one (history), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
}

/// One recalled memory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// Note id, fact id, or thread id (messages).
    pub id: String,
    pub kind: Kind,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Fact key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Note title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Chunk number in a note; message number in a thread.
    pub ord: i64,
    /// The matching text (a note chunk, `subject key: value`, or a message).
    pub text: String,
    /// Fused score (reciprocal rank fusion; higher is better).
    pub score: f64,
    /// 1-based rank in the BM25 list, if it was there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fts_rank: Option<usize>,
    /// 1-based rank in the vector list, if it was there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_rank: Option<usize>,
    /// Cosine similarity to the query, if embedded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cosine: Option<f32>,
    /// Unix microseconds.
    pub created_at: i64,
}

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BM25 and vectors fused by reciprocal rank.
    #[default]
    Hybrid,
    /// BM25 only.
    Fts,
    /// Vectors only.
    Vector,
}

/// A recall request.
#[derive(Debug, Clone)]
pub struct Query {
    pub text: String,
    /// How many memories to return.
    pub k: usize,
    /// Only these namespaces (empty: all).
    pub namespaces: Vec<String>,
    /// Only memories about this subject.
    pub subject: Option<String>,
    /// Only these kinds (empty: all).
    pub kinds: Vec<Kind>,
    /// Only messages of this thread (notes and facts are not affected).
    pub thread: Option<String>,
    /// Created at or after (Unix µs).
    pub since: Option<i64>,
    /// Created before (Unix µs).
    pub until: Option<i64>,
    pub mode: Mode,
    /// Vector candidates less similar than this are dropped.
    pub min_cosine: Option<f32>,
}

impl Query {
    /// A hybrid query for the `k` best memories in any namespace.
    pub fn new(text: impl Into<String>, k: usize) -> Query {
        Query {
            text: text.into(),
            k,
            namespaces: Vec::new(),
            subject: None,
            kinds: Vec::new(),
            thread: None,
            since: None,
            until: None,
            mode: Mode::Hybrid,
            min_cosine: None,
        }
    }
}

/// What to forget.
#[derive(Debug, Clone, Default)]
pub struct Forget {
    /// Note, fact (all versions of its key) or thread ids, or unique prefixes of them.
    pub ids: Vec<String>,
    /// Everything in this namespace matching the other fields.
    pub namespace: Option<String>,
    pub subject: Option<String>,
    /// A fact key (with `subject`).
    pub key: Option<String>,
    /// Created before (Unix µs).
    pub before: Option<i64>,
}

/// Counts of what a forget or a gc removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    pub notes: usize,
    pub facts: usize,
    pub threads: usize,
    pub messages: usize,
}

impl Removed {
    /// Everything removed.
    pub fn total(&self) -> usize {
        self.notes + self.facts + self.threads + self.messages
    }

    pub(crate) fn add(&mut self, o: &Removed) {
        self.notes += o.notes;
        self.facts += o.facts;
        self.threads += o.threads;
        self.messages += o.messages;
    }
}
