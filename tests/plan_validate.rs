//! `stepwise validate` and `stepwise schema`, driven as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use stepwise_tests::Sandbox;

/// The lines of stderr that are diagnostics (`FILE:LINE:COL: message`).
fn diags(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(".yaml:") || l.contains(".json:"))
        .map(str::to_string)
        .collect()
}

fn has(diags: &[String], at: &str, text: &str) -> bool {
    diags.iter().any(|d| d.contains(at) && d.contains(text))
}

#[test]
fn valid_plan_prints_a_one_line_summary() {
    let sb = Sandbox::new();
    let f = sb.write(
        "ok.yaml",
        "version: 1\nname: ok\ninputs:\n  n: integer\nsteps:\n  - id: a\n    tool: util.noop\n    with: {value: \"${inputs.n}\"}\n",
    );
    let out = sb.run(&["validate", f.to_str().unwrap()]).expect_code(0);
    let lines: Vec<_> = out.stdout().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("ok.yaml: ok") && lines[0].contains("1 steps"),
        "{}",
        lines[0]
    );
}

#[test]
fn every_problem_is_reported_at_once_with_line_and_column() {
    let sb = Sandbox::new();
    let f = sb.write(
        "bad.yaml",
        r#"version: 1
name: bad
inputs:
  city: string
  count: {type: intger}
steps:
  - id: a
    tol: util.noop
  - id: b
    tool: util.noop
    with: {value: "${steps.nosuch.output + inputs.cty}"}
  - id: c
    script: |
      let x = 1;
      x +* 2
  - id: d
    tool: util.sleep
    with: {ms: "abc"}
    needs: [e]
  - id: e
    tool: time.nowx
    needs: [d]
    timeout: 5 parsecs
  - id: f
    tool: util.noop
    when: "inputs.city == "
"#,
    );
    let out = sb.run(&["validate", f.to_str().unwrap()]).expect_code(2);
    let d = diags(&out.stderr());
    let s = out.stderr();
    // Unknown field (a typo) with a suggestion.
    assert!(has(&d, "bad.yaml:8:5:", "unknown field `tol`"), "{s}");
    assert!(s.contains("did you mean `tool`?"), "{s}");
    // Input schema with a bad type.
    assert!(
        d.iter()
            .any(|l| l.starts_with(&format!("{}:5:", f.display())) && l.contains("count")),
        "{s}"
    );
    // Reference to an unknown step and an unknown input.
    assert!(has(&d, "bad.yaml:11:", "unknown step `nosuch`"), "{s}");
    assert!(has(&d, "bad.yaml:11:", "unknown input `cty`"), "{s}");
    assert!(s.contains("did you mean `city`?"), "{s}");
    // Rhai syntax error inside a block script: line of the script, column of the bad token.
    assert!(has(&d, "bad.yaml:15:10:", "script error"), "{s}");
    // Argument type checked against the tool's schema.
    assert!(has(&d, "bad.yaml:18:", "`ms`"), "{s}");
    // Cycle through `needs`.
    assert!(has(&d, "bad.yaml:19:", "cycle: d → e → d"), "{s}");
    // Unknown tool.
    assert!(has(&d, "bad.yaml:21:11:", "unknown tool `time.nowx`"), "{s}");
    // Bad duration.
    assert!(has(&d, "bad.yaml:23:", "not a duration"), "{s}");
    // Rhai syntax error in a one-line expression.
    assert!(has(&d, "bad.yaml:26:", "expression error"), "{s}");
    assert!(s.contains("problems"), "{s}");
}

#[test]
fn yaml_syntax_error_points_at_the_place() {
    let sb = Sandbox::new();
    let f = sb.write(
        "syntax.yaml",
        "version: 1\nname: x\nsteps:\n  - id: a\n    tool: [unclosed\n",
    );
    let out = sb.run(&["validate", f.to_str().unwrap()]).expect_code(2);
    let s = out.stderr();
    assert!(s.contains("syntax.yaml:") && s.contains("syntax error"), "{s}");
    let line: usize = s
        .split("syntax.yaml:")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((5..=6).contains(&line), "{s}");
}

