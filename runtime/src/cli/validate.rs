//! `stepwise validate FILE…`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::EXIT_INVALID;
use crate::plan::plugins::start_plan_plugins;
use crate::plan::{CheckEnv, load_file};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Plan files (YAML or JSON).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print one JSON object per file on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn validate(a: ValidateArgs) -> anyhow::Result<ExitCode> {
    let registry = stepwise_tools::Registry::with_builtins();
    // Plugins are started so that steps naming their tools can be checked.
    let workspace = std::env::var_os("STEPWISE_WORKSPACE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| ".".into());
    let host = stepwise_plugins::PluginHost::new(registry.clone(), workspace);
    let engine = stepwise_plugins::rhai_sandbox::expression_engine(&crate::EngineConfig::new(".").expr_limits);
    let env = CheckEnv {
        registry: &registry,
        engine: &engine,
    };
    let mut bad = 0usize;
    for f in &a.files {
        let started = match std::fs::read_to_string(f) {
            Ok(src) => start_plan_plugins(&host, &src, &f.display().to_string(), Some(f)).await,
            Err(_) => Ok(()),
        };
        let checked = match (started, load_file(f, &env)) {
            (Ok(()), r) => r,
            (Err(mut d), r) => {
                if let Err(more) = r {
                    d.0.extend(more.0);
                }
                Err(d)
            }
        };
        match checked {
            Ok(plan) => {
                if a.json {
                    println!(
                        "{}",
                        json!({"file": f, "valid": true, "name": plan.name, "steps": plan.step_count(), "inputs": plan.inputs.keys().collect::<Vec<_>>()})
                    );
                } else {
                    println!(
                        "{}: ok: plan `{}`, {} steps, {} inputs",
                        f.display(),
                        plan.name,
                        plan.step_count(),
                        plan.inputs.len()
                    );
                }
            }
            Err(diags) => {
                bad += 1;
                if a.json {
                    println!("{}", json!({"file": f, "valid": false, "problems": diags.0}));
                } else {
                    eprintln!("{diags}");
                    let n = diags.0.len();
                    eprintln!("{}: {n} problem{}", f.display(), if n == 1 { "" } else { "s" });
                }
            }
        }
    }
    host.shutdown().await;
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}
