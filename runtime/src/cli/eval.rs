//! `stepwise eval bfcl`: run BFCL items through the tool chooser, write one JSON line per
//! item, and score them when the answers are known.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;
use stepwise_model::bfcl::{self, Answer, Verdict};
use stepwise_model::{ArgMode, ChatModel, Strategy, ToolCall, ToolChooser, ToolPrompt};

use super::models::ModelArgs;

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Tool-calling accuracy on BFCL question files.
    Bfcl(BfclArgs),
}

#[derive(Debug, Args)]
pub struct BfclArgs {
    /// BFCL question files (JSON Lines).
    #[arg(required = true)]
    pub questions: Vec<PathBuf>,
    /// Possible-answer files, in the order of the question files [default: the file of the
    /// same name in a `possible_answer` directory next to each question file, if any].
    /// Irrelevance files need none: no call is the right answer.
    #[arg(long)]
    pub answers: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Only the first N items of each file (after `--skip`).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Leave out the first N items of each file (to tune on other items than those reported).
    #[arg(long, default_value_t = 0)]
    pub skip: usize,
    /// `constrained` (default: likelihood scoring and constrained decoding) or `naive`
    /// (tools as JSON in the prompt, free generation, first JSON object parsed).
    #[arg(long, default_value = "constrained")]
    pub strategy: Strategy,
    /// How the tools are shown to a local model: `compact` (one signature line per tool)
    /// or `native` (the chat template's own tool section, where it has one).
    #[arg(long, default_value = "compact")]
    pub tool_prompt: ToolPrompt,
    /// Who writes argument values: `decode` (the per-type decoder), `generate` (the model,
    /// under a grammar from the schema) or `auto` (generate for models trained on tool calls).
    #[arg(long, default_value = "auto")]
    pub arg_values: ArgMode,
    /// Where to write predictions, one JSON line per item.
    #[arg(long, required_unless_present = "score")]
    pub out: Option<PathBuf>,
    /// Score the predictions in this file (written by an earlier run, possibly cut short)
    /// instead of running the model: only the items it has are counted.
    #[arg(long, value_name = "PRED.jsonl", conflicts_with = "out")]
    pub score: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Never abstain: always call one of the tools (to measure tool and argument choice
    /// apart from the decision to call).
    #[arg(long)]
    pub always_call: bool,
    /// Add the chooser's trace (scores behind each decision) and token usage to each line.
    #[arg(long)]
    pub trace: bool,
}

/// Accuracy of one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileScore {
    pub file: String,
    pub items: usize,
    /// `None` when the answers are not known.
    pub correct: Option<usize>,
    pub accuracy: Option<f64>,
    pub median_ms: f64,
    pub p90_ms: f64,
    /// Verdicts other than correct, by kind.
    pub errors: BTreeMap<String, usize>,
}

fn answers_for(q: &Path, explicit: Option<&PathBuf>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.clone());
    }
    let sibling = q.parent()?.join("possible_answer").join(q.file_name()?);
    sibling.is_file().then_some(sibling)
}

