//! `stepwise chat`: an interactive session with a model, tools and memory.
//!
//! A thread goes on across sessions: its earlier messages are replayed (within a token
//! budget) and every turn is persisted to it. Facts and notes are namespace-wide: every
//! thread of a namespace recalls them. What the user states about themselves is captured
//! as facts and notes by the rules of `stepwise_memory::capture`.

mod input;
mod session;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use stepwise_memory::{AgentMemory, AgentMemoryConfig, DEFAULT_NAMESPACE, Memory, NewNote, OpenOptions};
use stepwise_model::ToolDef;
use stepwise_tools::{NetPolicy, Registry, ToolContext};
use tokio_util::sync::CancellationToken;

use self::input::{Input, Reader};
use self::session::{CallRecord, Session};
use super::{DbArgs, EXIT_INVALID};
use crate::plan::{ModelSpec, ToolPolicy};

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Thread to continue (or to start under this id). Without it a new thread is created
    /// and its id printed.
    #[arg(long)]
    thread: Option<String>,
    /// Model: a catalog name (`smollm2-135m`) or a GGUF path [default: $STEPWISE_MODEL, else
    /// the catalog's default].
    #[arg(long)]
    model: Option<String>,
    /// Namespace of the thread and of the memories recalled [default: the thread's, else
    /// `default`].
    #[arg(long)]
    namespace: Option<String>,
    /// Tools the model may call: names or globs (`time.*`, `math.eval`). A tool with side
    /// effects (e.g. `memory.remember`, `file.write`) must be named, not matched by `*`.
    /// [default: none; the tool chooser of a 135M model also fires on plain statements]
    #[arg(long, num_args = 1.., value_name = "GLOB")]
    tools: Vec<String>,
    /// Do not store what you say about yourself (`my name is …`, `I prefer …`) as memories.
    #[arg(long)]
    no_capture: bool,
    /// Memories recalled into each turn (0: none).
    #[arg(long, default_value_t = 5)]
    recall: usize,
    /// Print one JSON object per turn on stdout instead of the streamed answer.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DbArgs,
}

/// Output of a session: streamed text or JSON lines.
struct Printer {
    json: bool,
    tty: bool,
}

impl Printer {
    fn json(&self, v: &serde_json::Value) {
        println!("{v}");
    }
    fn info(&self, text: &str) {
        eprintln!("{text}");
    }
}