#[test]
fn json_plans_get_positions_too() {
    let sb = Sandbox::new();
    let f = sb.write(
        "p.json",
        "{\n  \"version\": 1,\n  \"name\": \"j\",\n  \"steps\": [\n    {\"id\": \"a\", \"tool\": \"util.noop\", \"retyr\": 3}\n  ]\n}\n",
    );
    let out = sb.run(&["validate", f.to_str().unwrap()]).expect_code(2);
    assert!(
        out.stderr().contains("p.json:5:") && out.stderr().contains("unknown field `retyr`"),
        "{}",
        out.stderr()
    );
}

#[test]
fn references_must_be_to_finished_steps() {
    let sb = Sandbox::new();
    let f = sb.write(
        "order.yaml",
        "version: 1\nname: o\nsteps:\n  - id: a\n    needs: []\n    tool: util.noop\n    with: {value: \"${steps.b.output}\"}\n  - id: b\n    needs: []\n    tool: util.noop\n",
    );
    let out = sb.run(&["validate", f.to_str().unwrap()]).expect_code(2);
    assert!(out.stderr().contains("may not have finished"), "{}", out.stderr());
    assert!(out.stderr().contains("add `b` to `needs`"), "{}", out.stderr());
}

#[test]
fn parallel_siblings_cannot_read_each_other_but_later_steps_can() {
    let sb = Sandbox::new();
    let f = sb.write(
        "par.yaml",
        "version: 1\nname: p\nsteps:\n  - id: group\n    parallel:\n      - id: a\n        tool: util.noop\n      - id: b\n        tool: util.noop\n        with: {value: \"${steps.a.output}\"}\n  - id: after\n    tool: util.noop\n    with: {value: \"${steps.a.output}\"}\n",
    );
    let out = sb.run(&["validate", f.to_str().unwrap()]).expect_code(2);
    let e = out.stderr();
    assert!(
        e.contains("par.yaml:10:") && e.contains("step `b` uses `steps.a`"),
        "{e}"
    );
    assert!(!e.contains("step `after`"), "{e}");
}

#[test]
fn big_plans_check_in_linear_time() {
    // Regression: visibility was computed with one set per step (quadratic in memory).
    let sb = Sandbox::new();
    let mut plan = String::from("version: 1\nname: big\nsteps:\n  - id: s0\n    tool: util.noop\n");
    for i in 1..3000 {
        plan.push_str(&format!(
            "  - id: s{i}\n    tool: util.noop\n    with: {{value: \"${{steps.s{}.output}}\"}}\n",
            i - 1
        ));
    }
    let f = sb.write("big.yaml", &plan);
    let out = sb.run(&["validate", f.to_str().unwrap()]).expect_code(0);
    assert!(out.stdout().contains("3000 steps"), "{}", out.stdout());
}

#[test]
fn ids_that_are_expression_keywords_are_refused() {
    let sb = Sandbox::new();
    let f = sb.write(
        "kw.yaml",
        "version: 1\nname: kw\nsteps:\n  - id: call\n    tool: util.noop\n",
    );
    let out = sb.run(&["validate", f.to_str().unwrap()]).expect_code(2);
    assert!(
        out.stderr().contains("kw.yaml:4:9: step id `call` is a reserved word"),
        "{}",
        out.stderr()
    );
}

#[test]
fn validate_json_output() {
    let sb = Sandbox::new();
    let f = sb.write(
        "bad.yaml",
        "version: 1\nname: x\nsteps:\n  - id: a\n    tool: nope.nope\n",
    );
    let out = sb.run(&["validate", "--json", f.to_str().unwrap()]).expect_code(2);
    let v = out.json();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"][0]["line"], 5);
    assert_eq!(v["problems"][0]["col"], 11);
}

#[test]
fn schema_command_matches_checked_in_schema() {
    let sb = Sandbox::new();
    let out = sb.run(&["schema"]).expect_code(0);
    let checked_in = std::fs::read_to_string(stepwise_tests::workspace_root().join("workflows/schema.json")).unwrap();
    assert!(
        out.stdout() == checked_in,
        "workflows/schema.json is out of date: run `stepwise schema > workflows/schema.json`"
    );
    let v: serde_json::Value = serde_json::from_str(&checked_in).unwrap();
    assert!(v["properties"]["steps"].is_object());
}

#[test]
fn example_workflows_are_valid() {
    let sb = Sandbox::new();
    let dir = stepwise_tests::workspace_root().join("workflows");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            n += 1;
            sb.run(&["validate", p.to_str().unwrap()]).expect_code(0);
        }
    }
    assert!(n > 0, "no example workflows in {}", dir.display());
}
