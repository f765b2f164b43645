//! The in-process backend: llama.cpp through llama-cpp-2.
//!
//! A GGUF is loaded (memory-mapped) once per process and shared behind an `Arc` by every
//! [`LocalModel`] that uses it. Each `LocalModel` owns one inference thread with its own
//! llama context; requests are queued to it, so inference never runs on tokio's workers.

mod generate;
mod session;
mod worker;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_trait::async_trait;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;
use serde::Serialize;

use crate::chat::{Capabilities, ChatModel, ChatRequest, ChatResponse, TokenSink};
use crate::choose::{ChooseRequest, Decision};
use crate::error::{ModelError, Result};
use crate::template::ChatTemplate;

pub mod bare;
pub(crate) use generate::schema_grammar;
pub use session::{Logits, SeqId, Session};
pub use worker::Worker;

/// Number of physical CPU cores (not hyper-threads), bounded by what this process may use.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    num_cpus::get_physical().clamp(1, logical.max(1))
}

/// How to load and run a local model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocalOptions {
    /// Threads for generation and prompt evaluation [default: physical cores].
    pub threads: Option<usize>,
    /// Context window in tokens [default: 4096].
    pub ctx: u32,
    /// Most tokens evaluated in one batch.
    pub batch: u32,
    /// Sequences the context can hold at once (cached prefixes + scoring branches).
    pub seqs: u32,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            threads: None,
            ctx: 4096,
            batch: 1024,
            seqs: 16,
        }
    }
}

impl LocalOptions {
    /// The thread count actually used.
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(physical_cores).max(1)
    }
}

fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ModelError::Inference(format!("llama.cpp backend: {e}")))
}

/// A GGUF loaded in memory, with what the tool chooser needs about its vocabulary.
pub struct LoadedModel {
    pub(crate) model: LlamaModel,
    pub path: PathBuf,
    pub(crate) template: ChatTemplate,
    /// Bytes of every token (special tokens rendered), indexed by token id.
    pub(crate) pieces: Vec<Vec<u8>>,
    pub(crate) eog: Vec<bool>,
    pub info: ModelInfo,
}

/// Facts about a loaded model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub name: String,
    pub architecture: String,
    pub parameters: u64,
    pub size_bytes: u64,
    pub context_train: u32,
    pub vocab: usize,
    /// The GGUF has `tokenizer.chat_template`.
    pub has_chat_template: bool,
    /// That template has a tool section.
    pub template_has_tools: bool,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel").field("path", &self.path).finish()
    }
}

impl LoadedModel {
    /// Load `path` or return the copy this process already has.
    pub fn shared(path: &Path) -> Result<Arc<LoadedModel>> {
        static LOADED: OnceLock<Mutex<HashMap<PathBuf, Weak<LoadedModel>>>> = OnceLock::new();
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let map = LOADED.get_or_init(Default::default);
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = map.get(&key).and_then(Weak::upgrade) {
            return Ok(m);
        }
        let m = Arc::new(Self::load(&key)?);
        map.insert(key, Arc::downgrade(&m));
        Ok(m)
    }

    fn load(path: &Path) -> Result<LoadedModel> {
        let be = backend()?;
        if !path.is_file() {
            return Err(ModelError::Load {
                path: path.into(),
                message: "no such file".into(),
            });
        }
        let params = LlamaModelParams::default().with_use_mmap(true);
        let model = LlamaModel::load_from_file(be, path, &params).map_err(|e| ModelError::Load {
            path: path.into(),
            message: format!("{e} (is it a GGUF file of an architecture llama.cpp supports?)"),
        })?;
        let vocab = model.vocab();
        let n = vocab.n_tokens().max(0) as usize;
        let mut pieces = Vec::with_capacity(n);
        let mut eog = Vec::with_capacity(n);
        for id in 0..n as i32 {
            let t = LlamaToken::new(id);
            pieces.push(vocab.token_to_piece(t, true, None));
            eog.push(vocab.is_eog(t));
        }
        let piece = |t: LlamaToken| -> String {
            usize::try_from(t.0)
                .ok()
                .and_then(|i| pieces.get(i))
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default()
        };
        let (bos, eos) = (piece(vocab.bos()), piece(vocab.eos()));
        let source = model.meta_val_str("tokenizer.chat_template").ok();
        let template = ChatTemplate::new(source.as_deref(), &bos, &eos).map_err(|e| ModelError::Load {
            path: path.into(),
            message: e.to_string(),
        })?;
        let meta = |k: &str| model.meta_val_str(k).unwrap_or_default();
        let info = ModelInfo {
            path: path.into(),
            name: meta("general.name"),
            architecture: meta("general.architecture"),
            parameters: model.n_params(),
            size_bytes: model.size(),
            context_train: model.n_ctx_train(),
            vocab: n,
            has_chat_template: source.is_some(),
            template_has_tools: template.has_tools,
        };
        Ok(LoadedModel {
            model,
            path: path.into(),
            template,
            pieces,
            eog,
            info,
        })
    }