pub async fn chat(a: ChatArgs) -> anyhow::Result<ExitCode> {
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let out = Printer { json: a.json, tty };
    if let Some(t) = &a.thread
        && let Some(why) = stepwise_memory::threads::thread_id_problem(t)
    {
        eprintln!("--thread: {why}");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    if a.namespace.as_deref().is_some_and(|n| n.trim().is_empty()) {
        eprintln!("--namespace cannot be empty (leave it out for `{DEFAULT_NAMESPACE}`)");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let globs = a.tools.clone();

    let db = a.db.db_path();
    let memory = Memory::open(&db, OpenOptions::default())
        .await
        .with_context(|| format!("opening the memory in {}", db.display()))?;
    let existing = match &a.thread {
        Some(t) => memory.thread(t).await?,
        None => None,
    };
    let namespace = match (&existing, &a.namespace) {
        (Some(t), Some(ns)) if &t.namespace != ns => {
            eprintln!(
                "--thread {}: the thread belongs to namespace `{}`, not `{ns}`; leave out --namespace to continue it",
                t.id, t.namespace
            );
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        (Some(t), _) => t.namespace.clone(),
        (None, ns) => ns.clone().unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
    };
    let registry = Registry::with_builtins();
    stepwise_memory::tools::register(&registry, memory.clone(), &namespace)?;
    let tools = match offered_tools(&registry, &globs) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("--tools: {e}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };

    let model = load_model(a.model.as_deref(), &out).await?;
    let thread = memory.open_thread(a.thread.as_deref(), &namespace, None).await?;
    let resumed = existing.is_some();
    out.info(&format!(
        "thread {} ({}) in namespace `{}`; continue it with `stepwise chat --thread {}`",
        thread.id,
        if resumed {
            format!("continued, {} earlier messages", thread.messages)
        } else {
            "new".to_string()
        },
        thread.namespace,
        thread.id
    ));
    if out.tty && !out.json {
        out.info("commands: /tools /memory /remember TEXT /exit (Ctrl-C stops an answer, Ctrl-D leaves)");
    }
    let config = AgentMemoryConfig {
        thread: Some(thread.id.clone()),
        namespace: namespace.clone(),
        capture: !a.no_capture,
        recall: stepwise_memory::RecallConfig {
            k: a.recall,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut tool_cx = ToolContext::new(a.db.workspace());
    tool_cx.net = NetPolicy {
        allow_private: a.db.allow_private_net,
        ..Default::default()
    };
    let mut session = Session::new(
        AgentMemory::new(memory, config),
        thread,
        model,
        registry,
        tools,
        tool_cx,
    );
    repl(&mut session, &out).await
}

/// The tools `globs` allow, under the same rule as an agent step (a side-effecting tool
/// must be named).
fn offered_tools(registry: &Registry, globs: &[String]) -> Result<Vec<ToolDef>, String> {
    let names = registry.names();
    for g in globs {
        let m = globset::Glob::new(g)
            .map_err(|e| format!("bad pattern `{g}`: {e}"))?
            .compile_matcher();
        if !names.iter().any(|n| m.is_match(n)) {
            let hint = registry
                .suggest(g)
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| "`stepwise tools list` shows the tools".into());
            return Err(format!("`{g}` matches no tool; {hint}"));
        }
    }
    if globs.is_empty() {
        return Ok(Vec::new());
    }
    let policy = ToolPolicy::new(Some(globs), &[])?;
    Ok(ToolPolicy::visible(&[&policy], registry)
        .into_iter()
        .map(|s| ToolDef {
            name: s.name,
            description: s.description,
            parameters: s.parameters,
        })
        .collect())
}

async fn load_model(name: Option<&str>, out: &Printer) -> anyhow::Result<Arc<dyn stepwise_model::ChatModel>> {
    let spec = name.map(|n| ModelSpec::Name(n.to_string()));
    let hub = crate::engine::models::ModelHub::default();
    let label = name.map(str::to_string).unwrap_or_else(|| "the default model".into());
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(format!("loading {label}…"));
    if std::io::stderr().is_terminal() {
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
    } else {
        out.info(&format!("loading {label}…"));
    }
    let t0 = Instant::now();
    let model = hub.get(spec.as_ref()).await;
    bar.finish_and_clear();
    let model = model.map_err(|e| anyhow::anyhow!("cannot load the model: {e}"))?;
    out.info(&format!(
        "model {} ready in {:.1}s",
        model.label(),
        t0.elapsed().as_secs_f64()
    ));
    Ok(model)
}

/// Read lines until `/exit` or the end of input.
async fn repl(s: &mut Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let mut reader = Reader::start(out.tty, history_path());
    // Ctrl-C cancels the answer being generated; at an idle plain-stdin prompt it ends the
    // session (a terminal prompt gets Ctrl-C from the line editor instead).
    let current: Arc<Mutex<Option<CancellationToken>>> = Arc::default();
    let watcher = {
        let current = current.clone();
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                let busy = current.lock().ok().and_then(|c| c.clone());
                match busy {
                    Some(c) => c.cancel(),
                    None => std::process::exit(130),
                }
            }
        })
    };
    let result = loop {
        let line = match reader.next().await {
            Input::Line(l) => l,
            Input::Interrupted => {
                out.info("(Ctrl-D or /exit leaves)");
                continue;
            }
            Input::Eof => break Ok(ExitCode::SUCCESS),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(cmd) = line.strip_prefix('/') {
            match command(s, cmd, out).await {
                Ok(true) => continue,
                Ok(false) => break Ok(ExitCode::SUCCESS),
                Err(e) => break Err(e),
            }
        }
        let cancel = CancellationToken::new();
        if let Ok(mut c) = current.lock() {
            *c = Some(cancel.clone());
        }
        let stream = !out.json;
        if stream && out.tty {
            print!("ai> ");
        }
        let mut printed = false;
        let mut on_token = |t: &str| {
            if stream {
                let mut o = std::io::stdout();
                let t = if printed { t } else { t.trim_start() };
                printed |= !t.is_empty();
                let _ = o.write_all(t.as_bytes());
                let _ = o.flush();
            }
        };
        let json_mode = out.json;
        let mut on_call = |c: &CallRecord| {
            if !json_mode {
                eprintln!("[{} {} → {}]", c.tool, c.arguments, clip(&c.result.to_string(), 160));
            }
        };
        let turn = s.turn(line, cancel, &mut on_token, &mut on_call).await;
        if let Ok(mut c) = current.lock() {
            *c = None;
        }
        match turn {
            Ok(t) => {
                if out.json {
                    out.json(&serde_json::to_value(&t)?);
                } else {
                    println!();
                    if t.cancelled {
                        out.info("(answer stopped; this turn is not kept in the thread)");
                    }
                }
            }
            Err(e) => break Err(e),
        }
    };
    watcher.abort();
    result
}

/// A slash command; `Ok(false)` ends the session.
async fn command(s: &mut Session, cmd: &str, out: &Printer) -> anyhow::Result<bool> {
    let (name, arg) = cmd.split_once(char::is_whitespace).unwrap_or((cmd, ""));
    let arg = arg.trim();
    match name {
        "exit" | "quit" => return Ok(false),
        "tools" => {
            if out.json {
                let names: Vec<&str> = s.tools().iter().map(|t| t.name.as_str()).collect();
                out.json(&json!({"command": "tools", "tools": names}));
            } else if s.tools().is_empty() {
                println!("no tools (start with --tools GLOB… to offer some)");
            } else {
                for t in s.tools() {
                    let first = t.description.lines().next().unwrap_or_default();
                    println!("{:<18} {first}", t.name);
                }
            }
        }
        "memory" => {
            let mem = s.memory.memory().clone();
            let thread = mem.thread(&s.thread.id).await?.unwrap_or_else(|| s.thread.clone());
            let stats = mem.stats().await?;
            let last = s.last.as_ref();
            let recalled = last.map(|t| t.recalled.clone()).unwrap_or_default();
            if out.json {
                out.json(&json!({
                    "command": "memory",
                    "thread": {"id": thread.id, "namespace": thread.namespace, "messages": thread.messages},
                    "recalled": recalled,
                    "history_messages": last.map_or(0, |t| t.history_messages),
                    "facts": stats.facts,
                    "notes": stats.notes,
                }));
            } else {
                println!(
                    "thread {} in `{}`: {} messages; database: {} facts, {} notes",
                    thread.id, thread.namespace, thread.messages, stats.facts, stats.notes
                );
                match last {
                    None => println!("nothing recalled yet (no turn in this session)"),
                    Some(t) if t.recalled.is_empty() => {
                        println!(
                            "last turn: nothing recalled, {} earlier messages replayed",
                            t.history_messages
                        )
                    }
                    Some(t) => {
                        println!("last turn recalled ({} earlier messages replayed):", t.history_messages);
                        for r in &t.recalled {
                            println!("  [{} {:.3}] {}", r.kind.as_str(), r.score, r.text);
                        }
                    }
                }
            }
        }
        "remember" => {
            if arg.is_empty() {
                out.info("/remember TEXT: say what to remember, e.g. `/remember my home airport is AMS`");
                return Ok(true);
            }
            let stored = remember(s, arg).await?;
            if out.json {
                out.json(&json!({"command": "remember", "remembered": stored}));
            } else {
                for m in &stored {
                    println!("remembered: {m}");
                }
            }
        }
        other => {
            out.info(&format!(
                "unknown command /{other}; commands: /tools /memory /remember TEXT /exit"
            ));
        }
    }
    Ok(true)
}

/// `/remember TEXT`: facts and notes captured from it, else the text as a note about the
/// user.
async fn remember(s: &Session, text: &str) -> anyhow::Result<Vec<String>> {
    let mem = s.memory.memory();
    let ns = &s.memory.config().namespace;
    let provenance = stepwise_memory::Provenance {
        run_id: None,
        step: Some(format!("chat:{}", s.thread.id)),
    };
    let captured = stepwise_memory::capture::remember(mem, ns, text, provenance.clone()).await?;
    if !stepwise_memory::capture::capture(text).is_empty() {
        return Ok(captured.iter().map(|(c, _)| crate::engine::captured_text(c)).collect());
    }
    mem.remember_note(NewNote {
        namespace: ns.clone(),
        subject: Some("user".into()),
        text: text.to_string(),
        source: Some("chat./remember".into()),
        provenance,
        ..Default::default()
    })
    .await?;
    Ok(vec![text.to_string()])
}

/// Where `stepwise chat` keeps its line history.
fn history_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("stepwise").join("chat_history.txt"))
}

fn clip(s: &str, n: usize) -> String {
    crate::engine::clip(s, n)
}
