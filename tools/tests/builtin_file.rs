//! `file.read`, `file.write`, `file.list`: confinement to the workspace, modes, limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::symlink;

use common::{call, fails};
use serde_json::json;
use stepwise_tools::{ToolContext, ToolError};

/// A workspace inside a temporary directory that also holds a file outside it.
struct Setup {
    _tmp: tempfile::TempDir,
    ws: std::path::PathBuf,
    outside: std::path::PathBuf,
    cx: ToolContext,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let outside = tmp.path().join("secret.txt");
    std::fs::write(&outside, "top secret").unwrap();
    let cx = ToolContext::new(&ws);
    Setup {
        _tmp: tmp,
        ws,
        outside,
        cx,
    }
}

fn denied(e: &ToolError, needle: &str) {
    match e {
        ToolError::Denied { reason, .. } => assert!(reason.contains(needle), "`{reason}` lacks `{needle}`"),
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test]
async fn write_then_read_round_trips_and_creates_parents() {
    let s = setup();
    let w = call(
        "file.write",
        json!({"path": "out/a/b.txt", "content": "héllo\n"}),
        &s.cx,
    )
    .await
    .unwrap();
    assert_eq!(w["path"], "out/a/b.txt");
    assert_eq!(w["bytes_written"], 7);
    assert_eq!(w["created"], true);
    assert_eq!(std::fs::read_to_string(s.ws.join("out/a/b.txt")).unwrap(), "héllo\n");
    let r = call("file.read", json!({"path": "./out/a/../a/b.txt"}), &s.cx)
        .await
        .unwrap();
    assert_eq!(r["text"], "héllo\n");
    assert_eq!(r["bytes"], 7);
    assert_eq!(r["path"], "out/a/b.txt");
}

#[tokio::test]
async fn modes_overwrite_append_create() {
    let s = setup();
    call(
        "file.write",
        json!({"path": "log.txt", "content": "one\n", "mode": "create"}),
        &s.cx,
    )
    .await
    .unwrap();
    let w = call(
        "file.write",
        json!({"path": "log.txt", "content": "two\n", "mode": "append"}),
        &s.cx,
    )
    .await
    .unwrap();
    assert_eq!(w["size"], 8);
    assert_eq!(w["created"], false);
    assert_eq!(std::fs::read_to_string(s.ws.join("log.txt")).unwrap(), "one\ntwo\n");
    let e = fails(
        call(
            "file.write",
            json!({"path": "log.txt", "content": "x", "mode": "create"}),
            &s.cx,
        )
        .await,
    );
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(std::fs::read_to_string(s.ws.join("log.txt")).unwrap(), "one\ntwo\n");
    call("file.write", json!({"path": "log.txt", "content": "three"}), &s.cx)
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(s.ws.join("log.txt")).unwrap(), "three");
    let e = fails(
        call(
            "file.write",
            json!({"path": "log.txt", "content": "x", "mode": "replace"}),
            &s.cx,
        )
        .await,
    );
    assert!(
        matches!(&e, ToolError::InvalidArguments { field, .. } if field == "mode"),
        "{e}"
    );
}

#[tokio::test]
async fn absolute_paths_and_dotdot_escapes_are_refused() {
    let s = setup();
    let abs = s.outside.to_string_lossy().to_string();
    denied(
        &fails(call("file.read", json!({ "path": abs }), &s.cx).await),
        "absolute paths are not allowed",
    );
    denied(
        &fails(call("file.write", json!({"path": "/tmp/x", "content": "x"}), &s.cx).await),
        "absolute",
    );
    denied(
        &fails(call("file.read", json!({"path": "../secret.txt"}), &s.cx).await),
        "`..` leads outside",
    );
    denied(
        &fails(call("file.write", json!({"path": "a/../../x.txt", "content": "x"}), &s.cx).await),
        "`..`",
    );
    denied(&fails(call("file.list", json!({"path": ".."}), &s.cx).await), "`..`");
    assert!(!s.ws.parent().unwrap().join("x.txt").exists());
}

