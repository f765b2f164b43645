//! `stepwise chat` and agent steps with memory, driven as a user would: the real
//! SmolLM2-135M (fetched by `.ci/setup`), the real all-MiniLM-L6-v2, a real SQLite file.
//! Lines go in on stdin (not a terminal), answers come out on stdout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;
use stepwise_tests::{Out, Sandbox};

/// Run `stepwise chat ARGS…` with `input` on stdin.
fn chat(sb: &Sandbox, args: &[&str], input: &str) -> Out {
    let mut child = sb
        .cmd()
        .arg("chat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    Out(child.wait_with_output().unwrap())
}

/// The JSON lines of a `--json` session.
fn lines(out: &Out) -> Vec<Value> {
    out.stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\nstderr:\n{}", out.stderr())))
        .collect()
}

fn texts(v: &Value, field: &str) -> Vec<String> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("no `{field}` in {v:#}"))
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| x["text"].as_str().unwrap().to_string())
        })
        .collect()
}

const SAID: &str = "My name is Ada and I always take a window seat.";

/// Session 1 on thread `thread`: the user states the fact, then `/exit`.
fn first_session(sb: &Sandbox, thread: &str) {
    let out = chat(
        sb,
        &["--thread", thread, "--json"],
        &format!("{SAID}\n/exit\nNot read.\n"),
    )
    .expect_code(0);
    let turns = lines(&out);
    assert_eq!(turns.len(), 1, "/exit ends the session: {turns:#?}");
    let t = &turns[0];
    assert_eq!(t["turn"], 1);
    assert_eq!(t["input"], SAID);
    assert_eq!(
        texts(t, "captured"),
        ["name: Ada", "The user always takes a window seat."],
        "{t:#}"
    );
    assert!(
        out.stderr().contains(&format!("thread {thread} (new)")),
        "{}",
        out.stderr()
    );
}

#[test]
fn a_fact_said_in_one_session_is_recalled_and_used_in_the_next() {
    let sb = Sandbox::new();
    first_session(&sb, "trip-ada");

    // Session 2: a new process on the same thread and database; the answer streams to stdout.
    let out = chat(&sb, &["--thread", "trip-ada"], "Which seat do I like?\n").expect_code(0);
    let answer = out.stdout();
    eprintln!("session 2 answered: {answer:?}");
    assert!(
        out.stderr().contains("thread trip-ada (continued, 2 earlier messages)"),
        "{}",
        out.stderr()
    );
    assert!(
        answer.to_lowercase().contains("window"),
        "the answer should use the recalled fact: {answer:?}"
    );

    // With --json the recalled fact is listed.
    let out = chat(&sb, &["--thread", "trip-ada", "--json"], "Which seat do I like?\n").expect_code(0);
    let t = &lines(&out)[0];
    let recalled = texts(t, "recalled");
    assert!(
        recalled.iter().any(|r| r == "The user always takes a window seat."),
        "{t:#}"
    );
    assert!(
        t["history_messages"].as_u64().unwrap() >= 4,
        "both earlier turns are replayed: {t:#}"
    );
    assert!(t["answer"].as_str().unwrap().to_lowercase().contains("window"), "{t:#}");
}

#[test]
fn facts_are_recalled_by_every_thread_of_their_namespace_only() {
    let sb = Sandbox::new();
    first_session(&sb, "ada-1");

    // A new thread (no --thread): an id is made up and printed; it has no history, but the
    // namespace's facts are recalled.
    let out = chat(&sb, &["--json"], "What is my name?\n").expect_code(0);
    let err = out.stderr();
    let id = err
        .split("thread ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no thread id printed: {err}"));
    assert!(err.contains(&format!("stepwise chat --thread {id}")), "{err}");
    assert_ne!(id, "ada-1");
    let t = &lines(&out)[0];
    assert_eq!(t["thread"], id);
    assert_eq!(t["history_messages"], 0, "{t:#}");
    assert!(texts(t, "recalled").iter().any(|r| r == "user name: Ada"), "{t:#}");
    eprintln!("new thread answered: {:?}", t["answer"]);

    // Another namespace knows nothing of it.
    let out = chat(&sb, &["--json", "--namespace", "work"], "What is my name?\n").expect_code(0);
    let t = &lines(&out)[0];
    assert!(texts(t, "recalled").iter().all(|r| !r.contains("Ada")), "{t:#}");
    // Continuing ada-1 under another namespace is refused.
    let out = chat(&sb, &["--thread", "ada-1", "--namespace", "work"], "hi\n");
    assert_eq!(out.code(), 2, "{}", out.stderr());
    assert!(
        out.stderr().contains("belongs to namespace `default`"),
        "{}",
        out.stderr()
    );
}

