//! `stepwise bench model`: the agent path measured against a bare llama-cpp-2 loop, side by
//! side in one run, for each model:
//!
//! - generation speed of the agent path (`ChatModel::chat` through the inference thread, as
//!   `llm` and `agent` steps call it) vs a bare decode loop (same GGUF, threads and prompt);
//! - prefill time of an agent's second turn vs its first (the shared prefix stays cached);
//! - peak RSS of a whole agent run (a child process runs a plan with one agent step).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use stepwise_model::llama::bare::bare_decode;
use stepwise_model::{ChatModel, ChatRequest, LocalModel, LocalOptions, Message, ModelRef, ToolChooser, ToolDef};
use stepwise_tools::Registry;

/// One model's figures.
#[derive(Debug, Serialize)]
struct ModelReport {
    model: String,
    threads: usize,
    prompt_tokens: usize,
    generated_tokens: usize,
    agent_tokens_per_s: f64,
    bare_tokens_per_s: f64,
    /// Agent path speed / bare loop speed.
    speed_ratio: f64,
    turn1_prefill_ms: f64,
    turn1_prompt_tokens: u32,
    turn2_prefill_ms: f64,
    turn2_prompt_tokens: u32,
    turn2_cached_tokens: u32,
    /// Turn 2 prefill / turn 1 prefill.
    prefill_ratio: f64,
    agent_run_peak_rss_mb: f64,
    agent_run_status: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

async fn open(name: &str, threads: usize) -> anyhow::Result<Arc<LocalModel>> {
    let r = ModelRef::parse(name)?;
    let opts = LocalOptions {
        threads: Some(threads),
        ..LocalOptions::default()
    };
    let m = tokio::task::spawn_blocking(move || -> anyhow::Result<LocalModel> {
        let path = r.resolve(true)?;
        Ok(LocalModel::open(&path, opts)?)
    })
    .await??;
    Ok(Arc::new(m))
}

fn agent_tools() -> (Registry, Vec<ToolDef>) {
    let reg = Registry::with_builtins();
    let tools = reg
        .list()
        .into_iter()
        .filter(|t| t.spec.name.starts_with("time.") || t.spec.name.starts_with("math."))
        .map(|t| ToolDef {
            name: t.spec.name,
            description: t.spec.description,
            parameters: t.spec.parameters,
        })
        .collect();
    (reg, tools)
}

/// Prefill of the first two turns of an agent asked for the time in Tokyo, on a model whose
/// cache holds nothing of that conversation yet.
async fn turns(model: &Arc<LocalModel>) -> anyhow::Result<(stepwise_model::Usage, stepwise_model::Usage)> {
    let (reg, tools) = agent_tools();
    let chooser = ToolChooser::new(model.clone() as Arc<dyn ChatModel>);
    let mut messages = vec![
        Message::system(crate::engine::DEFAULT_INSTRUCTIONS),
        Message::user("What time is it in Tokyo?"),
    ];
    let d1 = chooser.choose(&messages, &tools).await?;
    let call = d1.call.clone().unwrap_or_else(|| stepwise_model::ToolCall {
        id: None,
        name: "time.now".into(),
        arguments: json!({"tz": "Asia/Tokyo"}),
    });
    let cx = stepwise_tools::ToolContext::new(std::env::temp_dir());
    let result = reg
        .call(&call.name, call.arguments.clone(), &cx)
        .await
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    messages.push(Message::assistant_call(call.clone()));
    messages.push(Message::tool_result(&call, result.to_string()));
    let d2 = chooser.choose(&messages, &tools).await?;
    Ok((d1.usage, d2.usage))
}

/// Agent-path and bare-loop generation of the same prompt, `reps` times each, interleaved.
async fn speed(
    model: &Arc<LocalModel>,
    threads: usize,
    tokens: u32,
    reps: usize,
) -> anyhow::Result<(usize, usize, f64, f64)> {
    let messages = vec![
        Message::system("You are a helpful assistant."),
        Message::user("Write a long, detailed story about a lighthouse keeper and a storm."),
    ];
    let loaded = model.loaded().clone();
    let prompt = loaded.prompt_tokens(&messages)?;
    let (mut agent, mut bare) = (Vec::new(), Vec::new());
    let mut n = 0usize;
    for _ in 0..reps.max(1) {
        let mut req = ChatRequest::new(messages.clone());
        req.max_tokens = tokens;
        req.temperature = 0.0;
        let mut pieces = 0usize;
        let t0 = Instant::now();
        let resp = model.chat(req, &mut |_| pieces += 1).await?;
        let wall_ms = t0.elapsed().as_secs_f64() * 1e3;
        n = resp.usage.completion_tokens as usize;
        // Everything the caller waited for except evaluating the prompt.
        let decode_ms = (wall_ms - resp.usage.prefill_ms).max(1e-3);
        agent.push(n as f64 * 1e3 / decode_ms);
        let (l, p) = (loaded.clone(), prompt.clone());
        let b = tokio::task::spawn_blocking(move || bare_decode(&l, &p, n, threads, 4096)).await??;
        bare.push(b.tokens_per_s());
    }
    Ok((prompt.len(), n, median(agent), median(bare)))
}

/// Peak RSS of a child process that runs one agent step with `model` end to end.
fn agent_run_rss(model: &str, threads: usize) -> anyhow::Result<(f64, String)> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .args([
            "bench",
            "model",
            "--rss-child",
            model,
            "--threads",
            &threads.to_string(),
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("starting the agent-run child")?;
    let v: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("the agent-run child printed no report (exit {})", out.status))?;
    Ok((
        v["peak_rss_mb"].as_f64().unwrap_or(0.0),
        v["status"].as_str().unwrap_or("?").to_string(),
    ))
}

/// The child side of [`agent_run_rss`]: run a plan with one agent step in this process and
/// print its peak RSS.
pub async fn rss_child(model: &str, threads: usize) -> anyhow::Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let journal = crate::journal::Journal::open(&tmp.path().join("bench.db"), Default::default()).await?;
    let mut config = crate::EngineConfig::new(tmp.path());
    config.models = crate::engine::models::ModelHub::new(
        Some(crate::plan::ModelSpec::Name(model.to_string())),
        LocalOptions {
            threads: Some(threads),
            ..LocalOptions::default()
        },
    );
    let engine = crate::Engine::new(journal, Registry::with_builtins(), config);
    let src = "version: 1\nname: rss\nsteps:\n  - id: ask\n    agent:\n      prompt: What time is it in Tokyo?\n      tools: [time.now]\n";
    let plan = crate::plan::load_str(src, "rss.yaml", None, &engine.check_env()).map_err(|d| anyhow::anyhow!("{d}"))?;
    let out = engine
        .run(
            Arc::new(plan),
            Default::default(),
            tokio_util::sync::CancellationToken::new(),
        )
        .await?;
    println!(
        "{}",
        json!({"peak_rss_mb": crate::bench::peak_rss_mb(), "status": out.status})
    );
    Ok(ExitCode::SUCCESS)
}

