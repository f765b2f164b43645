//! `stepwise mcp serve` (stepwise as an MCP server over stdio or streamable HTTP) and
//! `stepwise mcp probe` (a small MCP client on the same code as plan plugins).

pub mod bench;
pub mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;

use crate::cli::{DbArgs, EXIT_INVALID};
use crate::plan::ToolPolicy;
use crate::plan::plugins::{read_plugin_dir, start_dir_plugins};
use server::{McpService, ServeState};

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Serve the tools of this installation and the workflows of a directory over MCP.
    Serve(ServeArgs),
    /// Connect to an MCP server (streamable-HTTP URL), list its tools, and optionally call one.
    Probe(ProbeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory of workflows; each `*.yaml` becomes a tool `workflow.<file stem>` whose
    /// arguments are the workflow's inputs. A call is a journaled run.
    #[arg(long, value_name = "DIR")]
    workflows: Option<PathBuf>,
    /// Directory of plugin manifests whose tools, resources and prompts are served.
    #[arg(long, value_name = "DIR", env = "STEPWISE_PLUGINS")]
    plugins: Option<PathBuf>,
    /// Serve streamable HTTP on this address (path `/mcp`) instead of stdio. Only loopback
    /// addresses are accepted.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Serve the tools of this plugin under their bare names (`echo` instead of `demo.echo`).
    /// Repeatable.
    #[arg(long = "bare", value_name = "PLUGIN")]
    bare: Vec<String>,
    /// Tools (names or globs) to expose; side-effecting tools are exposed only when named
    /// here. Default: every tool without side effects.
    #[arg(long = "allow", value_name = "PATTERN")]
    allow: Vec<String>,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Streamable-HTTP endpoint of the server.
    url: String,
    /// Call this tool (its name on the server) after listing.
    #[arg(long)]
    call: Option<String>,
    /// Arguments of `--call`, as a JSON object.
    #[arg(long, default_value = "{}")]
    args: String,
    /// One argument of `--call` as `NAME=VALUE` (VALUE is read as JSON when it parses, else
    /// as a string). Repeatable; wins over `--args`.
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    arg: Vec<String>,
    /// Protocol negotiation: `auto`, `2025-11-25` or `2026-07-28`.
    #[arg(long, default_value = "auto")]
    protocol: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn mcp(c: McpCommand) -> anyhow::Result<ExitCode> {
    match c {
        McpCommand::Serve(a) => serve(a).await,
        McpCommand::Probe(a) => probe(a).await,
    }
}

async fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let engine = a.db.engine().await?;
    if let Some(dir) = &a.plugins {
        let started = match read_plugin_dir(dir) {
            Ok(decls) => start_dir_plugins(engine.plugins(), decls).await,
            Err(d) => Err(d),
        };
        if let Err(d) = started {
            eprintln!("{d}");
            engine.plugins().shutdown().await;
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    }
    let mut workflows = BTreeMap::new();
    if let Some(dir) = &a.workflows {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let mut bad = false;
        for f in files {
            match engine.prepare_plan(&f).await {
                Ok(plan) => {
                    let stem = f
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    workflows.insert(format!("workflow.{stem}"), Arc::new(plan));
                }
                Err(e) => {
                    eprintln!("{e}");
                    bad = true;
                }
            }
        }
        if bad {
            eprintln!("not serving: fix the workflows above (`stepwise validate` checks them)");
            engine.plugins().shutdown().await;
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    }
    let allow = if a.allow.is_empty() {
        None
    } else {
        Some(a.allow.as_slice())
    };
    let policy = ToolPolicy::new(allow, &[]).map_err(|e| anyhow::anyhow!("--allow: {e}"))?;
    let state = Arc::new(ServeState {
        engine: engine.clone(),
        workflows,
        bare: a.bare.iter().cloned().collect(),
        policy,
    });
    match a.http {
        None => {
            let service = McpService::new(state)
                .serve(rmcp::transport::stdio())
                .await
                .context("MCP handshake on stdio failed")?;
            let _ = service.waiting().await;
        }
        Some(addr) => {
            anyhow::ensure!(
                addr.ip().is_loopback(),
                "--http {addr}: only loopback addresses (127.0.0.1, [::1]) are served; the server has no authentication"
            );
            let ct = tokio_util::sync::CancellationToken::new();
            let config = StreamableHttpServerConfig::default().with_cancellation_token(ct.child_token());
            let st = state.clone();
            let service = StreamableHttpService::new(
                move || Ok(McpService::new(st.clone())),
                LocalSessionManager::default().into(),
                config,
            );
            let router = axum::Router::new().nest_service("/mcp", service);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            eprintln!("stepwise MCP server on http://{}/mcp", listener.local_addr()?);
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = tokio::signal::ctrl_c().await;
                    ct.cancel();
                })
                .await?;
        }
    }
    engine.plugins().shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn probe(a: ProbeArgs) -> anyhow::Result<ExitCode> {
    let mut args: Value = serde_json::from_str(&a.args).context("--args must be a JSON object")?;
    for kv in &a.arg {
        let (k, v) = kv.split_once('=').context("--arg: write it as NAME=VALUE")?;
        let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        if let Value::Object(m) = &mut args {
            m.insert(k.to_string(), v);
        }
    }
    let registry = stepwise_tools::Registry::new();
    let workspace = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let host = stepwise_plugins::PluginHost::new(registry.clone(), workspace.clone());
    let spec: stepwise_plugins::PluginSpec = serde_json::from_value(serde_json::json!({
        "kind": "mcp", "url": a.url, "protocol": a.protocol, "startup_timeout": "20s", "timeout": "20s"
    }))
    .context("--protocol must be auto, 2025-11-25 or 2026-07-28")?;
    let decl = stepwise_plugins::PluginDecl {
        name: "probe".into(),
        spec,
        base_dir: None,
        declared_in: "command line".into(),
        inline_origin: None,
    };
    if let Err(e) = host.ensure(&decl).await {
        eprintln!("{e}");
        return Ok(ExitCode::FAILURE);
    }
    let info = host.list().await;
    let tools: Vec<String> = registry
        .names()
        .into_iter()
        .map(|n| n.trim_start_matches("probe.").to_string())
        .collect();
    let mut result = Value::Null;
    let mut code = ExitCode::SUCCESS;
    if let Some(t) = &a.call {
        let cx = stepwise_tools::ToolContext::new(workspace);
        match registry.call(&format!("probe.{t}"), args, &cx).await {
            Ok(v) => result = v,
            Err(e) => {
                eprintln!("{e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    let protocol = info.first().and_then(|p| p.protocol.clone()).unwrap_or_default();
    if a.json {
        println!(
            "{}",
            serde_json::json!({"protocol": protocol, "tools": tools, "result": result})
        );
    } else {
        println!(
            "connected: protocol {protocol}, {} tools: {}",
            tools.len(),
            tools.join(", ")
        );
        if a.call.is_some() {
            println!("result: {result}");
        }
    }
    host.shutdown().await;
    Ok(code)
}
