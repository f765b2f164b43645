//! `stepwise tools list`

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Every tool with its description and parameter schema.
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub fn tools(c: ToolsCommand) -> anyhow::Result<ExitCode> {
    let registry = stepwise_tools::Registry::with_builtins();
    match c {
        ToolsCommand::List { json } => {
            let list = registry.list();
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for t in list {
                    let flag = if t.spec.side_effects { "  [side effects]" } else { "" };
                    println!("{}{flag}\n  {}", t.spec.name, t.spec.description);
                    println!("  parameters: {}", serde_json::to_string(&t.spec.parameters)?);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
