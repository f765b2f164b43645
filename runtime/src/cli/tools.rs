//! `stepwise tools list`

use std::process::ExitCode;

use clap::Subcommand;

use super::plugins::PluginSources;

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Every tool with its description and parameter schema: the built-ins, and those of
    /// the plugins given with `--plugins DIR` or `--plan FILE`.
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        src: PluginSources,
    },
}

pub async fn tools(c: ToolsCommand) -> anyhow::Result<ExitCode> {
    let registry = stepwise_tools::Registry::with_builtins();
    match c {
        ToolsCommand::List { json, src } => {
            let host = match src.start(&registry).await {
                Ok(h) => h,
                Err(code) => return Ok(code),
            };
            let list = registry.list();
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for t in list {
                    let flag = if t.spec.side_effects { "  [side effects]" } else { "" };
                    let from = if t.origin == "builtin" {
                        String::new()
                    } else {
                        format!("  ({})", t.origin)
                    };
                    println!("{}{flag}{from}\n  {}", t.spec.name, t.spec.description);
                    println!("  parameters: {}", serde_json::to_string(&t.spec.parameters)?);
                }
            }
            host.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}