    /// Tokenize text (special tokens in the text are parsed as such).
    pub fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        self.model.vocab().tokenize(text.as_bytes(), false, true)
    }

    /// The bytes of one token.
    pub fn piece(&self, t: LlamaToken) -> &[u8] {
        usize::try_from(t.0)
            .ok()
            .and_then(|i| self.pieces.get(i))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The text bytes of `tokens`, in order.
    pub fn bytes(&self, tokens: &[LlamaToken]) -> Vec<u8> {
        tokens.iter().flat_map(|&t| self.piece(t).iter().copied()).collect()
    }

    /// Whether the token ends a turn.
    pub fn is_eog(&self, t: LlamaToken) -> bool {
        usize::try_from(t.0)
            .ok()
            .and_then(|i| self.eog.get(i))
            .copied()
            .unwrap_or(false)
    }

    /// The chat template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }
}

/// A local model ready to serve requests: the shared weights plus one inference thread.
#[derive(Clone)]
pub struct LocalModel {
    loaded: Arc<LoadedModel>,
    worker: Arc<Worker>,
    opts: LocalOptions,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("path", &self.loaded.path)
            .field("opts", &self.opts)
            .finish()
    }
}

impl LocalModel {
    /// Load (or share) the GGUF at `path` and start an inference thread for it.
    pub fn open(path: &Path, opts: LocalOptions) -> Result<Self> {
        let loaded = LoadedModel::shared(path)?;
        let worker = Worker::start(loaded.clone(), &opts)?;
        Ok(LocalModel {
            loaded,
            worker: Arc::new(worker),
            opts,
        })
    }

    /// The loaded weights.
    pub fn loaded(&self) -> &Arc<LoadedModel> {
        &self.loaded
    }

    /// Options it runs with.
    pub fn options(&self) -> &LocalOptions {
        &self.opts
    }

    /// Run `f` on the inference thread with exclusive use of the session.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Session<'_>) -> Result<T> + Send + 'static,
    {
        self.worker.run(f).await
    }

    /// Like [`LocalModel::run`], blocking the calling thread (not for async contexts).
    pub fn run_blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Session<'_>) -> Result<T> + Send + 'static,
    {
        self.worker.run_blocking(f)
    }
}

pub(crate) fn ctx_size(opts: &LocalOptions) -> Option<NonZeroU32> {
    NonZeroU32::new(opts.ctx.max(256))
}

#[async_trait]
impl ChatModel for LocalModel {
    async fn chat(&self, req: ChatRequest, on_token: TokenSink<'_>) -> Result<ChatResponse> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let job = self.worker.run(move |s| {
            generate::chat(s, &req, &mut |piece: &str| {
                let _ = tx.send(piece.to_string());
            })
        });
        tokio::pin!(job);
        loop {
            tokio::select! {
                biased;
                Some(p) = rx.recv() => on_token(&p),
                r = &mut job => {
                    while let Ok(p) = rx.try_recv() {
                        on_token(&p);
                    }
                    return r;
                }
            }
        }
    }

    fn label(&self) -> String {
        self.loaded
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "local model".into())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            grammar: true,
            logit_scoring: true,
            native_tools: self.loaded.template.has_tools,
            local: true,
        }
    }

    async fn choose(&self, req: ChooseRequest) -> Result<Decision> {
        self.run(move |s| crate::choose::local::choose(s, &req)).await
    }
}
