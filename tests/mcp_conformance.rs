//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, installed by
//! `.ci/setup.d/40-mcp.sh`) against both sides of stepwise: `stepwise mcp serve --http`
//! loaded with the Rhai fixtures of `tests/fixtures/conformance`, and `stepwise mcp probe` as
//! the client. Every scenario of the active server suite and the client scenarios
//! `initialize` and `tools_call` must pass. The summaries are written to
//! `$CARGO_TARGET_TMPDIR/mcp-conformance-*.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

use stepwise_tests::{KillOnDrop, Sandbox, free_port, mcp_bin, stepwise_bin, wait_for_port, workspace_root};

fn keep(name: &str, text: &str) {
    let _ = std::fs::write(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name), text);
}

#[test]
fn server_passes_the_active_conformance_suite() {
    let sb = Sandbox::new();
    let port = free_port();
    let fixtures = workspace_root().join("tests/fixtures/conformance");
    let _server = KillOnDrop(
        sb.cmd()
            .args([
                "mcp",
                "serve",
                "--http",
                &format!("127.0.0.1:{port}"),
                "--bare",
                "conformance",
            ])
            .arg("--plugins")
            .arg(&fixtures)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, 30);
    let out = Command::new(mcp_bin("mcp-conformance"))
        .args(["server", "--url", &format!("http://127.0.0.1:{port}/mcp")])
        .current_dir(sb.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let summary = text.split("=== SUMMARY ===").nth(1).unwrap_or("").trim().to_string();
    keep("mcp-conformance-server.txt", &summary);
    assert!(out.status.success(), "conformance suite failed:\n{text}");
    let scenarios: Vec<&str> = summary
        .lines()
        .filter(|l| l.starts_with('✓') || l.starts_with('✗'))
        .collect();
    assert!(
        scenarios.len() >= 30,
        "expected the whole active suite, got:\n{summary}"
    );
    assert!(scenarios.iter().all(|l| l.starts_with('✓')), "{summary}");
    let total = summary.lines().find(|l| l.starts_with("Total:")).unwrap();
    assert!(total.ends_with(" 0 failed"), "{summary}");
}

fn client_scenario(scenario: &str, command: &str) {
    let sb = Sandbox::new();
    let out = Command::new(mcp_bin("mcp-conformance"))
        .args(["client", "--command", command, "--scenario", scenario])
        .current_dir(sb.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Passed:") || l.contains("OVERALL"))
        .collect();
    keep(&format!("mcp-conformance-client-{scenario}.txt"), &summary.join("\n"));
    assert!(out.status.success() && text.contains("OVERALL: PASSED"), "{text}");
    assert!(text.contains(", 0 failed"), "{text}");
}

#[test]
fn probe_passes_the_initialize_client_scenario() {
    client_scenario("initialize", &format!("{} mcp probe", stepwise_bin().display()));
}

#[test]
fn probe_passes_the_tools_call_client_scenario() {
    client_scenario(
        "tools_call",
        &format!(
            "{} mcp probe --call add_numbers --arg a=2 --arg b=3",
            stepwise_bin().display()
        ),
    );
}