#[test]
fn slash_commands_list_tools_show_memory_remember_and_exit() {
    let sb = Sandbox::new();
    let out = chat(
        &sb,
        &["--json", "--tools", "time.now", "math.eval", "--thread", "cmds"],
        "/tools\n/remember my home airport is AMS\n/memory\n/nonsense\n/exit\nWhat time is it?\n",
    )
    .expect_code(0);
    let v = lines(&out);
    assert_eq!(v.len(), 3, "{v:#?}");
    let mut tools = texts(&v[0], "tools");
    tools.sort();
    assert_eq!(tools, ["math.eval", "time.now"]);
    assert_eq!(texts(&v[1], "remembered"), ["home airport: AMS"]);
    assert_eq!(v[2]["command"], "memory");
    assert_eq!(v[2]["facts"], 1);
    assert_eq!(v[2]["thread"]["id"], "cmds");
    assert!(out.stderr().contains("unknown command /nonsense"), "{}", out.stderr());

    // A glob never offers a tool with side effects; naming it does.
    let out = chat(&sb, &["--json", "--tools", "*"], "/tools\n").expect_code(0);
    let all = texts(&lines(&out)[0], "tools");
    assert!(all.contains(&"time.now".to_string()), "{all:?}");
    assert!(
        !all.iter().any(|t| t == "file.write" || t == "memory.remember"),
        "{all:?}"
    );
    let out = chat(&sb, &["--json", "--tools", "*", "file.write"], "/tools\n").expect_code(0);
    assert!(texts(&lines(&out)[0], "tools").contains(&"file.write".to_string()));

    // Plain output lists names and descriptions.
    let out = chat(&sb, &["--tools", "time.now"], "/tools\n").expect_code(0);
    assert!(out.stdout().starts_with("time.now"), "{}", out.stdout());
}

