//! `stepwise plugins list`, and the plugin options shared with `tools list` and `mcp serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use stepwise_plugins::PluginHost;
use stepwise_tools::Registry;

use super::EXIT_INVALID;
use crate::plan::plugins::{read_plugin_dir, start_dir_plugins, start_plan_plugins};

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Start the plugins of a directory and/or a plan and show each with its tools.
    List {
        #[command(flatten)]
        src: PluginSources,
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// Where plugins come from.
#[derive(Debug, Args, Clone, Default)]
pub struct PluginSources {
    /// Directory of plugin manifests (`<name>.yaml`, one plugin per file).
    #[arg(long = "plugins", env = "STEPWISE_PLUGINS", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Also start the plugins declared by this plan (and the workflows it calls).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Directory MCP servers may touch [default: the current directory].
    #[arg(long, env = "STEPWISE_WORKSPACE")]
    pub workspace: Option<PathBuf>,
}

impl PluginSources {
    /// A host over `registry` with every plugin of these sources started; problems are
    /// printed and come back as `Err(exit code)`.
    pub async fn start(&self, registry: &Registry) -> Result<PluginHost, ExitCode> {
        let workspace = self
            .workspace
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("."));
        let host = PluginHost::new(registry.clone(), workspace);
        let mut problems = Vec::new();
        if let Some(dir) = &self.dir {
            match read_plugin_dir(dir) {
                Ok(decls) => {
                    if let Err(d) = start_dir_plugins(&host, decls).await {
                        problems.push(d.to_string());
                    }
                }
                Err(d) => problems.push(d.to_string()),
            }
        }
        if let Some(plan) = &self.plan {
            match std::fs::read_to_string(plan) {
                Ok(src) => {
                    if let Err(d) = start_plan_plugins(&host, &src, &plan.display().to_string(), Some(plan)).await {
                        problems.push(d.to_string());
                    }
                }
                Err(e) => problems.push(format!("{}: cannot read the file: {e}", plan.display())),
            }
        }
        if problems.is_empty() {
            Ok(host)
        } else {
            for p in problems {
                eprintln!("{p}");
            }
            host.shutdown().await;
            Err(ExitCode::from(EXIT_INVALID))
        }
    }
}

pub async fn plugins(c: PluginsCommand) -> anyhow::Result<ExitCode> {
    let PluginsCommand::List { src, json } = c;
    let registry = Registry::with_builtins();
    let host = match src.start(&registry).await {
        Ok(h) => h,
        Err(code) => return Ok(code),
    };
    let list = host.list().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        eprintln!("no plugins: pass --plugins DIR or --plan FILE");
    } else {
        for p in &list {
            let proto = p
                .protocol
                .as_deref()
                .map(|v| format!(", protocol {v}"))
                .unwrap_or_default();
            println!("{} ({}{proto}) from {}", p.name, p.kind, p.declared_in);
            if let Some(d) = &p.description {
                println!("  {d}");
            }
            for t in &p.tools {
                let flag = if t.side_effects { "  [side effects]" } else { "" };
                println!("  {}{flag}\n    {}", t.name, t.description);
                println!("    parameters: {}", serde_json::to_string(&t.parameters)?);
            }
        }
    }
    host.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
