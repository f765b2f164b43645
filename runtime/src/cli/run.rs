//! `stepwise run FILE`

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::{DbArgs, EXIT_INVALID};
use crate::engine::{Engine, RunOutcome};
use crate::error::Error;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Plan file (YAML or JSON).
    file: PathBuf,
    /// An input as `name=value` (typed by the plan's inputs schema). Repeatable.
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
    inputs: Vec<String>,
    /// A JSON file holding an object of inputs (`--input` values win).
    #[arg(long, value_name = "FILE")]
    input_json: Option<PathBuf>,
    /// Print one JSON object (run id, status, outputs) on stdout and nothing else there.
    #[arg(long)]
    json: bool,
    /// Show step progress on stderr even when it is not a terminal.
    #[arg(long, conflicts_with = "quiet")]
    progress: bool,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    db: DbArgs,
}

pub async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let engine = a.db.engine().await?;
    let plan = match engine.prepare_plan(&a.file).await {
        Ok(p) => Arc::new(p),
        Err(Error::Plan(d)) => {
            eprintln!("{d}");
            eprintln!(
                "{}: not run; fix the problems above (`stepwise validate` checks a plan)",
                a.file.display()
            );
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        Err(e) => return Err(e.into()),
    };
    let mut inputs = Map::new();
    if let Some(f) = &a.input_json {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => inputs.extend(m),
            Ok(_) => {
                eprintln!("{}: --input-json must hold a JSON object", f.display());
                return Ok(ExitCode::from(EXIT_INVALID));
            }
            Err(e) => {
                eprintln!("{}:{}:{}: not valid JSON: {e}", f.display(), e.line(), e.column());
                return Ok(ExitCode::from(EXIT_INVALID));
            }
        }
    }
    for kv in &a.inputs {
        let Some((k, v)) = kv.split_once('=') else {
            eprintln!("--input `{kv}`: write it as NAME=VALUE");
            return Ok(ExitCode::from(EXIT_INVALID));
        };
        match plan.coerce_cli_input(k.trim(), v) {
            Ok(v) => {
                inputs.insert(k.trim().to_string(), v);
            }
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::from(EXIT_INVALID));
            }
        }
    }
    let show = !a.quiet && (a.progress || std::io::stderr().is_terminal());
    let outcome = drive(&engine, show, |eng, cancel| {
        let plan = plan.clone();
        async move { eng.run(plan, inputs, cancel).await }
    })
    .await;
    engine.plugins().shutdown().await;
    finish(outcome, a.json)
}

/// Run something on an engine with progress printing and Ctrl-C cancellation.
pub async fn drive<F, Fut>(engine: &Engine, show: bool, f: F) -> Result<RunOutcome, Error>
where
    F: FnOnce(Engine, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<RunOutcome, Error>>,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let eng = engine.with_observer(tx);
    let printer = tokio::spawn(super::progress::print(rx, show));
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupt: stopping; `stepwise runs resume` continues the run later");
            c2.cancel();
        }
    });
    let outcome = f(eng, cancel).await;
    ctrl_c.abort();
    let _ = printer.await;
    outcome
}

/// Print the outcome and pick the exit code.
pub fn finish(outcome: Result<RunOutcome, Error>, json: bool) -> anyhow::Result<ExitCode> {
    let outcome = match outcome {
        Ok(o) => o,
        Err(Error::Inputs(errs)) => {
            for e in errs {
                eprintln!("{e}");
            }
            eprintln!("hint: pass inputs with --input NAME=VALUE or --input-json FILE");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        Err(Error::Plan(d)) => {
            eprintln!("{d}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string(&outcome)?);
    } else {
        if !outcome.outputs.is_null() && outcome.outputs.as_object().is_none_or(|m| !m.is_empty()) {
            println!("{}", serde_json::to_string_pretty(&outcome.outputs)?);
        }
        match &outcome.error {
            Some(e) => eprintln!("run {} {}: {e}", outcome.run_id, outcome.status),
            None => eprintln!("run {} {}", outcome.run_id, outcome.status),
        }
        if !outcome.succeeded() {
            eprintln!(
                "hint: `stepwise runs show {}` has the details; `stepwise runs resume {}` continues it",
                outcome.run_id, outcome.run_id
            );
        }
    }
    Ok(match outcome.status.as_str() {
        "succeeded" => ExitCode::SUCCESS,
        "cancelled" => ExitCode::from(130),
        _ => ExitCode::FAILURE,
    })
}
