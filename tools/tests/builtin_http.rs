//! `http.get` against a real HTTP server on 127.0.0.1, and its address refusals (which never
//! connect anywhere).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{call, fails};
use serde_json::json;
use stepwise_tools::builtin::http::non_public;
use stepwise_tools::{NetPolicy, ToolContext, ToolError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A tiny HTTP/1.1 server with a few canned routes. Returns its port and a request counter.
async fn server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(sock));
        }
    });
    (port, hits)
}

async fn serve(mut sock: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let reply = |status: &str, ct: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let out = match path.as_str() {
        "/hello" => reply("200 OK", "text/plain; charset=utf-8", "hello wörld"),
        "/echo-ua" => {
            let ua = head
                .lines()
                .find(|l| l.to_lowercase().starts_with("x-test:"))
                .unwrap_or("")
                .to_string();
            reply("200 OK", "text/plain", &ua)
        }
        "/json" => reply("404 Not Found", "application/json", r#"{"error":"nope"}"#),
        "/redirect" => "HTTP/1.1 302 Found\r\nLocation: /hello\r\nContent-Length: 0\r\n\r\n".into(),
        "/loop" => "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".into(),
        "/to-ftp" => "HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/x\r\nContent-Length: 0\r\n\r\n".into(),
        "/png" => reply("200 OK", "image/png", "\u{89}PNG"),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            reply("200 OK", "text/plain", "late")
        }
        "/endless" => {
            // No length: the body ends when the connection closes, which we never do first.
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                .await;
            let chunk = vec![b'a'; 64 * 1024];
            for _ in 0..2048 {
                if sock.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            return;
        }
        _ => reply("404 Not Found", "text/plain", "no such route"),
    };
    let _ = sock.write_all(out.as_bytes()).await;
    let _ = sock.shutdown().await;
}

fn cx(allow_private: bool, max_bytes: u64, timeout_ms: u64) -> ToolContext {
    let mut cx = ToolContext::new(std::env::temp_dir());
    cx.net = NetPolicy {
        allow_private,
        max_response_bytes: max_bytes,
        timeout: Duration::from_millis(timeout_ms),
    };
    cx
}

#[tokio::test]
async fn non_public_addresses_are_refused_before_connecting() {
    let (port, hits) = server().await;
    let strict = cx(false, 1 << 20, 5000);
    for url in [
        format!("http://127.0.0.1:{port}/hello"),
        format!("http://localhost:{port}/hello"),
        format!("http://[::ffff:127.0.0.1]:{port}/hello"),
        format!("http://2130706433:{port}/hello"), // 127.0.0.1 as one decimal number
        "http://10.1.2.3/".into(),
        "http://192.168.0.1/".into(),
        "http://100.64.0.1/".into(),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://[::1]/".into(),
        "http://[fd00::1]/".into(),
        "http://0.0.0.0/".into(),
    ] {
        let e = fails(call("http.get", json!({ "url": url }), &strict).await);
        match &e {
            ToolError::Denied { reason, .. } => assert!(reason.contains("allow-private-net"), "{url}: {reason}"),
            other => panic!("{url}: expected a refusal, got {other}"),
        }
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a refused request reached the server");
    let e = fails(call("http.get", json!({"url": format!("http://localhost:{port}/")}), &strict).await);
    assert!(e.to_string().contains("`localhost` resolves to"), "{e}");
}

#[tokio::test]
async fn allowed_private_fetches_text_headers_and_follows_redirects() {
    let (port, _) = server().await;
    let open = cx(true, 1 << 20, 5000);
    let v = call(
        "http.get",
        json!({"url": format!("http://127.0.0.1:{port}/redirect")}),
        &open,
    )
    .await
    .unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["ok"], true);
    assert_eq!(v["body"], "hello wörld");
    assert_eq!(v["bytes"], 12);
    assert_eq!(v["truncated"], false);
    assert_eq!(v["redirects"], 1);
    assert_eq!(v["url"], format!("http://127.0.0.1:{port}/hello"));
    assert_eq!(v["content_type"], "text/plain; charset=utf-8");
    assert_eq!(v["headers"]["content-length"], "12");
    let v = call(
        "http.get",
        json!({"url": format!("http://localhost:{port}/json")}),
        &open,
    )
    .await
    .unwrap();
    assert_eq!((v["status"].clone(), v["ok"].clone()), (json!(404), json!(false)));
    assert_eq!(v["body"], r#"{"error":"nope"}"#);
    let v = call(
        "http.get",
        json!({"url": format!("http://127.0.0.1:{port}/echo-ua"), "headers": {"X-Test": "yes"}}),
        &open,
    )
    .await
    .unwrap();
    assert_eq!(v["body"].as_str().unwrap().to_lowercase(), "x-test: yes");
}

#[tokio::test]
async fn size_cap_is_enforced_while_streaming() {
    let (port, _) = server().await;
    let small = cx(true, 1000, 10_000);
    let start = Instant::now();
    let v = call(
        "http.get",
        json!({"url": format!("http://127.0.0.1:{port}/endless")}),
        &small,
    )
    .await
    .unwrap();
    assert_eq!(v["truncated"], true);
    assert_eq!(v["bytes"], 1000);
    assert_eq!(v["body"].as_str().unwrap().len(), 1000);
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
}

#[tokio::test]
async fn slow_servers_time_out() {
    let (port, _) = server().await;
    let quick = cx(true, 1 << 20, 300);
    let start = Instant::now();
    let e = fails(
        call(
            "http.get",
            json!({"url": format!("http://127.0.0.1:{port}/slow")}),
            &quick,
        )
        .await,
    );
    assert!(matches!(e, ToolError::Timeout { millis: 300, .. }), "{e}");
    assert!(e.is_retryable());
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
}

#[tokio::test]
async fn bad_schemes_binary_bodies_and_redirect_loops_are_errors() {
    let (port, _) = server().await;
    let open = cx(true, 1 << 20, 5000);
    let e = fails(call("http.get", json!({"url": "file:///etc/passwd"}), &open).await);
    assert!(
        matches!(&e, ToolError::InvalidArguments { field, .. } if field == "url"),
        "{e}"
    );
    let e = fails(call("http.get", json!({"url": "not a url"}), &open).await);
    assert!(
        matches!(&e, ToolError::InvalidArguments { field, .. } if field == "url"),
        "{e}"
    );
    let e = fails(
        call(
            "http.get",
            json!({"url": format!("http://127.0.0.1:{port}/png")}),
            &open,
        )
        .await,
    );
    assert!(e.to_string().contains("`image/png`, not text"), "{e}");
    let e = fails(
        call(
            "http.get",
            json!({"url": format!("http://127.0.0.1:{port}/loop")}),
            &open,
        )
        .await,
    );
    assert!(e.to_string().contains("more than 10 redirects"), "{e}");
    let e = fails(
        call(
            "http.get",
            json!({"url": format!("http://127.0.0.1:{port}/to-ftp")}),
            &open,
        )
        .await,
    );
    assert!(matches!(e, ToolError::Denied { .. }), "{e}");
}

#[test]
fn address_classes() {
    let refused = [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.1.1",
        "100.64.0.1",
        "100.127.255.255",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "fc00::1",
        "fe80::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "64:ff9b::a00:1",
        "2002:a00:1::",
    ];
    for a in refused {
        assert!(
            non_public(a.parse::<IpAddr>().unwrap()).is_some(),
            "{a} should be refused"
        );
    }
    for a in [
        "8.8.8.8",
        "100.128.0.1",
        "172.32.0.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ] {
        assert_eq!(non_public(a.parse::<IpAddr>().unwrap()), None, "{a} is public");
    }
    assert!(
        non_public("::ffff:192.168.0.1".parse().unwrap())
            .unwrap()
            .contains("IPv4-mapped")
    );
}
