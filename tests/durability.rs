//! Durability: a run killed with SIGKILL is resumed without repeating finished steps, and a
//! failed run is resumed after its cause is fixed, re-running only what failed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use stepwise_tests::Sandbox;

fn lines(sb: &Sandbox, rel: &str) -> Vec<String> {
    std::fs::read_to_string(sb.workspace().join(rel))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A plan that appends `line i` to out.txt, then sleeps, `n` times.
fn appender(n: usize, sleep_ms: u64) -> String {
    let mut s = String::from("version: 1\nname: appender\ntools:\n  allow: [file.write, util.*]\nsteps:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - id: a{i}\n    tool: file.write\n    with: {{path: out.txt, content: \"line {i}\\n\", mode: append}}\n  - id: s{i}\n    tool: util.sleep\n    with: {{ms: {sleep_ms}}}\n"
        ));
    }
    s
}

#[test]
fn kill_9_then_resume_runs_every_step_exactly_once() {
    let sb = Sandbox::new();
    let plan = sb.write("append.yaml", &appender(12, 150));
    let mut child = sb
        .cmd()
        .args(["run", plan.to_str().unwrap(), "--json"])
        .spawn()
        .unwrap();

    // Wait until four lines are written, give the journal a moment to commit the fourth
    // step (the sleep after it takes 150 ms), then kill the process hard.
    let t0 = Instant::now();
    while lines(&sb, "out.txt").len() < 4 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the run never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(60));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = lines(&sb, "out.txt");
    assert!(before.len() >= 4 && before.len() < 12, "{before:?}");

    let list = sb.run(&["runs", "list", "--json"]).expect_code(0).json();
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["status"], "running");
    assert_eq!(list[0]["state"], "interrupted");

    let out = sb.run(&["runs", "resume", &id, "--json", "--progress"]).expect_code(0);
    assert_eq!(out.json()["status"], "succeeded", "{}", out.stderr());
    assert!(out.stderr().contains("done before; not run again"), "{}", out.stderr());

    let after = lines(&sb, "out.txt");
    let expected: Vec<String> = (0..12).map(|i| format!("line {i}")).collect();
    assert_eq!(after, expected, "every step's line exactly once, in order");

    // The sleep that was cut short shows two attempts: the interrupted one and the rerun.
    let shown = sb.run(&["runs", "show", &id, "--json"]).expect_code(0).json();
    let steps = shown["steps"].as_array().unwrap();
    let interrupted = format!("s{}", before.len() - 1);
    let s = steps.iter().find(|s| s["key"] == interrupted.as_str()).unwrap();
    assert_eq!(s["attempts"], 2, "{s}");
    assert!(steps.iter().all(|s| s["status"] == "succeeded"));
}

#[test]
fn failed_run_resumes_after_the_cause_is_fixed() {
    let sb = Sandbox::new();
    let plan = sb.write(
        "fix.yaml",
        r#"version: 1
name: fix
tools:
  allow: [file.*]
outputs:
  got: ${steps.read.output.text}
steps:
  - id: first
    tool: file.write
    with: {path: log.txt, content: "first\n", mode: append}
  - id: read
    tool: file.read
    with: {path: input.txt}
  - id: last
    tool: file.write
    with: {path: log.txt, content: "last\n", mode: append}
"#,
    );
    let out = sb.run(&["run", plan.to_str().unwrap(), "--json"]).expect_code(1);
    let v = out.json();
    let id = v["run_id"].as_str().unwrap().to_string();
    assert_eq!(v["status"], "failed");
    assert!(v["error"].as_str().unwrap().contains("step `read`"), "{v}");
    assert_eq!(lines(&sb, "log.txt"), vec!["first"]);

    std::fs::write(sb.workspace().join("input.txt"), "hello").unwrap();
    let v = sb.run(&["runs", "resume", &id, "--json"]).expect_code(0).json();
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["outputs"]["got"], "hello");
    assert_eq!(lines(&sb, "log.txt"), vec!["first", "last"]);

    let shown = sb.run(&["runs", "show", &id, "--json"]).expect_code(0).json();
    let attempts = |k: &str| {
        shown["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == k)
            .unwrap()["attempts"]
            .clone()
    };
    assert_eq!(attempts("first"), 1);
    assert_eq!(attempts("read"), 2);
    assert_eq!(attempts("last"), 1);

    // A finished run is not resumed again.
    let out = sb.run(&["runs", "resume", &id]);
    assert_ne!(out.code(), 0);
    assert!(out.stderr().contains("already succeeded"), "{}", out.stderr());
}

#[test]
fn default_database_lives_in_the_xdg_data_dir() {
    let sb = Sandbox::new();
    let plan = sb.write(
        "p.yaml",
        "version: 1\nname: p\nsteps:\n  - id: a\n    tool: util.noop\n",
    );
    let data = sb.path("xdg");
    let out = sb
        .cmd()
        .env_remove("STEPWISE_DB")
        .env("XDG_DATA_HOME", &data)
        .args(["run", plan.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let db = data.join("stepwise/stepwise.db");
    assert!(db.exists());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM steps WHERE status = 'succeeded'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn each_step_is_committed_before_the_next_starts() {
    let sb = Sandbox::new();
    let plan = sb.write(
        "slow.yaml",
        "version: 1\nname: slow\nsteps:\n  - id: first\n    script: 40 + 2\n  - id: wait\n    tool: util.sleep\n    with: {ms: 1500}\n  - id: never_before_wait\n    tool: util.noop\n",
    );
    let mut child = sb
        .cmd()
        .args(["run", plan.to_str().unwrap(), "--json"])
        .spawn()
        .unwrap();
    // While `wait` sleeps, another connection already sees `first` finished with its output,
    // `wait` running, and nothing of the step after it.
    let t0 = Instant::now();
    let seen = loop {
        assert!(t0.elapsed() < Duration::from_secs(30), "never saw `wait` running");
        std::thread::sleep(Duration::from_millis(20));
        let Ok(conn) = rusqlite::Connection::open_with_flags(sb.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        else {
            continue;
        };
        let rows: Vec<(String, String, Option<String>)> = match conn.prepare(
            "SELECT s.key, s.status, o.value FROM steps s LEFT JOIN outputs o ON o.run_id = s.run_id AND o.key = s.key ORDER BY s.updated_at",
        ) {
            Ok(mut st) => st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect(),
            Err(_) => continue,
        };
        if rows.iter().any(|r| r.0 == "wait" && r.1 == "running") {
            break rows;
        }
    };
    assert_eq!(
        seen[0],
        ("first".to_string(), "succeeded".to_string(), Some("42".to_string()))
    );
    assert!(seen.iter().all(|r| r.0 != "never_before_wait"), "{seen:?}");
    assert!(child.wait().unwrap().success());
}
