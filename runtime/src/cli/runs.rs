//! `stepwise runs list | show | resume`

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::DbArgs;
use super::run::{drive, finish};

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Recent runs, newest first.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only runs with this status (running, succeeded, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// One run: steps, attempts, timings, outputs, errors.
    Show {
        /// Run id (or a unique prefix).
        id: String,
        /// Also print the event timeline.
        #[arg(long)]
        events: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Continue an interrupted or failed run; finished steps are not run again.
    Resume {
        /// Run id (or a unique prefix).
        id: String,
        /// Resume even if the journal says another live process is driving the run.
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
        /// Show step progress on stderr even when it is not a terminal.
        #[arg(long)]
        progress: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

fn ts(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn dur(a: Option<i64>, b: Option<i64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b >= a => super::progress::fmt_us((b - a) as u64),
        _ => "-".into(),
    }
}

fn live_status(status: &str, pid: Option<i64>) -> String {
    if status == "running" && pid.is_none_or(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
        "interrupted".into()
    } else {
        status.into()
    }
}

pub async fn runs(c: RunsCommand) -> anyhow::Result<ExitCode> {
    match c {
        RunsCommand::List {
            limit,
            status,
            json,
            db,
        } => {
            let journal = crate::Journal::open(&db.db_path(), db.durability).await?;
            let list = journal.list_runs(limit, status).await?;
            if json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|r| {
                        let mut v = serde_json::to_value(r).unwrap_or_default();
                        v["state"] = json!(live_status(&r.status, r.pid));
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string(&rows)?);
            } else if list.is_empty() {
                println!("no runs in {}", db.db_path().display());
            } else {
                println!(
                    "{:<26}  {:<20}  {:<11}  {:>5}  {:<19}  {:>8}",
                    "RUN", "PLAN", "STATUS", "STEPS", "STARTED", "TOOK"
                );
                for r in list {
                    println!(
                        "{:<26}  {:<20}  {:<11}  {:>5}  {:<19}  {:>8}",
                        r.id,
                        r.plan_name,
                        live_status(&r.status, r.pid),
                        r.steps_done,
                        ts(r.created_at),
                        dur(Some(r.created_at), r.finished_at)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Show { id, events, json, db } => {
            let journal = crate::Journal::open(&db.db_path(), db.durability).await?;
            let id = journal.resolve_id(&id).await?;
            let (run, steps, attempts, evs) = journal.run_details(&id).await?;
            if json {
                let mut v = json!({"run": run, "steps": steps, "attempts": attempts});
                v["run"]["state"] = json!(live_status(&run.status, run.pid));
                if events {
                    v["events"] = json!(evs);
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("run      {}", run.id);
            println!(
                "plan     {} ({})",
                run.plan_name,
                run.plan_path.as_deref().unwrap_or("-")
            );
            println!("status   {}", live_status(&run.status, run.pid));
            println!(
                "started  {}   took {}",
                ts(run.created_at),
                dur(Some(run.created_at), run.finished_at)
            );
            println!("inputs   {}", run.inputs);
            if let Some(e) = &run.error {
                println!("error    {e}");
            }
            println!("\nsteps:");
            for s in &steps {
                println!(
                    "  {:<30} {:<9} {:<10} attempts {:<2} {:>9}",
                    s.key,
                    s.kind,
                    s.status,
                    s.attempts,
                    dur(s.started_at, s.finished_at)
                );
                if let Some(e) = &s.error {
                    println!("      error: {e}");
                }
                if let Some(o) = &s.output {
                    let t = o.to_string();
                    let t = if t.len() > 200 {
                        format!("{}…", &t[..t.floor_char_boundary(200)])
                    } else {
                        t
                    };
                    println!("      output: {t}");
                }
            }
            let retried: Vec<_> = attempts.iter().filter(|a| a.status == "failed").collect();
            if !retried.is_empty() {
                println!("\nfailed attempts:");
                for a in retried {
                    println!("  {} #{}: {}", a.key, a.attempt, a.error.as_deref().unwrap_or(""));
                }
            }
            if let Some(o) = &run.outputs {
                println!("\noutputs:\n{}", serde_json::to_string_pretty(o)?);
            }
            if events {
                println!("\nevents:");
                for e in evs {
                    println!(
                        "  {:>4} {} {:<22} {}",
                        e.seq,
                        ts(e.at),
                        e.kind,
                        e.key.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Resume {
            id,
            force,
            json,
            progress,
            db,
        } => {
            let engine = db.engine().await?;
            let show = progress || std::io::stderr().is_terminal();
            let outcome = drive(&engine, show, |eng, cancel| async move {
                eng.resume(&id, force, cancel).await
            })
            .await;
            engine.plugins().shutdown().await;
            finish(outcome, json)
        }
    }
}
