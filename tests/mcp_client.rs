//! Plans that use real MCP servers (installed by `.ci/setup.d/40-mcp.sh`) and Rhai plugins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

use stepwise_tests::{KillOnDrop, Sandbox, free_port, mcp_bin, wait_for_port};

fn time_plan(tool: &str, tz: &str) -> String {
    format!(
        r#"version: 1
name: what-time
plugins:
  clock:
    kind: mcp
    command: {cmd}
    args: ["--local-timezone", "UTC"]
tools:
  allow: ["clock.*"]
steps:
  - id: now
    tool: {tool}
    with:
      timezone: {tz}
outputs:
  now: ${{steps.now.output}}
"#,
        cmd = mcp_bin("mcp-server-time")
    )
}

#[test]
fn time_server_answers_a_tool_step() {
    let sb = Sandbox::new();
    let plan = sb.write("time.yaml", &time_plan("clock.get_current_time", "Europe/Lisbon"));
    let out = sb.run(&["run", plan.to_str().unwrap(), "--json"]).expect_code(0);
    let v = out.json();
    assert_eq!(v["status"], "succeeded", "{v}");
    let now = &v["outputs"]["now"];
    assert_eq!(now["timezone"], "Europe/Lisbon", "{v}");
    assert!(now["datetime"].as_str().unwrap().starts_with("20"), "{v}");
}

#[test]
fn validate_reports_unknown_plugin_tools_with_positions() {
    let sb = Sandbox::new();
    let plan = sb.write("time.yaml", &time_plan("clock.get_current_tim", "UTC"));
    let out = sb.run(&["validate", plan.to_str().unwrap()]).expect_code(2);
    let err = out.stderr();
    assert!(
        err.contains("time.yaml:12:11: unknown tool `clock.get_current_tim`"),
        "{err}"
    );
    assert!(err.contains("did you mean `clock.get_current_time`?"), "{err}");
}

#[test]
fn a_server_that_cannot_start_is_reported_at_the_plugin() {
    let sb = Sandbox::new();
    let plan = sb.write(
        "bad.yaml",
        "version: 1\nname: bad\nplugins:\n  ghost:\n    kind: mcp\n    command: /nonexistent/mcp-ghost\nsteps:\n  - id: a\n    tool: util.noop\n",
    );
    let out = sb.run(&["validate", plan.to_str().unwrap()]).expect_code(2);
    let err = out.stderr();
    assert!(
        err.contains("bad.yaml:4:3: plugin `ghost`: MCP server did not start"),
        "{err}"
    );
    assert!(err.contains("command not found"), "{err}");
}

#[test]
fn mcp_tools_are_side_effecting_unless_annotated_read_only() {
    let sb = Sandbox::new();
    let plan = time_plan("clock.get_current_time", "UTC").replace("tools:\n  allow: [\"clock.*\"]\n", "");
    let plan = sb.write("time.yaml", &plan);
    let out = sb.run(&["validate", plan.to_str().unwrap()]);
    let listing = sb
        .run(&["tools", "list", "--json", "--plan", plan.to_str().unwrap()])
        .expect_code(0)
        .json();
    let t = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "clock.get_current_time")
        .unwrap()
        .clone();
    assert_eq!(t["origin"], "plugin:clock");
    assert_eq!(t["parameters"]["required"][0], "timezone", "{t}");
    if t["side_effects"] == true {
        assert_eq!(out.code(), 2);
        assert!(
            out.stderr().contains("has side effects and must be allowed explicitly"),
            "{}",
            out.stderr()
        );
    } else {
        assert_eq!(out.code(), 0, "{}", out.stderr());
    }
}

fn fs_plan(sb: &Sandbox, path: &str) -> std::path::PathBuf {
    sb.write(
        "fs.yaml",
        &format!(
            r#"version: 1
name: read-file
plugins:
  files:
    kind: mcp
    command: {cmd}
    args: ["${{workspace}}"]
tools:
  allow: [files.read_text_file]
steps:
  - id: read
    tool: files.read_text_file
    with:
      path: {path}
outputs:
  text: ${{steps.read.output}}
"#,
            cmd = mcp_bin("mcp-server-filesystem")
        ),
    )
}

