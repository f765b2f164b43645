//! `stepwise mcp serve`: workflows of a directory become MCP tools; a call is a journaled
//! run. Driven from a plan whose plugin is another stepwise process, over stdio.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use stepwise_tests::{Sandbox, stepwise_bin};

#[test]
fn workflows_are_served_as_tools_and_calls_are_journaled_runs() {
    let sb = Sandbox::new();
    sb.write(
        "flows/greet.yaml",
        r#"version: 1
name: greet
description: Greets someone by name.
inputs:
  who: {type: string, description: Who to greet}
  times: {type: integer, default: 1}
steps:
  - id: line
    script: |
      let s = "";
      for i in 0..inputs.times { s += "hello " + inputs.who + "! "; }
      s.trim();
      s
outputs:
  greeting: ${steps.line.output}
"#,
    );
    let server_db = sb.path("server.db");
    let plan = sb.write(
        "caller.yaml",
        &format!(
            r#"version: 1
name: caller
plugins:
  sw:
    kind: mcp
    command: {bin}
    args: [mcp, serve, --workflows, "{flows}", --db, "{db}"]
tools:
  allow: [sw.workflow.greet]
steps:
  - id: greeting
    tool: sw.workflow.greet
    with: {{who: Ada, times: 2}}
outputs:
  result: ${{steps.greeting.output}}
"#,
            bin = stepwise_bin().display(),
            flows = sb.path("flows").display(),
            db = server_db.display()
        ),
    );
    // The workflow's inputs schema is the tool's schema: a wrong type is caught before the call.
    let tools = sb
        .run(&["tools", "list", "--json", "--plan", plan.to_str().unwrap()])
        .expect_code(0)
        .json();
    let greet = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "sw.workflow.greet")
        .unwrap();
    assert_eq!(greet["parameters"]["properties"]["times"]["type"], "integer", "{greet}");
    assert_eq!(greet["parameters"]["required"][0], "who", "{greet}");
    assert_eq!(greet["description"], "Greets someone by name.");

    // stepwise serves both protocol generations; its own client prefers 2026-07-28 through
    // `server/discover`.
    let plugins = sb
        .run(&["plugins", "list", "--json", "--plan", plan.to_str().unwrap()])
        .expect_code(0)
        .json();
    assert_eq!(plugins[0]["protocol"], "2026-07-28", "{plugins}");

    let v = sb.run(&["run", plan.to_str().unwrap(), "--json"]).expect_code(0).json();
    let result = &v["outputs"]["result"];
    assert_eq!(result["status"], "succeeded", "{v}");
    assert_eq!(result["outputs"]["greeting"], "hello Ada! hello Ada!", "{v}");
    let served_run = result["run_id"].as_str().unwrap();

    // The call is a run in the server's journal.
    let shown = sb
        .run(&[
            "runs",
            "show",
            served_run,
            "--json",
            "--db",
            server_db.to_str().unwrap(),
        ])
        .expect_code(0)
        .json();
    assert_eq!(shown["run"]["plan_name"], "greet", "{shown}");
    assert_eq!(shown["run"]["status"], "succeeded", "{shown}");
}

#[test]
fn mcp_benchmark_reports_three_paths() {
    let sb = Sandbox::new();
    let v = sb
        .run(&["bench", "mcp", "--calls", "20", "--json"])
        .expect_code(0)
        .json();
    let rows = v["rows"].as_array().unwrap_or_else(|| panic!("no rows in {v}"));
    assert_eq!(rows.len(), 3, "{v}");
    for r in rows {
        assert!(r["p50_us"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["p99_us"].as_f64().unwrap() >= r["p50_us"].as_f64().unwrap(), "{r}");
    }
}