/// Run the model benchmark for each of `models`.
pub async fn bench_model(
    models: Vec<String>,
    tokens: u32,
    reps: usize,
    threads: usize,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::new();
    for name in &models {
        eprintln!("== {name}: loading");
        let model = open(name, threads).await?;
        eprintln!("== {name}: agent turns (prefix reuse)");
        let (u1, u2) = turns(&model).await?;
        eprintln!("== {name}: generation speed, agent path vs bare loop ({reps} reps, {tokens} tokens)");
        let (prompt_tokens, generated, agent_tps, bare_tps) = speed(&model, threads, tokens, reps).await?;
        drop(model);
        eprintln!("== {name}: peak RSS of an agent run");
        let (rss, status) = agent_run_rss(name, threads)?;
        reports.push(ModelReport {
            model: name.clone(),
            threads,
            prompt_tokens,
            generated_tokens: generated,
            agent_tokens_per_s: agent_tps,
            bare_tokens_per_s: bare_tps,
            speed_ratio: if bare_tps > 0.0 { agent_tps / bare_tps } else { 0.0 },
            turn1_prefill_ms: u1.prefill_ms,
            turn1_prompt_tokens: u1.prompt_tokens,
            turn2_prefill_ms: u2.prefill_ms,
            turn2_prompt_tokens: u2.prompt_tokens,
            turn2_cached_tokens: u2.cached_tokens,
            prefill_ratio: if u1.prefill_ms > 0.0 {
                u2.prefill_ms / u1.prefill_ms
            } else {
                0.0
            },
            agent_run_peak_rss_mb: rss,
            agent_run_status: status,
        });
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&json!({"models": reports}))?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<22} {:>7} {:>9} {:>9} {:>7} {:>10} {:>10} {:>7} {:>9}",
        "model", "threads", "agent t/s", "bare t/s", "ratio", "turn1 pre", "turn2 pre", "ratio", "peak RSS"
    );
    for r in &reports {
        println!(
            "{:<22} {:>7} {:>9.1} {:>9.1} {:>6.1}% {:>8.1}ms {:>8.1}ms {:>6.1}% {:>6.0}MiB",
            r.model,
            r.threads,
            r.agent_tokens_per_s,
            r.bare_tokens_per_s,
            r.speed_ratio * 100.0,
            r.turn1_prefill_ms,
            r.turn2_prefill_ms,
            r.prefill_ratio * 100.0,
            r.agent_run_peak_rss_mb
        );
        println!(
            "  generated {} tokens after a {}-token prompt; turn 2: {} of {} prompt tokens reused; agent run: {}",
            r.generated_tokens, r.prompt_tokens, r.turn2_cached_tokens, r.turn2_prompt_tokens, r.agent_run_status
        );
    }
    Ok(ExitCode::SUCCESS)
}
