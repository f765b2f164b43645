//! `file.read`, `file.write`, `file.list`: file access confined to the workspace directory.
//!
//! Two layers. [`confine`] checks the path first and explains a refusal: absolute paths, a
//! `..` that climbs above the workspace, and any symlink along the path (parents and the final
//! component) whose target lies outside the workspace or does not exist. Then the I/O itself goes
//! through a `cap_std::fs::Dir` opened on the workspace, which resolves every component
//! relative to that directory and cannot leave it, so a symlink swapped in between the check and
//! the open is still refused.

use std::io;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::ToolError;

mod list;
mod read;
mod write;

pub use list::{List, ListArgs, ListEntry, ListOutput};
pub use read::{Read, ReadArgs, ReadOutput};
pub use write::{Write, WriteArgs, WriteMode, WriteOutput};

/// A path checked against the workspace.
#[derive(Debug)]
pub struct Confined {
    /// The workspace, canonical.
    pub root: PathBuf,
    /// The path relative to the workspace, normalized (no `.`, no `..`); empty for the
    /// workspace itself. This is what users see.
    pub rel: PathBuf,
    /// The same file with the symlinks along the path resolved (all inside the workspace),
    /// relative to `root`; the I/O goes through this, so cap-std never has to follow a link.
    resolved: PathBuf,
}

impl Confined {
    /// The relative path as shown to users (`.` for the workspace itself).
    pub fn shown(&self) -> String {
        if self.rel.as_os_str().is_empty() {
            ".".into()
        } else {
            self.rel.to_string_lossy().into_owned()
        }
    }

    /// The relative path for cap-std (`.` for the workspace itself).
    pub(crate) fn cap_path(&self) -> &Path {
        if self.resolved.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &self.resolved
        }
    }

    /// The workspace as a capability: every path opened through it stays inside.
    pub fn dir(&self, tool: &str) -> Result<Dir, ToolError> {
        Dir::open_ambient_dir(&self.root, ambient_authority())
            .map_err(|e| ToolError::failed(tool, format!("cannot open workspace `{}`: {e}", self.root.display())))
    }
}

pub(crate) fn bad_path(tool: &str, message: impl Into<String>) -> ToolError {
    ToolError::InvalidArguments {
        tool: tool.into(),
        field: "path".into(),
        message: message.into(),
    }
}

/// Check `path` (relative to `workspace`) and normalize it. Refusals are [`ToolError::Denied`]
/// with the reason.
pub fn confine(tool: &str, workspace: &Path, path: &str) -> Result<Confined, ToolError> {
    let denied = |reason: String| ToolError::denied(tool, format!("path `{path}`: {reason}"));
    if path.contains('\0') {
        return Err(bad_path(tool, "the path contains a NUL byte"));
    }
    let mut rel = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(s) => rel.push(s),
            Component::CurDir => {}
            Component::ParentDir => {
                if !rel.pop() {
                    return Err(denied("`..` leads outside the workspace".into()));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(denied(
                    "absolute paths are not allowed; give a path relative to the workspace".into(),
                ));
            }
        }
    }
    let root = std::fs::canonicalize(workspace)
        .map_err(|e| ToolError::failed(tool, format!("workspace `{}` is not usable: {e}", workspace.display())))?;
    let mut cur = root.clone();
    let mut shown = PathBuf::new();
    let comps: Vec<_> = rel.components().collect();
    for (i, c) in comps.iter().enumerate() {
        cur.push(c);
        shown.push(c);
        let meta = match std::fs::symlink_metadata(&cur) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                cur.extend(&comps[i + 1..]); // the rest does not exist yet
                break;
            }
            Err(e) => return Err(io_error(tool, &shown.to_string_lossy(), e)),
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        match std::fs::canonicalize(&cur) {
            Ok(target) if target.starts_with(&root) => cur = target,
            Ok(target) => {
                return Err(denied(format!(
                    "`{}` is a symlink to `{}`, outside the workspace",
                    shown.display(),
                    target.display()
                )));
            }
            Err(_) => {
                let target = std::fs::read_link(&cur).unwrap_or_default();
                return Err(denied(format!(
                    "`{}` is a symlink to `{}`, which does not exist; a symlink must lead to an existing \
                     file inside the workspace",
                    shown.display(),
                    target.display()
                )));
            }
        }
    }
    let resolved = match cur.strip_prefix(&root) {
        Ok(r) => r.to_path_buf(),
        Err(_) => return Err(denied("it resolves outside the workspace".into())),
    };
    Ok(Confined { root, rel, resolved })
}

/// `c` does not exist: say so, with the closest name in its directory as a hint.
pub(crate) fn not_found(tool: &str, dir: &Dir, c: &Confined) -> ToolError {
    let shown = c.shown();
    let hint = c.resolved.file_name().and_then(|name| {
        let parent = c.resolved.parent().filter(|p| !p.as_os_str().is_empty());
        let entries = dir.read_dir(parent.unwrap_or(Path::new("."))).ok()?;
        let names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .take(10_000)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let best = crate::closest(&name.to_string_lossy(), names.iter().map(String::as_str))?;
        Some(c.rel.with_file_name(best).to_string_lossy().into_owned())
    });
    match hint {
        Some(h) => bad_path(
            tool,
            format!("`{shown}` does not exist in the workspace; did you mean `{h}`?"),
        ),
        None => bad_path(tool, format!("`{shown}` does not exist in the workspace")),
    }
}

/// Turn an I/O error on `shown` into a tool error a user can act on.
pub(crate) fn io_error(tool: &str, shown: &str, e: io::Error) -> ToolError {
    match e.kind() {
        io::ErrorKind::NotFound => bad_path(tool, format!("`{shown}` does not exist in the workspace")),
        io::ErrorKind::PermissionDenied => ToolError::denied(tool, format!("path `{shown}`: {e}")),
        io::ErrorKind::NotADirectory => bad_path(tool, format!("a parent of `{shown}` is a file, not a directory")),
        io::ErrorKind::IsADirectory => bad_path(tool, format!("`{shown}` is a directory")),
        _ => ToolError::failed(tool, format!("`{shown}`: {e}")),
    }
}

/// Run blocking file work off the async executor.
pub(crate) async fn blocking<T: Send + 'static>(
    tool: &'static str,
    f: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ToolError::failed(tool, format!("file task failed: {e}")))?
}
