//! `stepwise bench memory`: embedding throughput, insert throughput with and without
//! embeddings, recall latency at 10k and 100k memories, database size, and recall@5 of FTS,
//! vectors and hybrid on the labelled set in `tests/fixtures/recall`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use stepwise_tools::sys::peak_rss_mb;

use crate::embed::{Embedder, normalized};
use crate::error::{Error, Result};
use crate::memory::{EmbedMode, Memory, OpenOptions};
use crate::quant::quantize;
use crate::store::{self, ChunkIn};
use crate::types::{Mode, NewNote, Note, Provenance, Query};

/// One labelled note of the recall set.
#[derive(Debug, Clone, Deserialize)]
pub struct FixtureNote {
    pub id: String,
    pub text: String,
}

/// One labelled query of the recall set.
#[derive(Debug, Clone, Deserialize)]
pub struct FixtureQuery {
    pub query: String,
    pub relevant: Vec<String>,
    /// `paraphrase`, `keyword` or `mixed`.
    pub style: String,
}

/// The labelled recall set shipped with the source (`tests/fixtures/recall`).
pub const FIXTURE_NOTES: &str = include_str!("../../../tests/fixtures/recall/notes.jsonl");
/// Queries of the shipped recall set.
pub const FIXTURE_QUERIES: &str = include_str!("../../../tests/fixtures/recall/queries.jsonl");

/// Parse a recall set: notes and queries as JSON Lines.
pub fn parse_fixture(notes: &str, queries: &str) -> Result<(Vec<FixtureNote>, Vec<FixtureQuery>)> {
    fn lines<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> Result<Vec<T>> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::Invalid(format!("{name}:{}: {e}", i + 1))))
            .collect()
    }
    Ok((lines("notes.jsonl", notes)?, lines("queries.jsonl", queries)?))
}

/// The recall set in `dir` (`notes.jsonl`, `queries.jsonl`), or the shipped one.
pub fn load_fixture(dir: Option<&Path>) -> Result<(Vec<FixtureNote>, Vec<FixtureQuery>)> {
    match dir {
        None => parse_fixture(FIXTURE_NOTES, FIXTURE_QUERIES),
        Some(d) => {
            let read = |n: &str| std::fs::read_to_string(d.join(n)).map_err(|e| Error::io(d.join(n), e));
            parse_fixture(&read("notes.jsonl")?, &read("queries.jsonl")?)
        }
    }
}

/// recall@k of one mode, overall and per query style.
#[derive(Debug, Clone, Serialize)]
pub struct ModeRecall {
    pub mode: Mode,
    pub recall_at_5: f64,
    /// Mean reciprocal rank of the first relevant note (0 when not in the top 5).
    pub mrr_at_5: f64,
    pub by_style: Vec<(String, f64)>,
}

/// Result of [`recall_eval`].
#[derive(Debug, Clone, Serialize)]
pub struct RecallReport {
    pub notes: usize,
    pub queries: usize,
    pub modes: Vec<ModeRecall>,
}