#[tokio::test]
async fn symlinks_leading_out_are_refused_anywhere_on_the_path() {
    let s = setup();
    let outdir = s.outside.parent().unwrap().join("elsewhere");
    std::fs::create_dir(&outdir).unwrap();
    symlink(&s.outside, s.ws.join("leak.txt")).unwrap(); // final component
    symlink(&outdir, s.ws.join("door")).unwrap(); // a parent directory
    symlink(s.outside.parent().unwrap().join("missing"), s.ws.join("dangling")).unwrap();
    let e = fails(call("file.read", json!({"path": "leak.txt"}), &s.cx).await);
    denied(&e, "`leak.txt` is a symlink to");
    denied(&e, "outside the workspace");
    denied(
        &fails(call("file.write", json!({"path": "leak.txt", "content": "pwned"}), &s.cx).await),
        "outside",
    );
    assert_eq!(std::fs::read_to_string(&s.outside).unwrap(), "top secret");
    denied(
        &fails(call("file.write", json!({"path": "door/new.txt", "content": "x"}), &s.cx).await),
        "`door`",
    );
    assert!(!outdir.join("new.txt").exists());
    denied(
        &fails(call("file.list", json!({"path": "door"}), &s.cx).await),
        "`door`",
    );
    // A dangling link could be followed by a write to create a file outside.
    denied(
        &fails(call("file.write", json!({"path": "dangling", "content": "x"}), &s.cx).await),
        "does not exist",
    );
    assert!(!s.outside.parent().unwrap().join("missing").exists());
}

#[tokio::test]
async fn symlinks_inside_the_workspace_work() {
    let s = setup();
    std::fs::create_dir(s.ws.join("real")).unwrap();
    std::fs::write(s.ws.join("real/f.txt"), "inside").unwrap();
    symlink(s.ws.join("real"), s.ws.join("alias")).unwrap();
    let r = call("file.read", json!({"path": "alias/f.txt"}), &s.cx).await.unwrap();
    assert_eq!(r["text"], "inside");
    call("file.write", json!({"path": "alias/g.txt", "content": "ok"}), &s.cx)
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(s.ws.join("real/g.txt")).unwrap(), "ok");
}

#[tokio::test]
async fn read_refuses_binary_large_missing_and_directories() {
    let s = setup();
    std::fs::write(s.ws.join("img.bin"), [0x89, b'P', b'N', b'G', 0xff, 0x00]).unwrap();
    let e = fails(call("file.read", json!({"path": "img.bin"}), &s.cx).await);
    assert!(e.to_string().contains("not UTF-8 text"), "{e}");
    std::fs::write(s.ws.join("big.txt"), "x".repeat(5000)).unwrap();
    let e = fails(call("file.read", json!({"path": "big.txt", "max_bytes": 1000}), &s.cx).await);
    assert!(e.to_string().contains("5000 bytes, over the 1000-byte limit"), "{e}");
    let r = call("file.read", json!({"path": "big.txt", "max_bytes": 5000}), &s.cx)
        .await
        .unwrap();
    assert_eq!(r["bytes"], 5000);
    let e = fails(call("file.read", json!({"path": "nope.txt"}), &s.cx).await);
    assert!(
        matches!(&e, ToolError::InvalidArguments { field, message, .. }
        if field == "path" && message.contains("`nope.txt` does not exist")),
        "{e}"
    );
    std::fs::create_dir(s.ws.join("notes")).unwrap();
    std::fs::write(s.ws.join("notes/plan.md"), "# plan").unwrap();
    let e = fails(call("file.read", json!({"path": "notes/plna.md"}), &s.cx).await);
    assert!(e.to_string().contains("did you mean `notes/plan.md`?"), "{e}");
    std::fs::create_dir(s.ws.join("d")).unwrap();
    let e = fails(call("file.read", json!({"path": "d"}), &s.cx).await);
    assert!(e.to_string().contains("is a directory"), "{e}");
}

#[tokio::test]
async fn list_shows_entries_with_kinds_and_sizes() {
    let s = setup();
    std::fs::write(s.ws.join("b.txt"), "12345").unwrap();
    std::fs::create_dir(s.ws.join("a")).unwrap();
    std::fs::write(s.ws.join(".hidden"), "").unwrap();
    symlink(s.ws.join("b.txt"), s.ws.join("c")).unwrap();
    let v = call("file.list", json!({}), &s.cx).await.unwrap();
    assert_eq!(v["path"], ".");
    assert_eq!(
        v["entries"],
        json!([{"name": "a", "kind": "dir"}, {"name": "b.txt", "kind": "file", "size": 5}, {"name": "c", "kind": "symlink"}])
    );
    assert_eq!(v["truncated"], false);
    let v = call("file.list", json!({"hidden": true}), &s.cx).await.unwrap();
    assert_eq!(v["entries"][0]["name"], ".hidden");
}
