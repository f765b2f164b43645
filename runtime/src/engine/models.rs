//! The models `llm` and `agent` steps use: loaded on first use, then shared by every step
//! and run of the engine (a GGUF is mapped into memory once per process).

use std::collections::HashMap;
use std::sync::Arc;

use stepwise_model::{ChatModel, LocalModel, LocalOptions, ModelRef, OpenAiConfig, OpenAiModel};

use crate::plan::{ModelSpec, OpenAiSpec};

/// Model registry of an engine. Cheap to clone.
#[derive(Clone)]
pub struct ModelHub {
    inner: Arc<Inner>,
}

struct Inner {
    default: Option<ModelSpec>,
    local: LocalOptions,
    cache: tokio::sync::Mutex<HashMap<String, Arc<dyn ChatModel>>>,
}

impl Default for ModelHub {
    /// The default model from the environment: `$STEPWISE_MODEL` (catalog name or GGUF
    /// path), or an OpenAI-compatible server when `$STEPWISE_OPENAI_BASE_URL` and
    /// `$STEPWISE_OPENAI_MODEL` are set (key in `$STEPWISE_OPENAI_API_KEY`), else the
    /// catalog's default model.
    fn default() -> Self {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let default = match (env("STEPWISE_OPENAI_BASE_URL"), env("STEPWISE_OPENAI_MODEL")) {
            (Some(base_url), Some(model)) => Some(ModelSpec::OpenAi {
                openai: OpenAiSpec {
                    base_url,
                    model,
                    api_key_env: Some("STEPWISE_OPENAI_API_KEY".into()),
                },
            }),
            _ => env("STEPWISE_MODEL").map(ModelSpec::Name),
        };
        let threads = env("STEPWISE_THREADS").and_then(|t| t.parse().ok());
        ModelHub::new(
            default,
            LocalOptions {
                threads,
                ..LocalOptions::default()
            },
        )
    }
}

impl std::fmt::Debug for ModelHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelHub")
            .field("default", &self.inner.default)
            .finish()
    }
}

fn key(spec: &ModelSpec) -> String {
    match spec {
        ModelSpec::Name(n) => format!("local:{n}"),
        ModelSpec::OpenAi { openai } => format!("openai:{}#{}", openai.base_url, openai.model),
    }
}

impl ModelHub {
    /// A hub whose steps without a `model` use `default` (the catalog default when `None`).
    pub fn new(default: Option<ModelSpec>, local: LocalOptions) -> Self {
        ModelHub {
            inner: Arc::new(Inner {
                default,
                local,
                cache: Default::default(),
            }),
        }
    }

    /// Serve `spec` with an already built model (tests, embedders).
    pub async fn insert(&self, spec: &ModelSpec, model: Arc<dyn ChatModel>) {
        self.inner.cache.lock().await.insert(key(spec), model);
    }

    /// The model for a step: its own spec, else the default. Loads it on first use.
    pub async fn get(&self, spec: Option<&ModelSpec>) -> Result<Arc<dyn ChatModel>, String> {
        let spec = spec
            .cloned()
            .or_else(|| self.inner.default.clone())
            .unwrap_or_else(|| ModelSpec::Name(stepwise_model::catalog::default_entry().name.to_string()));
        let k = key(&spec);
        // One loader at a time: two steps asking for the same model share one load.
        let mut cache = self.inner.cache.lock().await;
        if let Some(m) = cache.get(&k) {
            return Ok(m.clone());
        }
        let model: Arc<dyn ChatModel> = match &spec {
            ModelSpec::Name(name) => {
                let r = ModelRef::parse(name).map_err(|e| e.to_string())?;
                let opts = self.inner.local.clone();
                let m = tokio::task::spawn_blocking(move || -> Result<LocalModel, String> {
                    let path = r.resolve(true).map_err(|e| e.to_string())?;
                    LocalModel::open(&path, opts).map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| format!("loading the model failed: {e}"))??;
                Arc::new(m)
            }
            ModelSpec::OpenAi { openai } => {
                let mut cfg = OpenAiConfig::new(&openai.base_url, &openai.model);
                if let Some(var) = &openai.api_key_env {
                    cfg.api_key = std::env::var(var).ok().filter(|k| !k.is_empty());
                }
                Arc::new(OpenAiModel::new(cfg).map_err(|e| e.to_string())?)
            }
        };
        cache.insert(k, model.clone());
        Ok(model)
    }
}