/// Store the fixture notes in `mem` and measure recall@5 of each mode.
pub async fn recall_eval(mem: &Memory, notes: &[FixtureNote], queries: &[FixtureQuery]) -> Result<RecallReport> {
    // Concurrent writes share embedding batches and commits.
    let mut by_memory_id: HashMap<String, String> = HashMap::new();
    for group in notes.chunks(64) {
        let mut set = tokio::task::JoinSet::new();
        for n in group {
            let (m, n) = (mem.clone(), n.clone());
            set.spawn(async move {
                let r = m
                    .remember_note(NewNote {
                        namespace: "recall-set".into(),
                        text: n.text.clone(),
                        ..Default::default()
                    })
                    .await;
                r.map(|r| (r.id, n.id))
            });
        }
        while let Some(r) = set.join_next().await {
            let (mid, fid) = r.map_err(|e| Error::Write(e.to_string()))??;
            by_memory_id.insert(mid, fid);
        }
    }
    let mut modes = Vec::new();
    for mode in [Mode::Fts, Mode::Vector, Mode::Hybrid] {
        let mut hits = 0usize;
        let mut rr = 0f64;
        let mut styles: HashMap<String, (usize, usize)> = HashMap::new();
        for q in queries {
            let mut query = Query::new(q.query.clone(), 5);
            query.namespaces = vec!["recall-set".into()];
            query.mode = mode;
            let found = mem.recall(query).await?;
            let rank = found
                .iter()
                .position(|h| by_memory_id.get(&h.id).is_some_and(|f| q.relevant.contains(f)));
            let e = styles.entry(q.style.clone()).or_default();
            e.1 += 1;
            if let Some(r) = rank {
                hits += 1;
                rr += 1.0 / (r + 1) as f64;
                e.0 += 1;
            }
        }
        let mut by_style: Vec<(String, f64)> = styles
            .into_iter()
            .map(|(s, (h, n))| (s, h as f64 / n.max(1) as f64))
            .collect();
        by_style.sort_by(|a, b| a.0.cmp(&b.0));
        modes.push(ModeRecall {
            mode,
            recall_at_5: hits as f64 / queries.len().max(1) as f64,
            mrr_at_5: rr / queries.len().max(1) as f64,
            by_style,
        });
    }
    Ok(RecallReport {
        notes: notes.len(),
        queries: queries.len(),
        modes,
    })
}

/// CPU seconds used by this process so far (all threads), from `/proc/self/stat`.
pub fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let f: Vec<&str> = s.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// Embedding throughput.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedBench {
    pub sentences: usize,
    pub mean_words: f64,
    pub threads: usize,
    pub per_second: f64,
    /// Sentences per CPU-second: what one core gives, whatever else the machine runs.
    pub per_cpu_second: f64,
    /// One query sentence at a time, milliseconds.
    pub single_p50_ms: f64,
    pub single_p95_ms: f64,
}

/// Insert throughput.
#[derive(Debug, Clone, Serialize)]
pub struct InsertBench {
    pub case: String,
    pub notes: usize,
    pub per_second: f64,
}

/// Recall latency at one corpus size.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyBench {
    pub memories: usize,
    /// `fts`, `vector`, `hybrid` (query vector given), or `hybrid+embed` (query embedded too).
    pub case: String,
    pub queries: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// Everything `bench memory` measures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub embed: EmbedBench,
    pub inserts: Vec<InsertBench>,
    pub latency: Vec<LatencyBench>,
    /// (memories, database bytes after a checkpoint, bytes per memory).
    pub db_size: Vec<(usize, u64, f64)>,
    /// (memories, vector index bytes in memory).
    pub index_bytes: Vec<(usize, usize)>,
    /// (memories, keyword index bytes in memory).
    pub keyword_index_bytes: Vec<(usize, usize)>,
    /// (memories, milliseconds to load both indexes from the database, as at the first recall).
    pub index_build_ms: Vec<(usize, f64)>,
    pub recall: RecallReport,
    pub peak_rss_mb: f64,
    /// 1-minute load average of the machine at the start and the end (a shared machine).
    pub load_avg: (f64, f64),
    /// Logical CPUs.
    pub cpus: usize,
}

/// The 1-minute load average, from `/proc/loadavg` (0 where unavailable).
pub fn load_avg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Scratch folder for databases.
    pub dir: PathBuf,
    pub model_dir: PathBuf,
    /// The labelled recall set [default: the shipped one].
    pub fixture: Option<PathBuf>,
    /// Corpus sizes for latency and size (default 10k and 100k).
    pub sizes: Vec<usize>,
    /// Queries timed per size and mode.
    pub queries: usize,
}

async fn open(path: &Path, model_dir: &Path, embed: EmbedMode) -> Result<Memory> {
    let _ = std::fs::remove_file(path);
    Memory::open(
        path,
        OpenOptions {
            model_dir: Some(model_dir.to_path_buf()),
            embed,
            ..Default::default()
        },
    )
    .await
}

