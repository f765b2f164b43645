//! `file.list`: list a directory inside the workspace.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{bad_path, blocking, confine, io_error, not_found};
use crate::{Tool, ToolContext, ToolError};

/// Most entries one call returns.
pub const MAX_ENTRIES: usize = 1000;

/// `file.list`: the entries of a directory in the workspace.
pub struct List;

/// Arguments of `file.list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Directory relative to the workspace [default: `.`, the workspace itself].
    #[serde(default = "dot")]
    #[schemars(length(min = 1, max = 4096))]
    pub path: String,
    /// Include names starting with `.`.
    #[serde(default)]
    pub hidden: bool,
}

fn dot() -> String {
    ".".into()
}

/// What kind of entry a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One directory entry.
#[derive(Debug, Serialize)]
pub struct ListEntry {
    /// File name.
    pub name: String,
    /// `file`, `dir`, `symlink` (not followed) or `other`.
    pub kind: EntryKind,
    /// Size in bytes, for files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Output of `file.list`.
#[derive(Debug, Serialize)]
pub struct ListOutput {
    /// The directory listed, relative to the workspace.
    pub path: String,
    /// Entries sorted by name.
    pub entries: Vec<ListEntry>,
    /// Set when there were more than 1000 entries and the rest were left out.
    pub truncated: bool,
}

fn list(workspace: &std::path::Path, args: ListArgs) -> Result<ListOutput, ToolError> {
    const TOOL: &str = "file.list";
    let c = confine(TOOL, workspace, &args.path)?;
    let shown = c.shown();
    let dir = c.dir(TOOL)?;
    let meta = dir.metadata(c.cap_path()).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => not_found(TOOL, &dir, &c),
        _ => io_error(TOOL, &shown, e),
    })?;
    if !meta.is_dir() {
        return Err(bad_path(
            TOOL,
            format!("`{shown}` is not a directory; use file.read for files"),
        ));
    }
    let mut entries = Vec::new();
    let mut truncated = false;
    for entry in dir.read_dir(c.cap_path()).map_err(|e| io_error(TOOL, &shown, e))? {
        let entry = entry.map_err(|e| io_error(TOOL, &shown, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !args.hidden && name.starts_with('.') {
            continue;
        }
        if entries.len() == MAX_ENTRIES {
            truncated = true;
            break;
        }
        let ft = entry.file_type().map_err(|e| io_error(TOOL, &shown, e))?;
        let (kind, size) = if ft.is_symlink() {
            (EntryKind::Symlink, None)
        } else if ft.is_dir() {
            (EntryKind::Dir, None)
        } else if ft.is_file() {
            (EntryKind::File, entry.metadata().ok().map(|m| m.len()))
        } else {
            (EntryKind::Other, None)
        };
        entries.push(ListEntry { name, kind, size });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ListOutput {
        path: shown,
        entries,
        truncated,
    })
}

#[async_trait]
impl Tool for List {
    type Args = ListArgs;
    type Output = ListOutput;

    fn name(&self) -> &str {
        "file.list"
    }
    fn description(&self) -> String {
        "Lists a directory inside the workspace (default: the workspace itself): each entry's name, kind \
         (file, dir, symlink) and size, sorted by name, at most 1000."
            .into()
    }
    async fn call(&self, args: ListArgs, cx: &ToolContext) -> Result<ListOutput, ToolError> {
        let ws = cx.workspace.clone();
        blocking("file.list", move || list(&ws, args)).await
    }
}
