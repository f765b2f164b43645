//! `stepwise bench mcp`: latency of one tool call through MCP over stdio and over
//! streamable HTTP, against the same built-in tool called directly, in one run. The MCP
//! server is this binary's own `stepwise mcp serve` (so the tool behind both transports is
//! exactly the built-in one); the client is the plugin client plans use.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use serde_json::json;
use stepwise_plugins::{PluginDecl, PluginHost, PluginSpec};
use stepwise_tools::{Registry, ToolContext};

#[derive(Debug, Serialize)]
struct Row {
    path: String,
    calls: usize,
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
    /// p50 relative to the built-in call.
    p50_ratio: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn measure(registry: &Registry, tool: &str, calls: usize, warmup: usize) -> anyhow::Result<Vec<f64>> {
    let cx = ToolContext::new(std::env::temp_dir());
    let args = json!({"value": "ping"});
    for _ in 0..warmup {
        registry.call(tool, args.clone(), &cx).await?;
    }
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let out = registry.call(tool, args.clone(), &cx).await?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(
            out == json!("ping") || out.to_string().contains("ping"),
            "unexpected result {out}"
        );
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times)
}

fn decl(name: &str, spec: serde_json::Value) -> anyhow::Result<PluginDecl> {
    let spec: PluginSpec = serde_json::from_value(spec)?;
    Ok(PluginDecl {
        name: name.into(),
        spec,
        base_dir: None,
        declared_in: "bench".into(),
        inline_origin: None,
    })
}

/// Run the benchmark and print a table, or one JSON object with `json`.
pub async fn bench_mcp(calls: usize, json_out: bool, dir: &Path) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the stepwise binary")?;
    let exe = exe.display().to_string();
    let calls = calls.max(10);
    let warmup = (calls / 10).clamp(5, 100);
    let registry = Registry::with_builtins();
    let host = PluginHost::new(registry.clone(), dir.to_path_buf());
    let db = dir.join("bench-mcp.db").display().to_string();
    let say = |s: &str| {
        if !json_out {
            eprintln!("{s}");
        }
    };

    say("starting `stepwise mcp serve` over stdio…");
    // Plugin names must not collide with built-in groups (`http.*` is taken).
    host.ensure(&decl(
        "over_stdio",
        json!({"kind": "mcp", "command": exe, "args": ["mcp", "serve", "--db", db], "protocol": "2025-11-25"}),
    )?)
    .await?;

    say("starting `stepwise mcp serve --http`…");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = tokio::process::Command::new(&exe)
        .args(["mcp", "serve", "--db", &db, "--http", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the HTTP server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    host.ensure(&decl(
        "over_http",
        json!({"kind": "mcp", "url": format!("http://127.0.0.1:{port}/mcp"), "protocol": "2025-11-25"}),
    )?)
    .await?;

    let cases = [
        ("built-in util.noop (registry call)", "util.noop"),
        ("MCP over stdio (stepwise mcp serve)", "over_stdio.util.noop"),
        ("MCP over streamable HTTP (127.0.0.1)", "over_http.util.noop"),
    ];
    let mut rows = Vec::new();
    let mut base = 0.0;
    for (label, tool) in cases {
        say(&format!("{calls} calls: {label}…"));
        let t = measure(&registry, tool, calls, warmup).await?;
        let p50 = percentile(&t, 0.50);
        if base == 0.0 {
            base = p50.max(1e-3);
        }
        rows.push(Row {
            path: label.to_string(),
            calls,
            p50_us: p50,
            p99_us: percentile(&t, 0.99),
            mean_us: t.iter().sum::<f64>() / t.len() as f64,
            p50_ratio: p50 / base,
        });
    }
    host.shutdown().await;
    // Let the HTTP client end its session before the server goes away.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = child.kill().await;

    if json_out {
        println!("{}", serde_json::to_string(&json!({"bench": "mcp", "rows": rows}))?);
    } else {
        println!("stepwise bench mcp — one tool call (`util.noop`), {calls} calls per path after {warmup} warm-up");
        println!(
            "{:<40} {:>12} {:>12} {:>12} {:>10}",
            "path", "p50", "p99", "mean", "p50 ×"
        );
        for r in &rows {
            println!(
                "{:<40} {:>10.1}µs {:>10.1}µs {:>10.1}µs {:>9.0}×",
                r.path, r.p50_us, r.p99_us, r.mean_us, r.p50_ratio
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
