//! `file.write`: write a text file inside the workspace.

use std::io::Write as _;

use async_trait::async_trait;
use cap_std::fs::OpenOptions;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{bad_path, blocking, confine, io_error};
use crate::{Tool, ToolContext, ToolError};

/// Largest content one call writes, in bytes.
pub const MAX_WRITE_BYTES: usize = 16 * 1024 * 1024;

/// `file.write`: creates, replaces or appends to a file in the workspace.
pub struct Write;

/// What to do when the file already exists: `overwrite` replaces its content, `append` adds
/// to its end (both create a missing file), `create` fails if it exists.
// No doc comments on the variants: schemars then emits a plain `enum`, whose validation error
// lists the accepted values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    #[default]
    Overwrite,
    Append,
    Create,
}

/// Arguments of `file.write`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    /// Path relative to the workspace, e.g. `out/report.md`. Missing parent directories are
    /// created. Absolute paths, `..` above the workspace and symlinks leading out are refused.
    #[schemars(length(min = 1, max = 4096))]
    pub path: String,
    /// Text to write (UTF-8), at most 16 MiB.
    #[schemars(length(max = 16_777_216))]
    pub content: String,
    /// `overwrite` (default), `append`, or `create` (fail if the file exists).
    #[serde(default)]
    pub mode: WriteMode,
}

/// Output of `file.write`.
#[derive(Debug, Serialize)]
pub struct WriteOutput {
    /// The path written, relative to the workspace.
    pub path: String,
    /// Bytes written by this call.
    pub bytes_written: u64,
    /// Size of the file afterwards.
    pub size: u64,
    /// Whether the file was created by this call.
    pub created: bool,
}

fn write(workspace: &std::path::Path, args: WriteArgs) -> Result<WriteOutput, ToolError> {
    const TOOL: &str = "file.write";
    if args.content.len() > MAX_WRITE_BYTES {
        return Err(ToolError::InvalidArguments {
            tool: TOOL.into(),
            field: "content".into(),
            message: format!(
                "content is {} bytes; the limit is {MAX_WRITE_BYTES}",
                args.content.len()
            ),
        });
    }
    let c = confine(TOOL, workspace, &args.path)?;
    let shown = c.shown();
    if c.rel.as_os_str().is_empty() {
        return Err(bad_path(TOOL, "the path names the workspace itself; give a file name"));
    }
    let dir = c.dir(TOOL)?;
    let existed = match dir.metadata(c.cap_path()) {
        Ok(m) if m.is_dir() => return Err(bad_path(TOOL, format!("`{shown}` is a directory"))),
        Ok(m) if !m.is_file() => return Err(bad_path(TOOL, format!("`{shown}` is not a regular file"))),
        Ok(_) if args.mode == WriteMode::Create => {
            return Err(bad_path(
                TOOL,
                format!("`{shown}` already exists (mode `create`); use mode `overwrite` or `append`"),
            ));
        }
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_error(TOOL, &shown, e)),
    };
    if let Some(parent) = c.cap_path().parent().filter(|p| !p.as_os_str().is_empty()) {
        dir.create_dir_all(parent).map_err(|e| io_error(TOOL, &shown, e))?;
    }
    let mut opts = OpenOptions::new();
    opts.write(true);
    match args.mode {
        WriteMode::Overwrite => opts.create(true).truncate(true),
        WriteMode::Append => opts.create(true).append(true),
        WriteMode::Create => opts.create_new(true),
    };
    let mut file = dir.open_with(c.cap_path(), &opts).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => bad_path(TOOL, format!("`{shown}` already exists (mode `create`)")),
        _ => io_error(TOOL, &shown, e),
    })?;
    file.write_all(args.content.as_bytes())
        .and_then(|_| file.flush())
        .map_err(|e| io_error(TOOL, &shown, e))?;
    let size = file
        .metadata()
        .map(|m| m.len())
        .map_err(|e| io_error(TOOL, &shown, e))?;
    Ok(WriteOutput {
        path: shown,
        bytes_written: args.content.len() as u64,
        size,
        created: !existed,
    })
}

#[async_trait]
impl Tool for Write {
    type Args = WriteArgs;
    type Output = WriteOutput;

    fn name(&self) -> &str {
        "file.write"
    }
    fn description(&self) -> String {
        "Writes text to a file inside the workspace: `overwrite` (default) replaces it, `append` adds to \
         the end, `create` fails if it exists. Parent directories are created. Paths are relative to \
         the workspace."
            .into()
    }
    fn side_effects(&self) -> bool {
        true
    }
    async fn call(&self, args: WriteArgs, cx: &ToolContext) -> Result<WriteOutput, ToolError> {
        let ws = cx.workspace.clone();
        blocking("file.write", move || write(&ws, args)).await
    }
}