fn is_irrelevance(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains("irrelevance"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Accuracy and latency of one file, item by item.
struct Tally {
    name: String,
    scorable: bool,
    lat: Vec<f64>,
    correct: usize,
    errors: BTreeMap<String, usize>,
}

impl Tally {
    fn new(name: String, scorable: bool) -> Self {
        Tally {
            name,
            scorable,
            lat: Vec::new(),
            correct: 0,
            errors: BTreeMap::new(),
        }
    }

    /// Count one item; `known` are the file's answers (none for irrelevance files).
    fn add(
        &mut self,
        item: &bfcl::Item,
        calls: &[ToolCall],
        ms: f64,
        known: Option<&BTreeMap<String, Answer>>,
    ) -> anyhow::Result<Option<Verdict>> {
        self.lat.push(ms);
        if !self.scorable {
            return Ok(None);
        }
        let exp = known.and_then(|k| k.get(&item.id));
        if known.is_some() && exp.is_none() {
            anyhow::bail!("{}: no answer for item `{}`", self.name, item.id);
        }
        let v = bfcl::check(item, calls, exp);
        if v == Verdict::Correct {
            self.correct += 1;
        } else {
            let kind = match serde_json::to_value(&v)? {
                serde_json::Value::String(s) => s,
                serde_json::Value::Object(m) => m.keys().next().cloned().unwrap_or_default(),
                other => other.to_string(),
            };
            *self.errors.entry(kind).or_default() += 1;
        }
        Ok(Some(v))
    }

    fn accuracy(&self) -> f64 {
        self.correct as f64 / self.lat.len().max(1) as f64
    }

    fn finish(mut self) -> FileScore {
        self.lat.sort_by(f64::total_cmp);
        FileScore {
            items: self.lat.len(),
            correct: self.scorable.then_some(self.correct),
            accuracy: self.scorable.then(|| self.accuracy()),
            median_ms: percentile(&self.lat, 0.5),
            p90_ms: percentile(&self.lat, 0.9),
            file: self.name,
            errors: self.errors,
        }
    }
}

/// A question file's items (after `skip`, at most `limit`), its name, and its answers.
type Loaded = (Vec<bfcl::Item>, String, Option<BTreeMap<String, Answer>>);

fn load_file(q: &Path, answers: Option<&PathBuf>, skip: usize, limit: Option<usize>) -> anyhow::Result<Loaded> {
    let mut items = bfcl::load_items(q)?;
    items.drain(..skip.min(items.len()));
    if let Some(n) = limit {
        items.truncate(n);
    }
    let known = match answers_for(q, answers) {
        Some(a) => Some(bfcl::load_answers(&a)?.into_iter().map(|a| (a.id.clone(), a)).collect()),
        None => None,
    };
    let name = q
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((items, name, known))
}

/// Score earlier predictions (JSON lines with `id`, `calls`, `latency_ms`) against the
/// question files; items without a prediction are left out.
pub fn score_file(files: &[PathBuf], answers: &[PathBuf], preds: &Path) -> anyhow::Result<Vec<FileScore>> {
    let text = std::fs::read_to_string(preds).with_context(|| format!("reading {}", preds.display()))?;
    let mut by_id: BTreeMap<String, (Vec<ToolCall>, f64)> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}:{}: not a JSON line", preds.display(), i + 1))?;
        let id = v["id"]
            .as_str()
            .with_context(|| format!("{}:{}: no `id`", preds.display(), i + 1))?;
        let calls: Vec<ToolCall> = serde_json::from_value(v["calls"].clone())
            .with_context(|| format!("{}:{}: `calls` is not a list of calls", preds.display(), i + 1))?;
        let ms = v["latency_ms"].as_f64().unwrap_or(0.0);
        by_id.insert(id.to_string(), (calls, ms));
    }
    let mut scores = Vec::new();
    for (fi, q) in files.iter().enumerate() {
        let (items, name, known) = load_file(q, answers.get(fi), 0, None)?;
        let mut tally = Tally::new(name, known.is_some() || is_irrelevance(q));
        for item in &items {
            if let Some((calls, ms)) = by_id.get(&item.id) {
                tally.add(item, calls, *ms, known.as_ref())?;
            }
        }
        if !tally.lat.is_empty() {
            scores.push(tally.finish());
        }
    }
    Ok(scores)
}

