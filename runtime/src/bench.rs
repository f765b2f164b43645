//! `stepwise bench engine`: engine overhead per journaled step, fan-out, loops, concurrent
//! runs, journal size and peak memory, all against a real SQLite file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Subcommand;
use serde::Serialize;
use serde_json::{Map, json};
use tokio_util::sync::CancellationToken;

use crate::journal::{Durability, Journal};
use crate::plan::{CheckEnv, Plan};
use crate::{Engine, EngineConfig};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Per-step overhead of the durable engine with SQLite journaling.
    Engine {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Repetitions per case (the median is reported).
        #[arg(long, default_value_t = 7)]
        reps: usize,
        /// Commit durability.
        #[arg(long, value_enum, default_value_t = Durability::Normal)]
        durability: Durability,
        /// Directory for the benchmark databases [default: a temporary directory].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Smaller sizes, for a quick check.
        #[arg(long)]
        quick: bool,
    },
    /// p50/p99 latency of a tool call through MCP (stdio and HTTP) vs a built-in call.
    Mcp {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Calls measured per path.
        #[arg(long, default_value_t = 2000)]
        calls: usize,
    },
    /// Memory: embeddings/s, inserts/s, recall latency at 10k and 100k memories, database
    /// size, recall@5 of keyword, vector and hybrid search on the labelled set.
    Memory(crate::cli::MemoryBenchArgs),
    /// Local model: agent-path generation speed vs a bare llama-cpp-2 decode loop, prefill of
    /// an agent's second turn vs its first, peak RSS of an agent run; per model.
    Model {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Models (catalog names or GGUF paths) [default: smollm2-135m].
        #[arg(long = "model")]
        models: Vec<String>,
        /// Tokens generated per speed measurement.
        #[arg(long, default_value_t = 128)]
        tokens: u32,
        /// Repetitions of the speed measurement (the median is reported).
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Inference threads [default: physical cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Internal: run one agent plan with this model and print the peak RSS.
        #[arg(long, hide = true)]
        rss_child: Option<String>,
    },
}

#[derive(Debug, Serialize)]
struct Case {
    name: String,
    /// Units of work per run (steps, branches, iterations or runs).
    units: usize,
    /// Median wall time of one repetition, microseconds.
    median_us: f64,
    /// Median per unit, microseconds.
    per_unit_us: f64,
    /// Units per second at the median.
    per_second: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    durability: Durability,
    reps: usize,
    sqlite_commit_us: f64,
    cases: Vec<Case>,
    journal_bytes_per_step: Vec<(usize, f64)>,
    peak_rss_mb: f64,
}

fn linear(n: usize) -> String {
    let mut s = format!("version: 1\nname: linear-{n}\nsteps:\n");
    for i in 0..n {
        s.push_str(&format!("  - id: s{i}\n    tool: util.noop\n"));
    }
    s
}

fn fanout(k: usize) -> String {
    let mut s = format!("version: 1\nname: fanout-{k}\nsteps:\n  - id: fan\n    parallel:\n");
    for i in 0..k {
        s.push_str(&format!("      - id: b{i}\n        tool: util.noop\n"));
    }
    s
}

fn looped(n: usize) -> String {
    format!(
        "version: 1\nname: loop-{n}\nsteps:\n  - id: iterate\n    for_each:\n      items: range(0, {n})\n      steps:\n        - id: body\n          tool: util.noop\n"
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

pub use stepwise_tools::sys::peak_rss_mb;

fn load(engine: &Engine, src: &str) -> anyhow::Result<Arc<Plan>> {
    let env: CheckEnv<'_> = engine.check_env();
    Ok(Arc::new(
        crate::plan::load_str(src, "bench", None, &env).map_err(|d| anyhow::anyhow!("bench plan invalid: {d}"))?,
    ))
}

async fn time_runs(engine: &Engine, plan: &Arc<Plan>, reps: usize) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let o = engine.run(plan.clone(), Map::new(), CancellationToken::new()).await?;
        anyhow::ensure!(o.succeeded(), "bench run failed: {:?}", o.error);
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(times)
}

fn case(name: &str, units: usize, times: Vec<f64>) -> Case {
    let m = median(times);
    Case {
        name: name.into(),
        units,
        median_us: m,
        per_unit_us: m / units as f64,
        per_second: units as f64 / (m / 1e6),
    }
}

/// Cost of one bare SQLite commit (one small insert) with the same settings.
fn sqlite_commit_us(dir: &Path, durability: Durability) -> anyhow::Result<f64> {
    let conn = rusqlite::Connection::open(dir.join("bare.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        if durability == Durability::Full {
            "FULL"
        } else {
            "NORMAL"
        },
    )?;
    conn.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)", [])?;
    let n = 2000;
    let t = Instant::now();
    for i in 0..n {
        conn.execute("INSERT INTO t (v) VALUES (?1)", [format!("row {i}")])?;
    }
    Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
}

async fn open_engine(path: &Path, durability: Durability) -> anyhow::Result<Engine> {
    let journal = Journal::open(path, durability).await?;
    let registry = stepwise_tools::Registry::with_builtins();
    Ok(Engine::new(journal, registry, EngineConfig::new(std::env::temp_dir())))
}

fn file_size(p: &Path) -> u64 {
    let wal = PathBuf::from(format!("{}-wal", p.display()));
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) + std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

