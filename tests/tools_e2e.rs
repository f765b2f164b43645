//! Built-in tools through plans: workspace confinement, network refusals, permissions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;

use stepwise_tests::Sandbox;

fn run_json(sb: &Sandbox, name: &str, plan: &str, extra: &[&str], code: i32) -> serde_json::Value {
    let f = sb.write(name, plan);
    let mut args = vec!["run", f.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    sb.run(&args).expect_code(code).json()
}

#[test]
fn file_tools_stay_inside_the_workspace() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("secret.txt"), "outside").unwrap();
    std::os::unix::fs::symlink(sb.path("secret.txt"), sb.workspace().join("link.txt")).unwrap();
    std::fs::write(sb.workspace().join("inside.txt"), "inside").unwrap();
    for (i, path) in ["../secret.txt", "/etc/passwd", "link.txt"].iter().enumerate() {
        let plan = format!(
            "version: 1\nname: r{i}\nsteps:\n  - id: read\n    tool: file.read\n    with: {{path: \"{path}\"}}\n"
        );
        let v = run_json(&sb, &format!("r{i}.yaml"), &plan, &[], 1);
        let e = v["error"].as_str().unwrap();
        assert!(e.contains("refused"), "{path}: {e}");
    }
    let v = run_json(
        &sb,
        "ok.yaml",
        "version: 1\nname: ok\noutputs: {t: \"${steps.read.output.text}\"}\nsteps:\n  - id: read\n    tool: file.read\n    with: {path: inside.txt}\n",
        &[],
        0,
    );
    assert_eq!(v["outputs"]["t"], "inside");
}

#[test]
fn side_effecting_tools_need_an_explicit_allow() {
    let sb = Sandbox::new();
    let f = sb.write(
        "w.yaml",
        "version: 1\nname: w\nsteps:\n  - id: write\n    tool: file.write\n    with: {path: a.txt, content: hi}\n",
    );
    let out = sb.run(&["validate", f.to_str().unwrap()]).expect_code(2);
    assert!(
        out.stderr().contains("w.yaml:5:11:") && out.stderr().contains("must be allowed explicitly"),
        "{}",
        out.stderr()
    );
    let f = sb.write(
        "w2.yaml",
        "version: 1\nname: w\ntools: {allow: [\"*\"]}\nsteps:\n  - id: write\n    tool: file.write\n    with: {path: a.txt, content: hi}\n",
    );
    sb.run(&["validate", f.to_str().unwrap()]).expect_code(2);
    let v = run_json(
        &sb,
        "w3.yaml",
        "version: 1\nname: w\ntools: {allow: [file.write]}\nsteps:\n  - id: write\n    tool: file.write\n    with: {path: sub/a.txt, content: hi}\n",
        &[],
        0,
    );
    assert_eq!(v["status"], "succeeded");
    assert_eq!(std::fs::read_to_string(sb.workspace().join("sub/a.txt")).unwrap(), "hi");
    // Scripts obey the same policy.
    let v = run_json(
        &sb,
        "w4.yaml",
        "version: 1\nname: w\nsteps:\n  - id: s\n    script: 'tool(\"file.write\", #{path: \"b.txt\", content: \"x\"})'\n",
        &[],
        1,
    );
    assert!(v["error"].as_str().unwrap().contains("not allowed"), "{v}");
    assert!(!sb.workspace().join("b.txt").exists());
}

/// A one-shot HTTP server on 127.0.0.1 answering `body`.
fn serve_once(body: &'static str) -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, h)
}

#[test]
fn http_refuses_loopback_unless_allowed() {
    let sb = Sandbox::new();
    let (port, server) = serve_once("hello from loopback");
    let plan = format!(
        "version: 1\nname: h\noutputs: {{body: \"${{steps.get.output.body}}\"}}\nsteps:\n  - id: get\n    tool: http.get\n    with: {{url: \"http://127.0.0.1:{port}/\"}}\n"
    );
    let v = run_json(&sb, "h.yaml", &plan, &[], 1);
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("refused") && e.contains("127.0.0.1"), "{e}");
    let v = run_json(&sb, "h.yaml", &plan, &["--allow-private-net"], 0);
    assert_eq!(v["outputs"]["body"], "hello from loopback");
    server.join().unwrap();
    // A private address is refused by default too.
    let plan = "version: 1\nname: h2\nsteps:\n  - id: get\n    tool: http.get\n    with: {url: \"http://10.1.2.3/\"}\n";
    let v = run_json(&sb, "h2.yaml", plan, &[], 1);
    assert!(v["error"].as_str().unwrap().contains("refused"), "{v}");
}

#[test]
fn time_math_and_geo_through_a_plan() {
    let sb = Sandbox::new();
    let v = run_json(
        &sb,
        "t.yaml",
        r#"version: 1
name: t
outputs:
  tz: ${steps.now.output.tz}
  sum: ${steps.calc.output.value}
  km: ${steps.far.output.km}
steps:
  - id: now
    tool: time.now
    with: {tz: Asia/Tokyo}
  - id: calc
    tool: math.eval
    with: {expression: "2 * (3 + 4) ^ 2"}
  - id: far
    tool: geo.distance
    with: {from: Lisbon, to: Tokyo}
"#,
        &[],
        0,
    );
    assert_eq!(v["outputs"]["tz"], "Asia/Tokyo");
    assert_eq!(v["outputs"]["sum"], 98.0);
    let km = v["outputs"]["km"].as_f64().unwrap();
    assert!((11_000.0..11_300.0).contains(&km), "{km}");
    let f = sb.write(
        "bad.yaml",
        "version: 1\nname: b\nsteps:\n  - id: now\n    tool: time.now\n    with: {tz: Mars/Olympus}\n",
    );
    let out = sb.run(&["run", f.to_str().unwrap()]).expect_code(1);
    assert!(out.stderr().contains("tz"), "{}", out.stderr());
}
