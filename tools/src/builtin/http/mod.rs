//! `http.get`: fetch a text resource over HTTP(S) under the [`NetPolicy`](crate::NetPolicy).
//!
//! Every hop (the first request and each redirect, followed by hand) is checked: scheme
//! http/https only, host resolved here and every address vetted ([`addr::vet`]), then the
//! request is pinned to exactly those addresses, so DNS cannot answer differently a moment
//! later. No proxy from the environment is used. The body is streamed and cut at the size
//! cap; the whole call shares one deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use url::Url;

use crate::{Tool, ToolContext, ToolError};

mod addr;
mod body;

pub use addr::non_public;

/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 10;
const TOOL: &str = "http.get";

/// `http.get`: fetches a URL.
pub struct HttpGet;

/// Arguments of `http.get`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    /// Absolute `http://` or `https://` URL.
    #[schemars(length(min = 1, max = 8192))]
    pub url: String,
    /// Extra request headers, e.g. `{"Accept": "application/json"}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Output of `http.get`.
#[derive(Debug, Serialize)]
pub struct GetOutput {
    /// Final URL, after redirects.
    pub url: String,
    /// HTTP status code.
    pub status: u16,
    /// Whether the status is 2xx.
    pub ok: bool,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// A few response headers (content-type, content-length, last-modified, etag,
    /// cache-control, date, retry-after, location), lower-cased names.
    pub headers: BTreeMap<String, String>,
    /// Body text (UTF-8), cut at the size cap.
    pub body: String,
    /// Body bytes read.
    pub bytes: u64,
    /// Whether the body was cut at the size cap.
    pub truncated: bool,
    /// Redirects followed.
    pub redirects: usize,
}

const KEPT_HEADERS: [&str; 8] = [
    "cache-control",
    "content-length",
    "content-type",
    "date",
    "etag",
    "last-modified",
    "location",
    "retry-after",
];

fn bad(field: &str, message: String) -> ToolError {
    ToolError::InvalidArguments {
        tool: TOOL.into(),
        field: field.into(),
        message,
    }
}

fn parse_url(s: &str) -> Result<Url, ToolError> {
    let url = Url::parse(s.trim()).map_err(|e| bad("url", format!("`{s}` is not a valid absolute URL: {e}")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(bad(
            "url",
            format!("scheme `{other}` is not supported; use http or https"),
        )),
    }
}

fn request_headers(h: &BTreeMap<String, String>) -> Result<HeaderMap, ToolError> {
    let mut out = HeaderMap::new();
    for (k, v) in h {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| bad(&format!("headers.{k}"), format!("`{k}` is not a valid header name")))?;
        let value =
            HeaderValue::from_str(v).map_err(|_| bad(&format!("headers.{k}"), "not a valid header value".into()))?;
        out.insert(name, value);
    }
    Ok(out)
}

/// The error text of `e` with its causes (reqwest's own message is terse).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pub(crate) fn timeout(total: Duration) -> ToolError {
    ToolError::Timeout {
        tool: TOOL.into(),
        millis: total.as_millis() as u64,
    }
}

async fn fetch(args: GetArgs, cx: &ToolContext) -> Result<GetOutput, ToolError> {
    let total = cx.net.timeout;
    let deadline = Instant::now() + total;
    let headers = request_headers(&args.headers)?;
    let mut url = parse_url(&args.url)?;
    for redirects in 0..=MAX_REDIRECTS {
        let left = deadline.saturating_duration_since(Instant::now());
        let pins = addr::vet(&url, &cx.net, left).await?;
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("stepwise/", env!("CARGO_PKG_VERSION")))
            .timeout(left.max(Duration::from_millis(1)));
        if !pins.is_empty() {
            builder = builder.resolve_to_addrs(url.host_str().unwrap_or_default(), &pins);
        }
        let client = builder
            .build()
            .map_err(|e| ToolError::failed(TOOL, format!("cannot build HTTP client: {}", chain(&e))))?;
        let send = client.get(url.clone()).headers(headers.clone()).send();
        let resp = match tokio::time::timeout_at(deadline, send).await {
            Err(_) => return Err(timeout(total)),
            Ok(Err(e)) if e.is_timeout() => return Err(timeout(total)),
            Ok(Err(e)) => return Err(ToolError::failed(TOOL, format!("{url}: {}", chain(&e)))),
            Ok(Ok(r)) => r,
        };
        let location = resp.headers().get(reqwest::header::LOCATION).cloned();
        if resp.status().is_redirection()
            && let Some(loc) = location
        {
            if redirects == MAX_REDIRECTS {
                return Err(ToolError::failed(TOOL, format!("more than {MAX_REDIRECTS} redirects")));
            }
            let loc = loc.to_str().unwrap_or_default().to_string();
            let next = url
                .join(&loc)
                .map_err(|e| ToolError::failed(TOOL, format!("{url} redirected to an invalid URL `{loc}`: {e}")))?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(ToolError::denied(
                    TOOL,
                    format!("{url} redirected to `{next}`: only http and https"),
                ));
            }
            url = next;
            continue;
        }
        let kept = KEPT_HEADERS
            .iter()
            .filter_map(|h| Some((h.to_string(), resp.headers().get(*h)?.to_str().ok()?.to_string())))
            .collect::<BTreeMap<_, _>>();
        let content_type = kept.get("content-type").cloned();
        let status = resp.status();
        let body = body::read_text(
            resp,
            content_type.as_deref(),
            cx.net.max_response_bytes,
            deadline,
            total,
        )
        .await?;
        return Ok(GetOutput {
            url: url.to_string(),
            status: status.as_u16(),
            ok: status.is_success(),
            content_type,
            headers: kept,
            bytes: body.bytes,
            truncated: body.truncated,
            body: body.text,
            redirects,
        });
    }
    Err(ToolError::failed(TOOL, format!("more than {MAX_REDIRECTS} redirects")))
}

#[async_trait]
impl Tool for HttpGet {
    type Args = GetArgs;
    type Output = GetOutput;

    fn name(&self) -> &str {
        "http.get"
    }
    fn description(&self) -> String {
        "Fetches an http(s) URL with GET and returns status, a few headers and the body as text (cut at \
         the size cap, `truncated` says so). Follows redirects. Loopback and private addresses are \
         refused unless the network policy allows them."
            .into()
    }
    async fn call(&self, args: GetArgs, cx: &ToolContext) -> Result<GetOutput, ToolError> {
        tokio::select! {
            r = fetch(args, cx) => r,
            _ = cx.cancel.cancelled() => Err(ToolError::Cancelled { tool: TOOL.into() }),
        }
    }
}