async fn journal_bytes_per_step(dir: &Path, n: usize, durability: Durability) -> anyhow::Result<f64> {
    let path = dir.join(format!("size-{n}.db"));
    let _ = std::fs::remove_file(&path);
    let engine = open_engine(&path, durability).await?;
    let plan = load(&engine, &linear(n))?;
    // Empty-database baseline, after migrations.
    let before = {
        let p = path.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
            let c = rusqlite::Connection::open(&p)?;
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(file_size(&p))
        })
        .await??
    };
    time_runs(&engine, &plan, 1).await?;
    engine.journal().flush().await?;
    let p = path.clone();
    let after = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let c = rusqlite::Connection::open(&p)?;
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(file_size(&p))
    })
    .await??;
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

pub async fn bench(c: BenchCommand) -> anyhow::Result<ExitCode> {
    let (json, reps, durability, dir, quick) = match c {
        BenchCommand::Engine {
            json,
            reps,
            durability,
            dir,
            quick,
        } => (json, reps, durability, dir, quick),
        BenchCommand::Mcp { json, calls } => {
            let tmp = tempfile::tempdir()?;
            return crate::mcp::bench::bench_mcp(calls, json, tmp.path()).await;
        }
        BenchCommand::Memory(a) => return crate::cli::bench_memory(a).await,
        BenchCommand::Model {
            json,
            mut models,
            tokens,
            reps,
            threads,
            rss_child,
        } => {
            let threads = threads.unwrap_or_else(stepwise_model::llama::physical_cores);
            if let Some(m) = rss_child {
                return crate::bench_model::rss_child(&m, threads).await;
            }
            if models.is_empty() {
                models.push(stepwise_model::catalog::default_entry().name.to_string());
            }
            return crate::bench_model::bench_model(models, tokens, reps, threads, json).await;
        }
    };
    let tmp = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let reps = reps.max(1);
    let db = dir.join("bench.db");
    let _ = std::fs::remove_file(&db);
    let engine = open_engine(&db, durability).await?;
    let say = |s: &str| {
        if !json {
            eprintln!("{s}");
        }
    };

    let commit = sqlite_commit_us(&dir, durability)?;
    let mut cases = Vec::new();
    let sizes: &[usize] = if quick { &[10, 100] } else { &[10, 100, 1000] };
    for &n in sizes {
        say(&format!("linear chain of {n} no-op tool steps…"));
        let plan = load(&engine, &linear(n))?;
        time_runs(&engine, &plan, 1).await?; // warm-up
        let r = if n >= 1000 { reps.div_ceil(2).max(3) } else { reps };
        cases.push(case(
            &format!("linear {n} steps (per step)"),
            n,
            time_runs(&engine, &plan, r).await?,
        ));
    }
    let k = if quick { 20 } else { 100 };
    say(&format!("fan-out of {k} parallel branches…"));
    let plan = load(&engine, &fanout(k))?;
    time_runs(&engine, &plan, 1).await?;
    cases.push(case(
        &format!("fan-out {k} branches (per branch)"),
        k,
        time_runs(&engine, &plan, reps).await?,
    ));
    let n = if quick { 100 } else { 1000 };
    say(&format!("loop of {n} iterations…"));
    let plan = load(&engine, &looped(n))?;
    time_runs(&engine, &plan, 1).await?;
    cases.push(case(
        &format!("for_each {n} iterations (per iteration)"),
        n,
        time_runs(&engine, &plan, reps.div_ceil(2).max(3)).await?,
    ));

    let runs = if quick { 20 } else { 100 };
    say(&format!("{runs} concurrent runs of a 10-step plan…"));
    let plan = load(&engine, &linear(10))?;
    let mut times = Vec::new();
    for _ in 0..reps.div_ceil(2).max(3) {
        let t = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..runs {
            let e = engine.clone();
            let p = plan.clone();
            set.spawn(async move { e.run(p, Map::new(), CancellationToken::new()).await });
        }
        while let Some(r) = set.join_next().await {
            let o = r??;
            anyhow::ensure!(o.succeeded(), "bench run failed: {:?}", o.error);
        }
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    cases.push(case(&format!("{runs} concurrent 10-step runs (per run)"), runs, times));

    say("journal size per step…");
    let mut sizes_out = Vec::new();
    for &n in if quick {
        &[10usize, 100][..]
    } else {
        &[10usize, 100, 1000][..]
    } {
        sizes_out.push((n, journal_bytes_per_step(&dir, n, durability).await?));
    }

    let report = Report {
        durability,
        reps,
        sqlite_commit_us: commit,
        cases,
        journal_bytes_per_step: sizes_out,
        peak_rss_mb: peak_rss_mb(),
    };
    if json {
        println!("{}", serde_json::to_string(&json!(report))?);
    } else {
        println!(
            "stepwise bench engine — SQLite WAL, synchronous={:?}, median of {} reps",
            durability, reps
        );
        println!("bare SQLite commit (1 insert): {:.1} µs", report.sqlite_commit_us);
        println!("{:<44} {:>12} {:>14} {:>12}", "case", "median", "per unit", "units/s");
        for c in &report.cases {
            println!(
                "{:<44} {:>10.2}ms {:>12.1}µs {:>12.0}",
                c.name,
                c.median_us / 1e3,
                c.per_unit_us,
                c.per_second
            );
        }
        for (n, b) in &report.journal_bytes_per_step {
            println!("journal bytes per step, {n}-step run: {b:.0}");
        }
        println!("peak RSS: {:.1} MiB", report.peak_rss_mb);
    }
    Ok(ExitCode::SUCCESS)
}
