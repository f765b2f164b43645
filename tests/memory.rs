//! `stepwise memory …` driven as a user would, with real SQLite files and the real
//! all-MiniLM-L6-v2 (installed by `.ci/setup`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use serde_json::Value;
use stepwise_tests::Sandbox;

fn add(sb: &Sandbox, args: &[&str]) -> String {
    let mut a = vec!["memory", "add", "--json"];
    a.extend_from_slice(args);
    let out = sb.run(&a).expect_code(0).json();
    assert_eq!(
        out["embedded"],
        Value::Bool(true),
        "the real model must be installed: {out}"
    );
    out["id"].as_str().unwrap().to_string()
}

fn search(sb: &Sandbox, query: &str, extra: &[&str]) -> Value {
    let mut a = vec!["memory", "search", "--json", query];
    a.extend_from_slice(extra);
    sb.run(&a).expect_code(0).json()
}

fn hit_ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect()
}

fn count(sb: &Sandbox, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(sb.db()).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

const NOTES: &[&str] = &[
    "My passport expires on 14 March 2027, renew it before booking long trips.",
    "The spare house key is hidden under the blue flowerpot by the back door.",
    "Flight KL1234 to Oslo departs at 07:40 from gate D5.",
    "Try a recipe for lentil soup on Saturday.",
    "Check the train to Vienna for the spring break.",
];

fn seeded() -> (Sandbox, Vec<String>) {
    let sb = Sandbox::new();
    let ids = NOTES.iter().map(|t| add(&sb, &[t])).collect();
    (sb, ids)
}

#[test]
fn semantic_search_finds_a_note_by_a_paraphrase_and_forget_removes_it_everywhere() {
    let (sb, ids) = seeded();
    let query = "where is a duplicate for getting indoors";
    assert_eq!(
        search(&sb, query, &["--mode", "fts"]),
        Value::Array(vec![]),
        "no shared word"
    );
    let hits = search(&sb, query, &[]);
    assert_eq!(hit_ids(&hits)[0], ids[1], "{hits:#}");
    assert!(hits[0]["vector_rank"] == 1);
    // Human-readable output names the note too.
    let text = sb.run(&["memory", "search", query, "-k", "1"]).expect_code(0).stdout();
    assert!(text.contains(&ids[1]) && text.contains("flowerpot"), "{text}");

    let out = sb.run(&["memory", "forget", "--json", &ids[1]]).expect_code(0).json();
    assert_eq!(out["notes"], 1);
    assert!(!hit_ids(&search(&sb, query, &[])).contains(&ids[1]));
    assert!(!hit_ids(&search(&sb, "flowerpot key", &["--mode", "fts"])).contains(&ids[1]));
    assert_eq!(
        count(&sb, "SELECT COUNT(*) FROM mem_fts WHERE mem_fts MATCH 'flowerpot'"),
        0
    );
    assert_eq!(
        count(
            &sb,
            "SELECT COUNT(*) FROM mem_chunks WHERE owner IN (SELECT id FROM mem_notes)"
        ),
        4
    );
    let err = sb.run(&["memory", "forget", &ids[1]]).expect_code(1).stderr();
    assert!(err.contains("no memory or thread with id"), "{err}");
}

#[test]
fn export_then_import_into_an_empty_database_gives_identical_search_results() {
    let (sb, _) = seeded();
    add(&sb, &["--key", "home_airport", "--subject", "user", "AMS"]);
    add(&sb, &["--key", "home_airport", "--subject", "user", "LHR"]);
    add(
        &sb,
        &[
            "--ns",
            "work",
            "--title",
            "standup",
            "Team stand-up moved to 9:15 in room Orion.",
        ],
    );
    let dump = sb.path("dump.jsonl");
    sb.run(&["memory", "export", "--out", dump.to_str().unwrap()])
        .expect_code(0);

    let other = Sandbox::new();
    let out = other
        .run(&["memory", "import", "--json", dump.to_str().unwrap()])
        .expect_code(0)
        .json();
    assert_eq!(out["notes"], 6);
    assert_eq!(out["facts"], 2, "both versions of the fact: {out}");
    assert_eq!(out["embeddings_computed"], 0, "embeddings travel in the file: {out}");
    for q in [
        "when does my travel document run out",
        "which airport do I fly from",
        "daily meeting",
        "Oslo gate",
    ] {
        for mode in ["hybrid", "fts", "vector"] {
            let a = search(&sb, q, &["--mode", mode, "-k", "8"]);
            let b = search(&other, q, &["--mode", mode, "-k", "8"]);
            assert_eq!(a, b, "{q} ({mode})");
            if mode != "fts" {
                assert!(!a.as_array().unwrap().is_empty(), "{q} ({mode})");
            }
        }
    }
    // Importing the same file again changes nothing.
    let again = other
        .run(&["memory", "import", "--json", dump.to_str().unwrap()])
        .expect_code(0)
        .json();
    assert_eq!((again["notes"].as_i64(), again["skipped"].as_i64()), (Some(0), Some(8)));
}

#[test]
fn a_malformed_or_truncated_import_names_the_line_and_changes_nothing() {
    let (sb, _) = seeded();
    let dump = sb.path("dump.jsonl");
    sb.run(&["memory", "export", "--out", dump.to_str().unwrap()])
        .expect_code(0);
    let text = std::fs::read_to_string(&dump).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let target = Sandbox::new();
    add(&target, &["already here"]);
    let before = count(&target, "SELECT COUNT(*) FROM mem_chunks");

    let check = |name: &str, body: String, line: usize, why: &str| {
        let f = sb.write(name, &body);
        let err = target
            .run(&["memory", "import", f.to_str().unwrap()])
            .expect_code(2)
            .stderr();
        let at = format!("{}:{line}:", f.display());
        assert!(err.contains(&at), "{name}: expected `{at}` in: {err}");
        assert!(err.contains(why), "{name}: expected `{why}` in: {err}");
        assert!(err.contains("nothing was imported"), "{err}");
        assert_eq!(
            count(&target, "SELECT COUNT(*) FROM mem_chunks"),
            before,
            "{name} changed the database"
        );
        assert_eq!(count(&target, "SELECT COUNT(*) FROM mem_notes"), 1);
    };
    // A record with a wrong field type, on line 4.
    let mut bad = lines.clone();
    let broken = bad[3].replacen("\"created_at\":", "\"created_at\":\"yesterday\",\"x\":", 1);
    bad[3] = &broken;
    check("bad-field.jsonl", bad.join("\n") + "\n", 4, "field `created_at`");
    // Cut in the middle of the last note.
    let cut = &text[..text.len() - lines.last().unwrap().len() - 40];
    check("cut.jsonl", cut.to_string(), lines.len() - 1, "truncated");
    // Cut between two lines: the end record is missing.
    let whole = lines[..lines.len() - 2].join("\n") + "\n";
    check("short.jsonl", whole, lines.len() - 1, "without the end record");
    // Not JSON at all.
    check(
        "garbage.jsonl",
        "{\"text\": \"fine\"}\nnot json\n".into(),
        2,
        "not valid JSON",
    );
    // A hand-written file without header is fine.
    let ok = sb.write("hand.jsonl", "{\"text\": \"Bring the blue umbrella to Bergen.\"}\n{\"type\": \"fact\", \"subject\": \"user\", \"key\": \"city\", \"value\": \"Bergen\"}\n");
    target.run(&["memory", "import", ok.to_str().unwrap()]).expect_code(0);
    assert_eq!(count(&target, "SELECT COUNT(*) FROM mem_notes"), 2);
}

#[test]
fn memory_written_by_one_process_survives_another_killed_mid_write() {
    let sb = Sandbox::new();
    let first: Vec<String> = (0..10)
        .map(|i| add(&sb, &[&format!("first process note {i} about harbours")]))
        .collect();

    // A second process writes one note per stdin line and prints each id once committed.
    let mut child = sb
        .cmd()
        .args(["memory", "add", "--lines"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0..100_000 {
            if writeln!(stdin, "second process note {i} about apple pie recipes").is_err() {
                break;
            }
        }
    });
    let mut acked = Vec::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    while acked.len() < 60 {
        let mut l = String::new();
        assert!(out.read_line(&mut l).unwrap() > 0, "writer stopped early");
        acked.push(l.trim().to_string());
    }
    // SIGKILL while it is still writing.
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = feeder.join();

    assert_eq!(
        count(
            &sb,
            "SELECT COUNT(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"
        ),
        0
    );
    let c = rusqlite::Connection::open(sb.db()).unwrap();
    c.execute("INSERT INTO mem_fts (mem_fts) VALUES ('integrity-check')", [])
        .unwrap();
    for id in first.iter().chain(&acked) {
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM mem_notes WHERE id = ?1", [id], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "{id} was acknowledged but is missing");
    }
    let hits = search(&sb, "ports where ships dock", &["--ns", "default", "-k", "20"]);
    let found = hit_ids(&hits);
    assert!(first.iter().filter(|i| found.contains(i)).count() >= 5, "{hits:#}");
    // Every committed note is searchable by keyword and no half-written row exists.
    let notes = count(&sb, "SELECT COUNT(*) FROM mem_notes");
    assert_eq!(count(&sb, "SELECT COUNT(*) FROM mem_chunks"), notes);
    assert_eq!(count(&sb, "SELECT COUNT(*) FROM mem_chunks WHERE embedding IS NULL"), 0);
    // And the database takes new writes.
    add(&sb, &["after the crash"]);
}

const REMEMBER_PLAN: &str = r#"version: 1
name: remember-many
inputs:
  tag: string
  n: integer
tools: {allow: ["memory.remember"]}
steps:
  - id: each
    for_each:
      items: "range(0, inputs.n)"
      as: i
      concurrency: 4
      steps:
        - id: note
          tool: memory.remember
          with: {text: "run ${inputs.tag} remembers item ${i}", namespace: "${inputs.tag}"}
"#;

#[test]
fn a_run_killed_mid_write_loses_nothing_another_run_wrote() {
    let sb = Sandbox::new();
    let plan = sb.write("remember.yaml", REMEMBER_PLAN);
    let plan = plan.to_str().unwrap();
    let notes_in = |conn: &rusqlite::Connection, ns: &str| -> i64 {
        conn.query_row("SELECT COUNT(*) FROM mem_notes WHERE namespace = ?1", [ns], |r| {
            r.get(0)
        })
        .unwrap_or(0)
    };
    // Create the database first so both runs start on a migrated file.
    sb.run(&["memory", "stats", "--json"]).expect_code(0);

    // Run A writes 200 notes; run B writes until it is killed.
    let a = sb
        .cmd()
        .args(["run", plan, "-i", "tag=alpha", "-i", "n=200", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut b = sb
        .cmd()
        .args(["run", plan, "-i", "tag=beta", "-i", "n=100000", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    let (a_mid, b_before_kill) = loop {
        assert!(t0.elapsed().as_secs() < 120, "the runs never wrote memory");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let Ok(c) = rusqlite::Connection::open_with_flags(sb.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
            continue;
        };
        let (na, nb) = (notes_in(&c, "alpha"), notes_in(&c, "beta"));
        if nb >= 40 {
            break (na, nb);
        }
    };
    // SIGKILL B while both are writing.
    b.kill().unwrap();
    b.wait().unwrap();
    let a_out = a.wait_with_output().unwrap();
    assert!(
        a_out.status.success(),
        "run A failed after B was killed: {}",
        String::from_utf8_lossy(&a_out.stderr)
    );
    assert!(a_mid < 200, "A had already finished when B was killed ({a_mid} notes)");

    assert_eq!(
        count(
            &sb,
            "SELECT COUNT(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"
        ),
        0
    );
    let c = rusqlite::Connection::open(sb.db()).unwrap();
    c.execute("INSERT INTO mem_fts (mem_fts) VALUES ('integrity-check')", [])
        .unwrap();
    // Every one of A's notes is there, once, each from its own step of A's run.
    let a_run: String = c
        .query_row("SELECT id FROM runs WHERE inputs LIKE '%alpha%'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        c.query_row("SELECT status FROM runs WHERE id = ?1", [&a_run], |r| r
            .get::<_, String>(0))
            .unwrap(),
        "succeeded"
    );
    let a_steps: i64 = c
        .query_row(
            "SELECT COUNT(DISTINCT step) FROM mem_notes WHERE namespace = 'alpha' AND run_id = ?1",
            [&a_run],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!((notes_in(&c, "alpha"), a_steps), (200, 200));
    for i in [0, 77, 199] {
        let body = format!("run alpha remembers item {i}");
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM mem_notes WHERE body = ?1", [&body], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "{body}");
    }
    // Whatever B's journal says it finished, its note is there too (nothing recorded is lost).
    let b_run: String = c
        .query_row("SELECT id FROM runs WHERE inputs LIKE '%beta%'", [], |r| r.get(0))
        .unwrap();
    let b_done: Vec<String> = c
        .prepare("SELECT key FROM steps WHERE run_id = ?1 AND status = 'succeeded' AND key LIKE 'each[%].note'")
        .unwrap()
        .query_map([&b_run], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(b_done.len() >= 30, "B finished only {} steps", b_done.len());
    for key in &b_done {
        let n: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM mem_notes WHERE run_id = ?1 AND step = ?2",
                [&b_run, key],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "B's step {key} finished but its note is missing");
    }
    assert!(notes_in(&c, "beta") >= b_before_kill);
    // No half-written memory: every note has its chunk, embedded.
    let notes = count(&sb, "SELECT COUNT(*) FROM mem_notes");
    assert_eq!(count(&sb, "SELECT COUNT(*) FROM mem_chunks WHERE kind = 'note'"), notes);
    assert_eq!(count(&sb, "SELECT COUNT(*) FROM mem_chunks WHERE embedding IS NULL"), 0);
    // A's memory is found by the next process.
    let hits = search(
        &sb,
        "run alpha remembers item 77",
        &["--ns", "alpha", "--mode", "fts", "-k", "1"],
    );
    assert_eq!(hits[0]["text"], "run alpha remembers item 77", "{hits:#}");
}

#[test]
fn retention_policy_and_gc_from_the_command_line() {
    let sb = Sandbox::new();
    for i in 0..4 {
        add(&sb, &["--ns", "scratch", &format!("scratch {i}")]);
    }
    let out = sb
        .run(&["memory", "policy", "set", "scratch", "--max", "2", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(out["notes"], 2);
    let listed = sb
        .run(&["memory", "list", "--ns", "scratch", "--json"])
        .expect_code(0)
        .json();
    let texts: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["scratch 3", "scratch 2"]);
    add(&sb, &["--ns", "scratch", "--ttl", "1s", "short lived"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let gc = sb.run(&["memory", "gc", "--json"]).expect_code(0).json();
    assert_eq!(gc["notes"], 1);
    let policies = sb.run(&["memory", "policy", "list", "--json"]).expect_code(0).json();
    assert_eq!(policies[0]["max_items"], 2);
    let err = sb
        .run(&["memory", "search", "x", "--since", "last tuesday"])
        .expect_code(1)
        .stderr();
    assert!(err.contains("is not a time"), "{err}");
}

#[test]
fn eval_reports_recall_at_5_and_hybrid_beats_each_method_alone() {
    let sb = Sandbox::new();
    let r = sb.run(&["memory", "eval", "--json"]).expect_code(0).json();
    assert!(
        r["notes"].as_u64().unwrap() >= 500 && r["queries"].as_u64().unwrap() >= 50,
        "{r}"
    );
    let at5 = |mode: &str| {
        r["modes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mode"] == mode)
            .unwrap_or_else(|| panic!("no {mode} in {r}"))["recall_at_5"]
            .as_f64()
            .unwrap()
    };
    let (fts, vector, hybrid) = (at5("fts"), at5("vector"), at5("hybrid"));
    println!("recall@5: fts {fts:.3}, vector {vector:.3}, hybrid {hybrid:.3}");
    assert!(hybrid >= fts && hybrid >= vector, "{r}");
    assert!(hybrid >= 0.8 && fts >= 0.3 && vector >= 0.5, "{r}");
    // The user's database is not touched by an evaluation.
    assert!(!sb.db().exists() || count(&sb, "SELECT COUNT(*) FROM mem_notes") == 0);
    // The table names all three.
    let text = sb.run(&["memory", "eval"]).expect_code(0).stdout();
    for m in ["fts", "vector", "hybrid"] {
        assert!(text.contains(&format!("  {m}")), "{text}");
    }
}
