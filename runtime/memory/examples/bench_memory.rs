//! `stepwise bench memory` without building the whole runtime:
//! `cargo run --release -p stepwise-memory --example bench_memory -- [--quick] [--queries N] [--dir KEEP]`,
//! or `-- --embed-only [--rounds N]` for embedding throughput alone, or `-- --dump FILE` for
//! reference vectors of a few texts.

use std::time::Instant;

use stepwise_memory::bench::{self, BenchOptions};
use stepwise_memory::embed::{engine::MiniLm, model};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |f: &str| args.iter().any(|a| a == f);
    let value = |f: &str| args.iter().position(|a| a == f).and_then(|i| args.get(i + 1)).cloned();
    let model_dir = model::default_dir();
    model::check(&model_dir)?;
    if let Some(out) = value("--dump") {
        // Reference vectors of the current engine, to check a new engine against.
        let texts = reference_texts();
        let m = MiniLm::load(&model_dir)?;
        let refs = m.embed(&texts.iter().map(String::as_str).collect::<Vec<_>>())?;
        let rows: Vec<serde_json::Value> = texts
            .iter()
            .zip(refs)
            .map(|(t, v)| serde_json::json!({"text": t, "embedding": v}))
            .collect();
        std::fs::write(&out, rows.iter().map(|r| r.to_string() + "\n").collect::<String>())?;
        return Ok(());
    }
    if has("--embed-only") {
        let (notes, _) = bench::load_fixture(None)?;
        let texts: Vec<&str> = notes.iter().map(|n| n.text.as_str()).collect();
        let m = MiniLm::load(&model_dir)?;
        m.embed(&texts[..32])?;
        for _ in 0..value("--rounds").and_then(|v| v.parse().ok()).unwrap_or(3) {
            let (t, c) = (Instant::now(), bench::cpu_seconds());
            m.embed(&texts)?;
            let (wall, cpu) = (t.elapsed().as_secs_f64(), bench::cpu_seconds() - c);
            println!(
                "{} sentences: {:.0}/s wall, {:.0} per CPU-second, load {:.2}",
                texts.len(),
                texts.len() as f64 / wall,
                texts.len() as f64 / cpu,
                bench::load_avg()
            );
        }
        return Ok(());
    }
    let tmp = tempfile::tempdir()?;
    let opts = BenchOptions {
        dir: value("--dir")
            .map(Into::into)
            .unwrap_or_else(|| tmp.path().to_path_buf()),
        model_dir,
        fixture: None,
        sizes: if has("--quick") {
            vec![2_000, 10_000]
        } else {
            vec![10_000, 100_000]
        },
        queries: value("--queries").and_then(|v| v.parse().ok()).unwrap_or(200),
    };
    let report = bench::run(&opts, &|s: &str| eprintln!("{s}")).await?;
    print!("{}", bench::table(&report));
    Ok(())
}

fn reference_texts() -> Vec<String> {
    let mut t: Vec<String> = [
        "The cat sat on the mat.",
        "Where is my home airport?",
        "Zürich is the largest city in Switzerland; its airport code is ZRH.",
        "I",
        "Quarterly revenue grew 12% year over year, driven by the new subscription tier and lower churn.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    t.push("a long note that is truncated at the model's limit of word pieces ".repeat(40));
    t
}
