//! Command-line interface. Arguments are parsed before anything else starts, so
//! `stepwise --version` and `--help` cost almost nothing.

mod chat;
mod eval;
mod memory;
mod models;
mod plugins;
pub use memory::{MemoryBenchArgs, bench_memory};
mod progress;
mod run;
mod runs;
mod tools;
mod validate;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::journal::Durability;

/// Exit code for a plan or input problem.
pub const EXIT_INVALID: u8 = 2;

/// stepwise: durable agent plans that run offline.
#[derive(Debug, Parser)]
#[command(name = "stepwise", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a plan and print its outputs.
    Run(run::RunArgs),
    /// Check plan files and report every problem with its line and column.
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema of the plan format.
    Schema,
    /// Inspect and resume journaled runs.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// List the tools plans can call.
    #[command(subcommand)]
    Tools(tools::ToolsCommand),
    /// Show plugins (Rhai tools, MCP servers) and their tools.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Serve tools and workflows over MCP, or probe an MCP server.
    #[command(subcommand)]
    Mcp(crate::mcp::McpCommand),
    /// Measure the engine.
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    /// Notes, facts and conversation threads agents remember, with hybrid recall.
    Memory(memory::MemoryArgs),
    /// List, pull and inspect language models.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Talk with a model that remembers: tools, memory recall, threads that go on across
    /// sessions.
    Chat(chat::ChatArgs),
    /// Measure tool-calling accuracy (BFCL).
    #[command(subcommand)]
    Eval(eval::EvalCommand),
}

/// Options shared by commands that open the journal.
#[derive(Debug, Args, Clone)]
pub struct DbArgs {
    /// Journal database [default: $XDG_DATA_HOME/stepwise/stepwise.db]
    #[arg(long, env = "STEPWISE_DB", global = true)]
    pub db: Option<PathBuf>,
    /// How hard commits try to reach the disk: `normal` survives a killed process, `full`
    /// also a power loss (fsync per commit).
    #[arg(long, env = "STEPWISE_DURABILITY", value_enum, default_value_t = Durability::Normal, global = true)]
    pub durability: Durability,
    /// Directory file tools are confined to [default: the current directory]
    #[arg(long, env = "STEPWISE_WORKSPACE", global = true)]
    pub workspace: Option<PathBuf>,
    /// Let `http.get` reach loopback and private addresses.
    #[arg(long, env = "STEPWISE_ALLOW_PRIVATE_NET", global = true)]
    pub allow_private_net: bool,
}

impl DbArgs {
    pub fn db_path(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("stepwise")
                .join("stepwise.db")
        })
    }

    pub fn workspace(&self) -> PathBuf {
        self.workspace
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// Open the journal and build an engine with the built-in tools.
    pub async fn engine(&self) -> anyhow::Result<crate::Engine> {
        let journal = crate::Journal::open(&self.db_path(), self.durability).await?;
        let registry = stepwise_tools::Registry::with_builtins();
        let memory = stepwise_memory::Memory::open(&self.db_path(), stepwise_memory::OpenOptions::default()).await?;
        stepwise_memory::tools::register(&registry, memory.clone(), stepwise_memory::DEFAULT_NAMESPACE)?;
        let mut config = crate::EngineConfig::new(self.workspace());
        config.memory = Some(memory);
        let mut engine = crate::Engine::new(journal, registry, config);
        engine.set_net_policy(stepwise_tools::NetPolicy {
            allow_private: self.allow_private_net,
            ..Default::default()
        });
        Ok(engine)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?)
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("STEPWISE_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Schema => {
            print!("{}", crate::plan::plan_schema_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate(a) => runtime()?.block_on(validate::validate(a)),
        Command::Run(a) => runtime()?.block_on(run::run(a)),
        Command::Runs(c) => runtime()?.block_on(runs::runs(c)),
        Command::Tools(c) => runtime()?.block_on(tools::tools(c)),
        Command::Plugins(c) => runtime()?.block_on(plugins::plugins(c)),
        Command::Mcp(c) => runtime()?.block_on(crate::mcp::mcp(c)),
        Command::Bench(c) => runtime()?.block_on(crate::bench::bench(c)),
        Command::Memory(a) => runtime()?.block_on(memory::memory(a)),
        Command::Models(c) => models::models(c),
        Command::Eval(c) => runtime()?.block_on(eval::eval(c)),
        Command::Chat(a) => runtime()?.block_on(chat::chat(a)),
    }
}