#[test]
fn filesystem_server_reads_inside_the_workspace_only() {
    let sb = Sandbox::new();
    sb.write("ws/notes.txt", "pack the charger\n");
    sb.write("secret.txt", "outside\n");
    let ws = std::fs::canonicalize(sb.workspace()).unwrap();
    let plan = fs_plan(&sb, &ws.join("notes.txt").display().to_string());
    let v = sb.run(&["run", plan.to_str().unwrap(), "--json"]).expect_code(0).json();
    let text = v["outputs"]["text"].to_string();
    assert!(text.contains("pack the charger"), "{v}");

    let outside = std::fs::canonicalize(sb.path("secret.txt")).unwrap();
    let plan = fs_plan(&sb, &outside.display().to_string());
    let out = sb.run(&["run", plan.to_str().unwrap(), "--json"]).expect_code(1);
    let v = out.json();
    assert_eq!(v["status"], "failed");
    let err = v["error"].as_str().unwrap();
    assert!(err.contains("files.read_text_file"), "{err}");
    assert!(
        err.to_lowercase().contains("access denied") || err.contains("outside"),
        "{err}"
    );
}

#[test]
fn everything_server_over_streamable_http() {
    let port = free_port();
    let _server = KillOnDrop(
        Command::new(mcp_bin("mcp-server-everything"))
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, 30);
    let sb = Sandbox::new();
    let plan = sb.write(
        "http.yaml",
        &format!(
            r#"version: 1
name: everything-http
plugins:
  ev:
    kind: mcp
    url: http://127.0.0.1:{port}/mcp
    headers: {{X-Trace: stepwise-test}}
steps:
  - id: echo
    tool: ev.echo
    with: {{message: hello over http}}
  - id: sum
    tool: ev.get-sum
    with: {{a: 2, b: 40}}
outputs:
  echo: ${{steps.echo.output}}
  sum: ${{steps.sum.output}}
"#
        ),
    );
    let v = sb.run(&["run", plan.to_str().unwrap(), "--json"]).expect_code(0).json();
    assert_eq!(v["outputs"]["echo"], "Echo: hello over http", "{v}");
    assert!(v["outputs"]["sum"].to_string().contains("42"), "{v}");
    let list = sb
        .run(&["plugins", "list", "--json", "--plan", plan.to_str().unwrap()])
        .expect_code(0)
        .json();
    assert_eq!(list[0]["name"], "ev");
    assert_eq!(list[0]["kind"], "mcp");
    // server-everything answers `server/discover` with an error: the client falls back to
    // the `initialize` handshake of 2025-11-25.
    assert_eq!(list[0]["protocol"], "2025-11-25", "{list}");
    assert!(list[0]["tools"].as_array().unwrap().len() > 5, "{list}");
}

#[test]
fn a_crashed_server_is_restarted_and_the_run_shows_the_error() {
    let sb = Sandbox::new();
    // The first start of the server is killed (SIGKILL) a few seconds in, in the middle of a
    // long call; later starts are the plain server.
    let marker = sb.path("started-once");
    let script = sb.write(
        "doomed-everything.sh",
        &format!(
            "#!/bin/sh\nif [ ! -e '{m}' ]; then touch '{m}'; ( sleep 6; kill -9 $$ ) </dev/null >/dev/null 2>&1 & fi\nexec '{bin}' stdio\n",
            m = marker.display(),
            bin = mcp_bin("mcp-server-everything")
        ),
    );
    Command::new("chmod").arg("+x").arg(&script).status().unwrap();
    let plan = sb.write(
        "crash.yaml",
        &format!(
            r#"version: 1
name: crash-and-restart
plugins:
  ev:
    kind: mcp
    command: {script}
    timeout: 60s
steps:
  - id: long
    tool: ev.trigger-long-running-operation
    with: {{duration: 10, steps: 2}}
    retry: {{attempts: 3, backoff: 200ms}}
outputs:
  done: ${{steps.long.output}}
"#,
            script = script.display()
        ),
    );
    let v = sb.run(&["run", plan.to_str().unwrap(), "--json"]).expect_code(0).json();
    assert!(v["outputs"]["done"].to_string().contains("completed"), "{v}");
    let run_id = v["run_id"].as_str().unwrap().to_string();
    let shown = sb.run(&["runs", "show", &run_id, "--json"]).expect_code(0).json();
    let attempts = shown["attempts"].to_string();
    assert!(attempts.contains("connection to the MCP server was lost"), "{shown}");
}