/// A small deterministic generator (xorshift), so corpora are the same on every run.
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// Zipf-like over 0..n: small numbers are much more likely.
    #[cfg(test)]
    pub(crate) fn zipf(&mut self, n: usize) -> usize {
        let u = self.below(1_000_000) as f64 / 1_000_000.0;
        ((u * u * u) * n as f64) as usize
    }
    fn gauss(&mut self) -> f32 {
        let u: f32 = (0..6).map(|_| (self.next() % 10_000) as f32 / 10_000.0).sum();
        u - 3.0
    }
}

/// Bulk-load `n` synthetic memories: each is a fixture note's text with extra words drawn
/// Zipf-like from the fixture vocabulary plus one rare token, and an embedding that is the
/// real embedding of that fixture note, perturbed and renormalized (cosine about 0.9 to it).
async fn load_corpus(mem: &Memory, base: &[(String, Vec<f32>)], n: usize, say: &dyn Fn(&str)) -> Result<()> {
    let vocab: Vec<String> = {
        let mut seen = std::collections::BTreeSet::new();
        for (t, _) in base {
            for w in t.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 2) {
                seen.insert(w.to_lowercase());
            }
        }
        seen.into_iter().collect()
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start = crate::now_us() - 400 * 86_400 * 1_000_000;
    let mut done = 0;
    while done < n {
        let m = (n - done).min(5000);
        let mut rows = Vec::with_capacity(m);
        for i in done..done + m {
            let (text, emb) = &base[rng.below(base.len())];
            let mut words = vec![text.clone()];
            for _ in 0..6 {
                // Zipf-like: squaring a uniform draw favours the first words.
                let r = rng.below(1000) as f64 / 1000.0;
                words.push(vocab[((r * r) * vocab.len() as f64) as usize % vocab.len()].clone());
            }
            words.push(format!("zq{}", rng.next() % 1_000_000));
            let v: Vec<f32> = emb.iter().map(|x| x + 0.022 * rng.gauss()).collect();
            let note = Note {
                id: ulid::Ulid::new().to_string(),
                namespace: if i % 10 == 0 { "work".into() } else { "default".into() },
                subject: None,
                title: None,
                text: words.join(" "),
                tags: Vec::new(),
                source: None,
                provenance: Provenance::default(),
                created_at: start + i as i64 * 300_000_000,
                expires_at: None,
            };
            let chunk = ChunkIn {
                text: note.text.clone(),
                embedding: Some(quantize(&normalized(v)).to_blob()),
            };
            rows.push((note, chunk));
        }
        mem.write(move |c| {
            for (note, chunk) in &rows {
                store::insert_note(c, note, std::slice::from_ref(chunk))?;
            }
            Ok(())
        })
        .await?;
        done += m;
        say(&format!("  {done}/{n} memories"));
    }
    Ok(())
}

fn db_bytes(path: &Path) -> Result<u64> {
    let c = rusqlite::Connection::open(path)?;
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    Ok(size(path.to_path_buf()) + size(PathBuf::from(format!("{}-wal", path.display()))))
}

