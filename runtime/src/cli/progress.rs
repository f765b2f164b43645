//! Live progress of a run on the terminal (stderr).

use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::engine::EngineEvent;

/// A duration in microseconds, in the unit that reads best.
pub(super) fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

/// Print events as they arrive until the channel closes. Returns the number of steps run
/// and replayed.
pub async fn print(mut rx: mpsc::UnboundedReceiver<EngineEvent>, show: bool) -> (usize, usize) {
    let mut ran = 0;
    let mut replayed = 0;
    let started = Instant::now();
    let mut running: HashMap<String, Instant> = HashMap::new();
    let mut err = std::io::stderr();
    while let Some(ev) = rx.recv().await {
        match &ev {
            EngineEvent::StepFinished { replayed: true, .. } => replayed += 1,
            EngineEvent::StepFinished { .. } => ran += 1,
            _ => {}
        }
        if !show {
            continue;
        }
        let t = format!("{:>7.2}s", started.elapsed().as_secs_f64());
        let _ = match ev {
            EngineEvent::RunStarted { run, plan, resumed } => {
                writeln!(
                    err,
                    "{t} {} run {run} of `{plan}`",
                    if resumed { "resuming" } else { "starting" }
                )
            }
            EngineEvent::StepStarted { key, attempt, .. } => {
                running.insert(key.clone(), Instant::now());
                if attempt > 1 {
                    writeln!(err, "{t} ▶ {key} (attempt {attempt})")
                } else {
                    writeln!(err, "{t} ▶ {key}")
                }
            }
            EngineEvent::StepRetrying {
                key, error, delay_ms, ..
            } => writeln!(err, "{t} ↻ {key}: {error}; retrying in {delay_ms}ms"),
            EngineEvent::StepFinished {
                key,
                status,
                duration_us,
                replayed,
                error,
                ..
            } => {
                running.remove(&key);
                let mark = match status.as_str() {
                    "succeeded" => "✓",
                    "skipped" => "–",
                    "continued" => "!",
                    _ => "✗",
                };
                let note = if replayed {
                    " (done before; not run again)".to_string()
                } else {
                    format!(" {}", fmt_us(duration_us))
                };
                match error {
                    Some(e) => writeln!(err, "{t} {mark} {key} {status}{note}: {e}"),
                    None => writeln!(err, "{t} {mark} {key} {status}{note}"),
                }
            }
            EngineEvent::RunFinished { status, error, .. } => match error {
                Some(e) => writeln!(err, "{t} run {status}: {e}"),
                None => writeln!(err, "{t} run {status}"),
            },
        };
    }
    (ran, replayed)
}