#[test]
fn bad_thread_unknown_tool_and_missing_model_are_clear_errors() {
    let sb = Sandbox::new();
    let out = chat(&sb, &["--thread", "my thread/1"], "hi\n");
    assert_eq!(out.code(), 2, "{}", out.stderr());
    assert!(
        out.stderr().contains("--thread: thread id `my thread/1` holds ' '"),
        "{}",
        out.stderr()
    );
    let out = chat(&sb, &["--thread", ""], "hi\n");
    assert_eq!(out.code(), 2, "{}", out.stderr());
    assert!(out.stderr().contains("cannot be empty"), "{}", out.stderr());

    let out = chat(&sb, &["--tools", "time.nwo"], "hi\n");
    assert_eq!(out.code(), 2, "{}", out.stderr());
    assert!(out.stderr().contains("did you mean `time.now`"), "{}", out.stderr());

    let missing = sb.path("models/missing.gguf");
    let out = chat(&sb, &["--model", missing.to_str().unwrap()], "hi\n");
    assert_ne!(out.code(), 0);
    let err = out.stderr();
    assert!(
        err.contains("cannot load the model") && err.contains("missing.gguf"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout().is_empty(), "{}", out.stdout());
}

const AGENT_WITH_MEMORY: &str = r#"version: 1
name: remembering
inputs:
  say: string
steps:
  - id: talk
    agent:
      instructions: Answer briefly and directly. Use what you know about the user when it answers the question.
      prompt: ${inputs.say}
      tools: [time.now]
      max_turns: 2
      memory:
        thread: ada-plan
        capture: true
outputs:
  agent: ${steps.talk.output}
"#;

#[test]
fn an_agent_step_with_memory_sees_what_an_earlier_run_said() {
    let sb = Sandbox::new();
    let plan = sb.write("remember.yaml", AGENT_WITH_MEMORY);
    let plan = plan.to_str().unwrap();
    let input = format!("say={SAID}");
    let first = sb.run(&["run", plan, "--json", "-i", &input]).expect_code(0).json();
    let mem = &first["outputs"]["agent"]["memory"];
    assert_eq!(mem["thread"], "ada-plan", "{first:#}");
    assert_eq!(mem["history_messages"], 0);
    assert_eq!(mem["captured"].as_array().unwrap().len(), 2, "{mem:#}");
    let persisted = mem["persisted"].as_u64().unwrap();
    assert!(persisted >= 2, "the prompt and the answer at least: {mem:#}");

    let second = sb
        .run(&["run", plan, "--json", "-i", "say=Which seat do I like?"])
        .expect_code(0)
        .json();
    let agent = &second["outputs"]["agent"];
    let mem = &agent["memory"];
    // Replayed as text: the prompt and the answer (tool calls stay in the thread only).
    assert_eq!(mem["history_messages"], 2, "{mem:#}");
    assert!(
        texts(mem, "recalled")
            .iter()
            .any(|r| r == "The user always takes a window seat."),
        "{mem:#}"
    );
    // The answer itself is not asserted: SmolLM2-135M in an agent step (tool-calling
    // instructions, a tool offered) answers with an imitated tool call instead of the fact;
    // `stepwise chat` does use it (see the first test).
    eprintln!("second run answered: {:?}", agent["answer"]);
    // The recall is journaled with the run (a resume reuses it).
    let id = second["run_id"].as_str().unwrap();
    let shown = sb.run(&["runs", "show", id, "--json"]).expect_code(0).json();
    let part = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "talk.memory")
        .unwrap_or_else(|| panic!("no talk.memory in {shown:#}"));
    assert_eq!(part["kind"], "agent.memory");
    // Both runs' turns are in the thread.
    let threads = sb.run(&["memory", "list", "threads", "--json"]).expect_code(0).json();
    let t = threads
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "ada-plan")
        .unwrap_or_else(|| panic!("{threads:#}"));
    assert_eq!(
        t["messages"].as_u64().unwrap(),
        persisted + mem["persisted"].as_u64().unwrap(),
        "{t:#}"
    );
}

#[test]
fn validate_points_at_a_bad_memory_block() {
    let sb = Sandbox::new();
    let plan = sb.write(
        "bad.yaml",
        &AGENT_WITH_MEMORY
            .replace("thread: ada-plan", "thread: \"ada plan\"")
            .replace(
                "capture: true",
                "capture: true\n        recall: {k: 500}\n        history_token: 10",
            ),
    );
    let out = sb.run(&["validate", plan.to_str().unwrap()]);
    assert_eq!(out.code(), 2, "{}", out.stderr());
    let err = out.stderr() + &out.stdout();
    assert!(err.contains("history_token"), "{err}");
    let fixed = sb.write(
        "bad2.yaml",
        &AGENT_WITH_MEMORY
            .replace("thread: ada-plan", "thread: \"ada plan\"")
            .replace("capture: true", "capture: true\n        recall: {k: 500}"),
    );
    let out = sb.run(&["validate", fixed.to_str().unwrap()]);
    assert_eq!(out.code(), 2, "{}", out.stderr());
    let err = out.stderr() + &out.stdout();
    assert!(err.contains("bad2.yaml:13") && err.contains("holds ' '"), "{err}");
    assert!(err.contains("bad2.yaml:15") && err.contains("at most 50"), "{err}");
}
