//! `stepwise run` and `stepwise runs show`: inputs, outputs, control flow, errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use stepwise_tests::Sandbox;

fn show(sb: &Sandbox, id: &str) -> serde_json::Value {
    sb.run(&["runs", "show", id, "--json"]).expect_code(0).json()
}

fn step<'a>(shown: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no step {key} in {shown:#}"))
}

#[test]
fn typed_inputs_and_json_outputs() {
    let sb = Sandbox::new();
    let f = sb.write(
        "p.yaml",
        r#"version: 1
name: typed
inputs:
  n: {type: integer, default: 4}
  who: string
  flags: {type: array, default: []}
outputs:
  double: ${steps.d.output}
  hello: "hello ${inputs.who}"
  count: ${inputs.flags.len()}
steps:
  - id: d
    script: inputs.n * 2
"#,
    );
    let out = sb
        .run(&[
            "run",
            f.to_str().unwrap(),
            "--json",
            "-i",
            "who=ana",
            "-i",
            "n=21",
            "--input",
            "flags=[1,2]",
        ])
        .expect_code(0);
    let v = out.json();
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["outputs"], json!({"double": 42, "hello": "hello ana", "count": 2}));
    assert!(v["run_id"].as_str().unwrap().len() >= 20);

    // A missing required input and a mistyped one are refused before anything runs.
    let out = sb.run(&["run", f.to_str().unwrap(), "--json"]).expect_code(2);
    assert!(out.stderr().contains("who"), "{}", out.stderr());
    assert!(out.stdout().is_empty());
    let out = sb
        .run(&["run", f.to_str().unwrap(), "-i", "who=x", "-i", "n=many"])
        .expect_code(2);
    assert!(
        out.stderr().contains("input `n`") && out.stderr().contains("not an integer"),
        "{}",
        out.stderr()
    );
    let out = sb.run(&["run", f.to_str().unwrap(), "-i", "wh=x"]).expect_code(2);
    assert!(out.stderr().contains("did you mean `who`"), "{}", out.stderr());

    // --input-json
    let inputs = sb.write("in.json", r#"{"who": "bo", "n": 1}"#);
    let v = sb
        .run(&[
            "run",
            f.to_str().unwrap(),
            "--json",
            "--input-json",
            inputs.to_str().unwrap(),
        ])
        .expect_code(0)
        .json();
    assert_eq!(v["outputs"]["double"], 2);
}

#[test]
fn control_flow_when_branch_for_each_parallel() {
    let sb = Sandbox::new();
    let f = sb.write(
        "flow.yaml",
        r#"version: 1
name: flow
inputs:
  cities: {type: array, default: ["Lisbon", "Tokyo", "Lima"]}
  mode: {type: string, default: fast}
outputs:
  lengths: ${steps.each.output}
  picked: ${steps.pick.output}
  both: ${steps.both.output}
steps:
  - id: never
    when: inputs.mode == "slow"
    script: 1
  - id: each
    for_each:
      items: inputs.cities
      as: city
      concurrency: 2
      steps:
        - id: len
          script: city.len() * 10 + index
  - id: pick
    branch:
      - when: steps.each.output[0] > 100
        steps:
          - id: big
            script: '"big"'
      - steps:
          - id: small
            script: '"small"'
  - id: both
    parallel:
      - id: left
        tool: util.sleep
        with: {ms: 30}
      - id: right
        tool: util.noop
        with: {value: "${inputs.mode}"}
"#,
    );
    let v = sb.run(&["run", f.to_str().unwrap(), "--json"]).expect_code(0).json();
    assert_eq!(v["outputs"]["lengths"], json!([60, 51, 42]));
    assert_eq!(v["outputs"]["picked"], "small");
    assert_eq!(v["outputs"]["both"], json!({"left": {"slept_ms": 30}, "right": "fast"}));
    let shown = show(&sb, v["run_id"].as_str().unwrap());
    assert_eq!(step(&shown, "never")["status"], "skipped");
    assert_eq!(step(&shown, "each[2].len")["output"], 42);
    assert_eq!(step(&shown, "small")["status"], "succeeded");
    assert!(shown["steps"].as_array().unwrap().iter().all(|s| s["key"] != "big"));
}

