//! Streaming a response body under a size cap and a deadline, and turning it into text.

use std::time::Duration;

use tokio::time::Instant;

use super::{TOOL, chain, timeout};
use crate::ToolError;

/// A body read as text.
pub struct Text {
    pub text: String,
    pub bytes: u64,
    pub truncated: bool,
}

/// Media types that are text even though they are not `text/*`.
fn is_textual(ct: &str) -> bool {
    let mime = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime.starts_with("text/")
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
        || matches!(
            mime.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/ecmascript"
                | "application/x-www-form-urlencoded"
                | "application/yaml"
                | "application/x-yaml"
                | "application/toml"
                | "application/x-ndjson"
                | "application/graphql"
                | "image/svg+xml"
        )
}

/// Read at most `cap` bytes of `resp`'s body, chunk by chunk, and decode it as UTF-8.
/// A declared non-text content type is refused before reading anything.
pub async fn read_text(
    mut resp: reqwest::Response,
    content_type: Option<&str>,
    cap: u64,
    deadline: Instant,
    total: Duration,
) -> Result<Text, ToolError> {
    let url = resp.url().clone();
    if let Some(ct) = content_type
        && !is_textual(ct)
    {
        return Err(ToolError::failed(
            TOOL,
            format!("{url} returned `{ct}`, not text; http.get returns text bodies only"),
        ));
    }
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    let mut buf: Vec<u8> = Vec::with_capacity(cap.min(64 * 1024));
    let mut truncated = false;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Err(_) => return Err(timeout(total)),
            Ok(Err(e)) if e.is_timeout() => return Err(timeout(total)),
            Ok(Err(e)) => {
                return Err(ToolError::failed(
                    TOOL,
                    format!("{url}: reading the body: {}", chain(&e)),
                ));
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(c))) => c,
        };
        let room = cap - buf.len();
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            truncated = true;
            break; // dropping `resp` closes the connection: the rest is never read
        }
        buf.extend_from_slice(&chunk);
    }
    let bytes = buf.len() as u64;
    let text = match String::from_utf8(buf) {
        Ok(t) => t,
        // A cut in the middle of a character: keep the complete ones.
        Err(e) if truncated && e.utf8_error().error_len().is_none() => {
            let valid = e.utf8_error().valid_up_to();
            let mut b = e.into_bytes();
            b.truncate(valid);
            String::from_utf8(b).unwrap_or_default()
        }
        Err(e) if content_type.is_some() => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        Err(e) => {
            return Err(ToolError::failed(
                TOOL,
                format!(
                    "{url}: the body is not UTF-8 text (invalid byte at offset {}) and has no content type",
                    e.utf8_error().valid_up_to()
                ),
            ));
        }
    };
    if content_type.is_none() && text.contains('\0') {
        return Err(ToolError::failed(
            TOOL,
            format!("{url}: the body looks binary (NUL bytes)"),
        ));
    }
    Ok(Text { text, bytes, truncated })
}
