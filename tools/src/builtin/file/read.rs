//! `file.read`: read a UTF-8 text file from the workspace.

use std::io::Read as _;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{bad_path, blocking, confine, io_error, not_found};
use crate::{Tool, ToolContext, ToolError};

/// Default largest file `file.read` returns, in bytes.
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024;
/// Largest `max_bytes` a call may ask for.
pub const MAX_BYTES_LIMIT: u64 = 16 * 1024 * 1024;

/// `file.read`: returns the text of a file in the workspace.
pub struct Read;

/// Arguments of `file.read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadArgs {
    /// Path relative to the workspace, e.g. `notes/plan.md`. Absolute paths, `..` above the
    /// workspace and symlinks leading out of it are refused.
    #[schemars(length(min = 1, max = 4096))]
    pub path: String,
    /// Refuse files larger than this many bytes [default: 1 MiB, at most 16 MiB].
    #[serde(default)]
    #[schemars(range(min = 1, max = 16_777_216))]
    pub max_bytes: Option<u64>,
}

/// Output of `file.read`.
#[derive(Debug, Serialize)]
pub struct ReadOutput {
    /// The path read, relative to the workspace.
    pub path: String,
    /// The file's content.
    pub text: String,
    /// Size in bytes.
    pub bytes: u64,
}

fn read(workspace: &std::path::Path, args: ReadArgs) -> Result<ReadOutput, ToolError> {
    const TOOL: &str = "file.read";
    let cap = args.max_bytes.unwrap_or(DEFAULT_MAX_BYTES).clamp(1, MAX_BYTES_LIMIT);
    let c = confine(TOOL, workspace, &args.path)?;
    let shown = c.shown();
    let dir = c.dir(TOOL)?;
    // Check the kind before opening: opening a FIFO for reading would block.
    let meta = dir.metadata(c.cap_path()).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => not_found(TOOL, &dir, &c),
        _ => io_error(TOOL, &shown, e),
    })?;
    if meta.is_dir() {
        return Err(bad_path(
            TOOL,
            format!("`{shown}` is a directory; use file.list to see what it holds"),
        ));
    }
    if !meta.is_file() {
        return Err(bad_path(TOOL, format!("`{shown}` is not a regular file")));
    }
    let too_big = |size: u64| {
        bad_path(
            TOOL,
            format!("`{shown}` is {size} bytes, over the {cap}-byte limit (`max_bytes`, at most {MAX_BYTES_LIMIT})"),
        )
    };
    if meta.len() > cap {
        return Err(too_big(meta.len()));
    }
    let file = dir.open(c.cap_path()).map_err(|e| io_error(TOOL, &shown, e))?;
    let mut buf = Vec::with_capacity(meta.len() as usize);
    // Read one byte past the cap so a file that grew since the check is still caught.
    file.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_error(TOOL, &shown, e))?;
    if buf.len() as u64 > cap {
        return Err(too_big(buf.len() as u64));
    }
    let bytes = buf.len() as u64;
    let text = String::from_utf8(buf).map_err(|e| {
        bad_path(
            TOOL,
            format!(
                "`{shown}` is not UTF-8 text (invalid byte at offset {}); file.read returns text only",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    if text.contains('\0') {
        return Err(bad_path(
            TOOL,
            format!("`{shown}` looks binary (it contains NUL bytes); file.read returns text only"),
        ));
    }
    Ok(ReadOutput {
        path: shown,
        text,
        bytes,
    })
}

#[async_trait]
impl Tool for Read {
    type Args = ReadArgs;
    type Output = ReadOutput;

    fn name(&self) -> &str {
        "file.read"
    }
    fn description(&self) -> String {
        "Reads a UTF-8 text file inside the workspace and returns its text and size in bytes. Paths are \
         relative to the workspace; binary files and files over `max_bytes` (default 1 MiB) are refused."
            .into()
    }
    async fn call(&self, args: ReadArgs, cx: &ToolContext) -> Result<ReadOutput, ToolError> {
        let ws = cx.workspace.clone();
        blocking("file.read", move || read(&ws, args)).await
    }
}
