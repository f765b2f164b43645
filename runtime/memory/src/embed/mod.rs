//! Sentence embeddings with all-MiniLM-L6-v2, served by one dedicated thread (which splits
//! each batch over the physical cores; see [`engine`]).
//!
//! The model loads on first use (about 0.4 s), never on a tokio worker. Requests queued while
//! the thread is busy are embedded together in the next batch, so concurrent callers share
//! forward passes.

mod bert;
pub mod engine;
mod kernels;
pub mod model;

use std::path::PathBuf;
use std::sync::mpsc;

use tokio::sync::oneshot;

pub use engine::{DIM, MAX_TOKENS, normalized};

use crate::error::{Error, Result};

/// Name recorded with stored embeddings.
pub const MODEL_ID: &str = "all-MiniLM-L6-v2/int8";

struct Request {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>>>,
}

/// Handle to the embedding thread. Cheap to clone.
#[derive(Clone)]
pub struct Embedder {
    tx: mpsc::Sender<Request>,
    dir: PathBuf,
}

impl Embedder {
    /// Start the thread for the model in `dir`. Nothing is loaded until the first request;
    /// a missing model is reported then.
    pub fn start(dir: PathBuf) -> Result<Embedder> {
        let (tx, rx) = mpsc::channel::<Request>();
        let d = dir.clone();
        std::thread::Builder::new()
            .name("stepwise-embed".into())
            .spawn(move || serve(d, rx))
            .map_err(|e| Error::io("embedding thread", e))?;
        Ok(Embedder { tx, dir })
    }

    /// The model directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Embed texts; one unit vector per text, in order.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request { texts, reply }).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Embed texts from a blocking (non-async) thread.
    pub fn embed_blocking(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request { texts, reply }).map_err(|_| Error::Closed)?;
        rx.blocking_recv().map_err(|_| Error::Closed)?
    }
}

fn serve(dir: PathBuf, rx: mpsc::Receiver<Request>) {
    let mut model: Option<engine::MiniLm> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let mut n = batch[0].texts.len();
        while n < 256 {
            match rx.try_recv() {
                Ok(r) => {
                    n += r.texts.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        if model.is_none() {
            match model::check(&dir).and_then(|()| engine::MiniLm::load(&dir)) {
                Ok(m) => model = Some(m),
                Err(e) => {
                    let msg = e.to_string();
                    for r in batch {
                        let _ = r.reply.send(Err(Error::Model(msg.clone())));
                    }
                    continue;
                }
            }
        }
        let Some(m) = model.as_ref() else { continue };
        let texts: Vec<&str> = batch.iter().flat_map(|r| r.texts.iter().map(String::as_str)).collect();
        match m.embed(&texts) {
            Ok(mut vecs) => {
                for r in batch.into_iter().rev() {
                    let mine = vecs.split_off(vecs.len() - r.texts.len());
                    let _ = r.reply.send(Ok(mine));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for r in batch {
                    let _ = r.reply.send(Err(Error::Model(msg.clone())));
                }
            }
        }
    }
}