/// Run every file through `chooser`, writing predictions to `out`. Shared by `eval bfcl`
/// and `bench model`.
#[allow(clippy::too_many_arguments)]
pub async fn run_files(
    chooser: &ToolChooser,
    files: &[PathBuf],
    answers: &[PathBuf],
    skip: usize,
    limit: Option<usize>,
    out: &mut dyn Write,
    progress: bool,
    trace: bool,
) -> anyhow::Result<Vec<FileScore>> {
    let mut scores = Vec::new();
    for (fi, q) in files.iter().enumerate() {
        let (items, name, known) = load_file(q, answers.get(fi), skip, limit)?;
        let bar = if progress {
            indicatif::ProgressBar::new(items.len() as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_prefix(name.clone());
        let mut tally = Tally::new(name, known.is_some() || is_irrelevance(q));
        for item in &items {
            let t0 = Instant::now();
            let d = chooser.choose(&item.messages(), &item.tools()).await;
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            let mut extra = None;
            let (calls, err) = match d {
                Ok(d) => {
                    if trace {
                        extra = Some(json!({"trace": d.trace, "usage": d.usage}));
                    }
                    (d.call.into_iter().collect::<Vec<_>>(), None)
                }
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            let calls_json: Vec<_> = calls
                .iter()
                .map(|c| json!({"name": c.name, "arguments": c.arguments}))
                .collect();
            let mut line = json!({"id": item.id, "calls": calls_json, "latency_ms": ms.round() as u64});
            if let Some(x) = extra {
                line["trace"] = x["trace"].clone();
                line["usage"] = x["usage"].clone();
            }
            if let Some(e) = &err {
                line["error"] = json!(e);
            }
            // With answers, how the item was judged: "correct" or the kind of error.
            if let Some(v) = tally.add(item, &calls, ms, known.as_ref())? {
                line["verdict"] = serde_json::to_value(&v)?;
            }
            writeln!(out, "{line}")?;
            out.flush()?;
            if tally.scorable {
                bar.set_message(format!("{:.0}% correct", 100.0 * tally.accuracy()));
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        scores.push(tally.finish());
    }
    Ok(scores)
}

/// Print a score table.
pub fn print_table(model: &str, strategy: Strategy, scores: &[FileScore]) {
    println!("model: {model}   strategy: {}", strategy_name(strategy));
    println!(
        "{:<32} {:>6} {:>9} {:>10} {:>9}",
        "file", "items", "accuracy", "median ms", "p90 ms"
    );
    for s in scores {
        let acc = s
            .accuracy
            .map(|a| format!("{:.1}%", a * 100.0))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<32} {:>6} {:>9} {:>10.0} {:>9.0}",
            s.file, s.items, acc, s.median_ms, s.p90_ms
        );
        if !s.errors.is_empty() {
            let e: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
            println!("{:<32} errors: {}", "", e.join(", "));
        }
    }
}

pub fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::Constrained => "constrained",
        Strategy::Naive => "naive",
    }
}

pub async fn eval(c: EvalCommand) -> anyhow::Result<ExitCode> {
    let EvalCommand::Bfcl(a) = c;
    if !a.answers.is_empty() && a.answers.len() != a.questions.len() {
        anyhow::bail!(
            "--answers was given {} times for {} question files: give one per question file, in the same order",
            a.answers.len(),
            a.questions.len()
        );
    }
    for q in &a.questions {
        if !q.is_file() {
            anyhow::bail!("{}: no such file", q.display());
        }
    }
    if let Some(p) = &a.score {
        let scores = score_file(&a.questions, &a.answers, p)?;
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"predictions": p, "files": scores}))?
            );
        } else {
            print_table(&p.display().to_string(), a.strategy, &scores);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(out_path) = &a.out else {
        anyhow::bail!("--out PRED.jsonl is required to run the model (or give --score PRED.jsonl)");
    };
    let model = a.model.open()?;
    let label = model.label();
    let mut chooser = ToolChooser::new(Arc::new(model));
    chooser.options.strategy = a.strategy;
    chooser.options.prompt = a.tool_prompt;
    chooser.options.args.mode = a.arg_values;
    chooser.options.allow_none = !a.always_call;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(out_path).with_context(|| format!("creating {}", out_path.display()))?,
    );
    let scores = run_files(
        &chooser,
        &a.questions,
        &a.answers,
        a.skip,
        a.limit,
        &mut out,
        true,
        a.trace,
    )
    .await?;
    out.flush()?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"model": label, "strategy": strategy_name(a.strategy), "files": scores})
            )?
        );
    } else {
        print_table(&label, a.strategy, &scores);
        eprintln!("predictions: {}", out_path.display());
    }
    Ok(ExitCode::SUCCESS)
}