/// Run every measurement. `say` reports progress.
pub async fn run(o: &BenchOptions, say: &(dyn Fn(&str) + Sync)) -> Result<BenchReport> {
    let load_start = load_avg();
    std::fs::create_dir_all(&o.dir).map_err(|e| Error::io(&o.dir, e))?;
    let (notes, queries) = load_fixture(o.fixture.as_deref())?;
    let embedder = Embedder::start(o.model_dir.clone())?;

    say("embedding throughput…");
    let texts: Vec<String> = notes.iter().map(|n| n.text.clone()).collect();
    embedder.embed(texts[..32].to_vec()).await?; // load and warm up
    let (t, c) = (Instant::now(), cpu_seconds());
    let base_vecs = embedder.embed(texts.clone()).await?;
    let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
    let mut single = Vec::new();
    for q in queries.iter().take(50) {
        let t = Instant::now();
        embedder.embed(vec![q.query.clone()]).await?;
        single.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let embed = EmbedBench {
        sentences: texts.len(),
        mean_words: texts.iter().map(|t| t.split_whitespace().count()).sum::<usize>() as f64 / texts.len() as f64,
        threads: crate::embed::engine::default_threads(),
        per_second: texts.len() as f64 / wall,
        per_cpu_second: texts.len() as f64 / cpu.max(1e-9),
        single_p50_ms: pct(single.clone(), 0.5),
        single_p95_ms: pct(single, 0.95),
    };
    let qvecs: Vec<_> = embedder
        .embed(queries.iter().map(|q| q.query.clone()).collect())
        .await?
        .iter()
        .map(|v| quantize(v))
        .collect();

    say("insert throughput…");
    let mut inserts = Vec::new();
    for (case, mode, n) in [
        (
            "notes without embeddings (64 concurrent writers)",
            EmbedMode::Off,
            4000usize,
        ),
        (
            "notes with embeddings (64 concurrent writers)",
            EmbedMode::Required,
            512,
        ),
    ] {
        let mem = open(&o.dir.join("insert.db"), &o.model_dir, mode).await?;
        if let Some(e) = mem.embedder() {
            e.embed(vec!["warm up".into()]).await?;
        }
        let t = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            let (m, text) = (mem.clone(), texts[i % texts.len()].clone());
            set.spawn(async move {
                m.remember_note(NewNote {
                    text,
                    ..Default::default()
                })
                .await
            });
            while set.len() >= 64 {
                if let Some(r) = set.join_next().await {
                    r.map_err(|e| Error::Write(e.to_string()))??;
                }
            }
        }
        while let Some(r) = set.join_next().await {
            r.map_err(|e| Error::Write(e.to_string()))??;
        }
        inserts.push(InsertBench {
            case: case.into(),
            notes: n,
            per_second: n as f64 / t.elapsed().as_secs_f64(),
        });
    }

    let base: Vec<(String, Vec<f32>)> = texts.iter().cloned().zip(base_vecs).collect();
    let mut latency = Vec::new();
    let mut db_size = Vec::new();
    let mut index_bytes = Vec::new();
    let mut keyword_index_bytes = Vec::new();
    let mut index_build_ms = Vec::new();
    for &n in &o.sizes {
        say(&format!("recall latency at {n} memories: loading…"));
        let path = o.dir.join(format!("recall-{n}.db"));
        let mem = open(&path, &o.model_dir, EmbedMode::Required).await?;
        let t = Instant::now();
        load_corpus(&mem, &base, n, say).await?;
        inserts.push(InsertBench {
            case: format!("bulk load, embeddings precomputed ({n})"),
            notes: n,
            per_second: n as f64 / t.elapsed().as_secs_f64(),
        });
        let t = Instant::now();
        mem.warm().await?;
        index_build_ms.push((n, t.elapsed().as_secs_f64() * 1e3));
        let bytes = {
            let p = path.clone();
            tokio::task::spawn_blocking(move || db_bytes(&p))
                .await
                .map_err(|e| Error::Write(e.to_string()))??
        };
        db_size.push((n, bytes, bytes as f64 / n as f64));
        let stats = mem.stats().await?;
        index_bytes.push((n, stats.index_bytes));
        keyword_index_bytes.push((n, stats.keyword_index_bytes));
        for mode in [Mode::Fts, Mode::Vector, Mode::Hybrid] {
            let mut times = Vec::with_capacity(o.queries);
            for i in 0..o.queries {
                let q = &queries[i % queries.len()];
                let mut query = Query::new(q.query.clone(), 5);
                query.mode = mode;
                let qv = (mode != Mode::Fts).then(|| qvecs[i % qvecs.len()].clone());
                let t = Instant::now();
                mem.recall_with_vector(query, qv).await?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            latency.push(LatencyBench {
                memories: n,
                case: format!("{mode:?}").to_lowercase(),
                queries: o.queries,
                p50_ms: pct(times.clone(), 0.5),
                p95_ms: pct(times, 0.95),
            });
        }
        // End to end: the query is embedded too.
        let mut times = Vec::with_capacity(o.queries);
        for i in 0..o.queries.min(100) {
            let q = &queries[i % queries.len()];
            let t = Instant::now();
            mem.recall(Query::new(q.query.clone(), 5)).await?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        latency.push(LatencyBench {
            memories: n,
            case: "hybrid+embed".into(),
            queries: times.len(),
            p50_ms: pct(times.clone(), 0.5),
            p95_ms: pct(times, 0.95),
        });
    }

    say("recall@5 on the labelled set…");
    let mem = open(&o.dir.join("recall-set.db"), &o.model_dir, EmbedMode::Required).await?;
    let recall = recall_eval(&mem, &notes, &queries).await?;
    Ok(BenchReport {
        embed,
        inserts,
        latency,
        db_size,
        index_bytes,
        keyword_index_bytes,
        index_build_ms,
        recall,
        peak_rss_mb: peak_rss_mb(),
        load_avg: (load_start, load_avg()),
        cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    })
}

/// The report as a table.
pub fn table(r: &BenchReport) -> String {
    let mut s = String::new();
    let e = &r.embed;
    s += "stepwise bench memory\n\n";
    s += &format!(
        "embeddings (all-MiniLM-L6-v2, {} threads): {} sentences of {:.1} words\n  {:.0} sentences/s wall, {:.0} sentences per CPU-second; one query: p50 {:.1} ms, p95 {:.1} ms\n\n",
        e.threads, e.sentences, e.mean_words, e.per_second, e.per_cpu_second, e.single_p50_ms, e.single_p95_ms
    );
    s += &format!("{:<58} {:>8} {:>12}\n", "inserts", "notes", "notes/s");
    for i in &r.inserts {
        s += &format!("{:<58} {:>8} {:>12.0}\n", i.case, i.notes, i.per_second);
    }
    s += &format!(
        "\n{:<34} {:>9} {:>9} {:>9}\n",
        "recall latency", "memories", "p50 ms", "p95 ms"
    );
    for l in &r.latency {
        let name = match l.case.as_str() {
            "hybrid+embed" => "hybrid, query embedded too".to_string(),
            "fts" => "fts".to_string(),
            c => format!("{c} (query vector given)"),
        };
        s += &format!("{:<34} {:>9} {:>9.2} {:>9.2}\n", name, l.memories, l.p50_ms, l.p95_ms);
    }
    s += "\n";
    for (n, b, per) in &r.db_size {
        s += &format!(
            "database: {n} memories = {:.1} MiB ({per:.0} bytes per memory; {:.1} MiB per 100k)\n",
            *b as f64 / 1048576.0,
            per * 100_000.0 / 1048576.0
        );
    }
    for (n, b) in &r.index_bytes {
        s += &format!(
            "vector index in memory: {n} memories = {:.1} MiB\n",
            *b as f64 / 1048576.0
        );
    }
    for (n, b) in &r.keyword_index_bytes {
        s += &format!(
            "keyword index in memory: {n} memories = {:.1} MiB\n",
            *b as f64 / 1048576.0
        );
    }
    for (n, ms) in &r.index_build_ms {
        s += &format!("index load (vectors and keywords, from the database): {n} memories in {ms:.0} ms\n");
    }
    s += "\n";
    s += &recall_table(&r.recall);
    s += &format!(
        "\npeak RSS {:.0} MiB; machine load (1-min average) {:.1} at start, {:.1} at end, on {} CPUs\n",
        r.peak_rss_mb, r.load_avg.0, r.load_avg.1, r.cpus
    );
    s
}

/// recall@5 and MRR@5 of each mode, overall and per query style.
pub fn recall_table(r: &RecallReport) -> String {
    let mut s = format!("recall@5 on {} labelled queries over {} notes:\n", r.queries, r.notes);
    for m in &r.modes {
        let styles: Vec<String> = m.by_style.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
        s += &format!(
            "  {:<7} recall@5 {:.3}  MRR@5 {:.3}  ({})\n",
            format!("{:?}", m.mode).to_lowercase(),
            m.recall_at_5,
            m.mrr_at_5,
            styles.join(", ")
        );
    }
    s
}