#[test]
fn on_error_continue_goto_and_retries() {
    let sb = Sandbox::new();
    let f = sb.write(
        "errors.yaml",
        r#"version: 1
name: errors
outputs:
  after: ${steps.after.output}
steps:
  - id: flaky
    tool: util.sleep
    with: {ms: 2000}
    timeout: 20ms
    retry: {attempts: 3, backoff: 10ms}
    on_error: continue
  - id: broken
    script: 'throw "no luck"'
    on_error: {goto: after}
  - id: jumped_over
    script: 1
  - id: after
    script: steps.flaky.status + "/" + steps.broken.status
"#,
    );
    let v = sb.run(&["run", f.to_str().unwrap(), "--json"]).expect_code(0).json();
    assert_eq!(v["outputs"]["after"], "continued/continued");
    let shown = show(&sb, v["run_id"].as_str().unwrap());
    let flaky = step(&shown, "flaky");
    assert_eq!(flaky["attempts"], 3);
    assert!(flaky["error"].as_str().unwrap().contains("timed out"), "{flaky}");
    let failed_attempts = shown["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["key"] == "flaky")
        .count();
    assert_eq!(failed_attempts, 3);
    assert!(step(&shown, "broken")["error"].as_str().unwrap().contains("no luck"));
    assert_eq!(step(&shown, "jumped_over")["status"], "skipped");
}

#[test]
fn failing_step_fails_the_run_with_its_position() {
    let sb = Sandbox::new();
    let f = sb.write(
        "fail.yaml",
        "version: 1\nname: fail\nsteps:\n  - id: ok\n    script: 1\n  - id: bad\n    script: |\n      let a = 1;\n      a.nosuchmethod()\n  - id: later\n    script: 2\n",
    );
    let out = sb.run(&["run", f.to_str().unwrap(), "--json"]).expect_code(1);
    let v = out.json();
    assert_eq!(v["status"], "failed");
    let err = v["error"].as_str().unwrap();
    assert!(err.contains("step `bad`") && err.contains("fail.yaml:6:"), "{err}");
    assert!(err.contains("fail.yaml:9:"), "script position missing: {err}");
    let shown = show(&sb, v["run_id"].as_str().unwrap());
    assert_eq!(step(&shown, "ok")["status"], "succeeded");
    assert_eq!(step(&shown, "bad")["status"], "failed");
    assert!(shown["steps"].as_array().unwrap().iter().all(|s| s["key"] != "later"));
}

#[test]
fn runaway_scripts_are_stopped_and_recorded() {
    let sb = Sandbox::new();
    let f = sb.write(
        "loop.yaml",
        "version: 1\nname: loop\nsteps:\n  - id: spin\n    script: |\n      let x = 0;\n      loop { x += 1; }\n",
    );
    let v = sb.run(&["run", f.to_str().unwrap(), "--json"]).expect_code(1).json();
    let shown = show(&sb, v["run_id"].as_str().unwrap());
    let e = step(&shown, "spin")["error"].as_str().unwrap().to_string();
    assert!(
        e.contains("script stopped") && (e.contains("operations") || e.contains("time limit")),
        "{e}"
    );

    let f = sb.write(
        "alloc.yaml",
        "version: 1\nname: alloc\nsteps:\n  - id: grow\n    script: |\n      let s = \"xxxxxxxx\";\n      loop { s += s; }\n",
    );
    let v = sb.run(&["run", f.to_str().unwrap(), "--json"]).expect_code(1).json();
    let shown = show(&sb, v["run_id"].as_str().unwrap());
    let e = step(&shown, "grow")["error"].as_str().unwrap().to_string();
    assert!(e.contains("grew past its limit"), "{e}");
}

#[test]
fn scripts_call_tools_and_sub_workflows_run_inside_the_run() {
    let sb = Sandbox::new();
    sb.write(
        "child.yaml",
        "version: 1\nname: child\ninputs:\n  x: integer\noutputs:\n  y: ${steps.sq.output}\nsteps:\n  - id: sq\n    script: inputs.x * inputs.x\n",
    );
    let f = sb.write(
        "parent.yaml",
        r#"version: 1
name: parent
outputs:
  sub: ${steps.child.output.y}
  echoed: ${steps.viatool.output}
steps:
  - id: child
    workflow: child.yaml
    with: {x: 7}
  - id: viatool
    script: 'tool("util.noop", #{ value: steps.child.output.y + 1 })'
"#,
    );
    let v = sb.run(&["run", f.to_str().unwrap(), "--json"]).expect_code(0).json();
    assert_eq!(v["outputs"], json!({"sub": 49, "echoed": 50}));
    let shown = show(&sb, v["run_id"].as_str().unwrap());
    assert_eq!(step(&shown, "child/sq")["output"], 49);
}

#[test]
fn progress_lines_and_runs_list() {
    let sb = Sandbox::new();
    let f = sb.write(
        "p.yaml",
        "version: 1\nname: prog\nsteps:\n  - id: one\n    tool: util.noop\n",
    );
    let out = sb.run(&["run", f.to_str().unwrap(), "--progress"]).expect_code(0);
    let err = out.stderr();
    assert!(err.contains("▶ one") && err.contains("✓ one succeeded"), "{err}");
    let list = sb.run(&["runs", "list", "--json"]).expect_code(0).json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["plan_name"], "prog");
    assert_eq!(list[0]["status"], "succeeded");
}

#[test]
fn json_plans_run_and_deep_recursion_is_stopped() {
    let sb = Sandbox::new();
    let f = sb.write(
        "p.json",
        r#"{"version": 1, "name": "j", "outputs": {"v": "${steps.a.output}"},
            "steps": [{"id": "a", "script": "fn f(n) { if n == 0 { 0 } else { 1 + f(n - 1) } } f(10)"}]}"#,
    );
    let v = sb.run(&["run", f.to_str().unwrap(), "--json"]).expect_code(0).json();
    assert_eq!(v["outputs"]["v"], 10);
    let f = sb.write(
        "deep.yaml",
        "version: 1\nname: deep\nsteps:\n  - id: a\n    script: |\n      fn f(n) { 1 + f(n + 1) }\n      f(0)\n",
    );
    let v = sb.run(&["run", f.to_str().unwrap(), "--json"]).expect_code(1).json();
    assert!(v["error"].as_str().unwrap().contains("nested deeper"), "{v}");
}

#[test]
fn engine_benchmark_reports_every_case() {
    let sb = Sandbox::new();
    let dir = sb.path("bench");
    let v = sb
        .run(&[
            "bench",
            "engine",
            "--quick",
            "--reps",
            "1",
            "--json",
            "--dir",
            dir.to_str().unwrap(),
        ])
        .expect_code(0)
        .json();
    let names: Vec<String> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    for want in ["linear 10", "linear 100", "fan-out", "for_each", "concurrent"] {
        assert!(names.iter().any(|n| n.contains(want)), "{want} missing from {names:?}");
    }
    for c in v["cases"].as_array().unwrap() {
        assert!(c["per_unit_us"].as_f64().unwrap() > 0.0, "{c}");
    }
    assert!(v["peak_rss_mb"].as_f64().unwrap() > 1.0);
    assert!(v["journal_bytes_per_step"][1][1].as_f64().unwrap() > 0.0, "{v}");
}