#[test]
fn a_hanging_call_times_out_without_hanging_the_run() {
    let sb = Sandbox::new();
    let plan = sb.write(
        "slow.yaml",
        &format!(
            r#"version: 1
name: slow
plugins:
  ev:
    kind: mcp
    command: {cmd}
    args: [stdio]
    timeout: 1s
steps:
  - id: long
    tool: ev.trigger-long-running-operation
    with: {{duration: 30, steps: 3}}
"#,
            cmd = mcp_bin("mcp-server-everything")
        ),
    );
    let started = std::time::Instant::now();
    let v = sb.run(&["run", plan.to_str().unwrap(), "--json"]).expect_code(1).json();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );
    assert!(v["error"].as_str().unwrap().contains("timed out after 1000 ms"), "{v}");
}

#[test]
fn rhai_plugin_tools_run_and_report_script_positions() {
    let sb = Sandbox::new();
    let plan = sb.write(
        "rhai.yaml",
        r#"version: 1
name: rhai-tools
plugins:
  words:
    kind: rhai
    script: |
      fn shout(args) {
        args.words.to_upper() + "!"
      }
      fn broken(args) {
        let n = 1;
        n.no_such_method()
      }
    tools:
      - name: shout
        description: Upper-cases words.
        parameters: {type: object, properties: {words: {type: string}}, required: [words]}
      - name: broken
        description: Always fails.
steps:
  - id: a
    tool: words.shout
    with: {words: hello}
  - id: b
    tool: words.broken
outputs:
  a: ${steps.a.output}
"#,
    );
    let out = sb.run(&["run", plan.to_str().unwrap(), "--json"]).expect_code(1);
    let v = out.json();
    let err = v["error"].as_str().unwrap();
    // The failing call is on line 12 of the plan file (line 6 of the script).
    assert!(err.contains("rhai.yaml:12:11"), "{err}");
    let shown = sb
        .run(&["runs", "show", v["run_id"].as_str().unwrap(), "--json"])
        .expect_code(0)
        .stdout();
    assert!(shown.contains("HELLO!"), "{shown}");

    // A tool the script does not define is reported at the tool entry.
    let bad = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("- name: broken", "- name: brokn");
    let bad = sb.write("bad.yaml", &bad);
    let out = sb.run(&["validate", bad.to_str().unwrap()]).expect_code(2);
    assert!(out.stderr().contains("no function `brokn(args)`"), "{}", out.stderr());
    assert!(out.stderr().contains("bad.yaml:18:9:"), "{}", out.stderr());
}

#[test]
fn servers_see_the_workspace_as_their_only_root() {
    let sb = Sandbox::new();
    let plan = sb.write(
        "roots.yaml",
        &format!(
            r#"version: 1
name: roots
plugins:
  ev:
    kind: mcp
    command: {cmd}
    args: [stdio]
tools:
  allow: [ev.get-roots-list]
steps:
  - id: roots
    tool: ev.get-roots-list
outputs:
  roots: ${{steps.roots.output}}
"#,
            cmd = mcp_bin("mcp-server-everything")
        ),
    );
    let v = sb.run(&["run", plan.to_str().unwrap(), "--json"]).expect_code(0).json();
    let roots = v["outputs"]["roots"].as_str().unwrap();
    assert!(roots.contains("(1 total)"), "{roots}");
    assert!(
        roots.contains(&format!("file://{}", sb.workspace().display())),
        "{roots}"
    );
}

#[test]
fn a_plugin_cannot_take_a_built_in_name() {
    let sb = Sandbox::new();
    let plan = sb.write(
        "shadow.yaml",
        r#"version: 1
name: shadow
plugins:
  util:
    kind: rhai
    script: "fn noop(a) { 42 }"
    tools:
      - {name: noop, description: Pretends to be the built-in.}
steps:
  - id: a
    tool: util.noop
    with: {value: 1}
"#,
    );
    let out = sb.run(&["validate", plan.to_str().unwrap()]).expect_code(2);
    let err = out.stderr();
    assert!(
        err.contains("shadow.yaml:4:3: plugin `util`: the name is taken"),
        "{err}"
    );
    assert!(err.contains("already come from builtin"), "{err}");
}
