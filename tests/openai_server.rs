//! A small OpenAI-compatible chat-completions server on 127.0.0.1, for tests: real HTTP/1.1,
//! real server-sent events, answers decided by a script.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// What the server answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Assistant text.
    Text(String),
    /// One tool call.
    Call { name: String, arguments: Value },
    /// An HTTP error status with a body.
    Error(u16, String),
}

type Script = dyn Fn(&Value, usize) -> Reply + Send + Sync;

/// The running server. It stops when the test process ends.
pub struct ScriptedServer {
    /// Base URL with `/v1`.
    pub url: String,
    /// Every request body received, in order.
    pub requests: Arc<Mutex<Vec<Value>>>,
}

impl ScriptedServer {
    /// Start on a free port. `script(body, n)` decides the answer to the `n`-th request
    /// (from 0).
    pub fn start(script: impl Fn(&Value, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let reqs = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let script = script.clone();
                let reqs = reqs.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &*script, &reqs);
                });
            }
        });
        ScriptedServer { url, requests }
    }

    /// Number of requests received so far.
    pub fn count(&self) -> usize {
        self.requests.lock().map(|r| r.len()).unwrap_or(0)
    }
}

fn serve(conn: TcpStream, script: &Script, reqs: &Mutex<Vec<Value>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let mut out = conn;
    if !request_line.starts_with("POST /v1/chat/completions ") {
        return write_plain(&mut out, 404, "not found");
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return write_plain(&mut out, 400, &format!("bad JSON: {e}")),
    };
    let n = {
        let mut r = reqs.lock().expect("lock");
        r.push(body.clone());
        r.len() - 1
    };
    let reply = script(&body, n);
    if let Reply::Error(code, text) = &reply {
        return write_plain(&mut out, *code, text);
    }
    if body["stream"].as_bool() == Some(true) {
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
        )?;
        let mut ev = |v: Value| -> std::io::Result<()> {
            write!(out, "data: {v}\n\n")?;
            out.flush()
        };
        let finish = match &reply {
            Reply::Text(t) => {
                // A few pieces, like a real stream.
                for piece in t.split_inclusive(' ') {
                    ev(json!({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]}))?;
                }
                "stop"
            }
            Reply::Call { name, arguments } => {
                let args = arguments.to_string();
                let (a, b) = args.split_at(args.len() / 2);
                ev(
                    json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": format!("call_{n}"),
                    "type": "function", "function": {"name": name, "arguments": a}}]}, "finish_reason": null}]}),
                )?;
                ev(json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,
                    "function": {"arguments": b}}]}, "finish_reason": null}]}))?;
                "tool_calls"
            }
            Reply::Error(..) => "stop",
        };
        ev(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}))?;
        ev(json!({"choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}}))?;
        write!(out, "data: [DONE]\n\n")?;
        out.flush()
    } else {
        let message = match &reply {
            Reply::Text(t) => json!({"role": "assistant", "content": t}),
            Reply::Call { name, arguments } => json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": format!("call_{n}"), "type": "function", "function": {"name": name, "arguments": arguments.to_string()}}]}),
            Reply::Error(..) => json!({}),
        };
        let v = json!({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 42, "completion_tokens": 7}});
        let text = v.to_string();
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        )?;
        out.flush()
    }
}

fn write_plain(out: &mut TcpStream, code: u16, text: &str) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {code} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    out.flush()
}
