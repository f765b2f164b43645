//! Plugins before checking: a plan's tools are looked up in the registry, so the plugins it
//! declares (and those of the workflows it calls) are read and started first. The flow is
//! parse → start plugins → check; a plugin that fails to start is reported at its place in
//! the file, and a step naming a tool the plugin does not have gets the usual "unknown tool"
//! diagnostic with its position.
//!
//! Plugin manifests also live as files in a plugins directory (`<name>.yaml`), for
//! `stepwise mcp serve --plugins DIR` and other long-lived hosts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use stepwise_plugins::rhai_tool::ScriptOrigin;
use stepwise_plugins::{PluginDecl, PluginError, PluginHost, PluginSpec};

use super::diag::{Diagnostic, Diagnostics};
use super::yaml::{self, Pos, SpanMap};

/// A declared plugin and where its declaration is.
struct Declared {
    decl: PluginDecl,
    /// JSON pointer of the plugin in its file (`/plugins/clock`, or empty for a manifest file).
    at: String,
    spans: Arc<SpanMap>,
}

/// Start every plugin declared by the plan in `source` and by the workflows it calls.
/// Problems come back as diagnostics with positions; plugins that did start stay started.
pub async fn start_plan_plugins(
    host: &PluginHost,
    source: &str,
    file: &str,
    path: Option<&Path>,
) -> Result<(), Diagnostics> {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    if let Some(p) = path {
        seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()));
    }
    collect(source, file, path, &mut found, &mut seen);
    start_all(host, found).await
}

/// Read every manifest (`*.yaml`, `*.yml`, `*.json`) of a plugins directory; each file is
/// one plugin named after the file.
pub fn read_plugin_dir(dir: &Path) -> Result<Vec<PluginDecl>, Diagnostics> {
    let at = |p: &Path, msg: String| Diagnostic::new(&p.display().to_string(), Pos { line: 1, col: 1 }, msg);
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Diagnostics(vec![at(dir, format!("cannot read the plugins directory: {e}"))]))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for f in files {
        let name = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let display = f.display().to_string();
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                diags.push(at(&f, format!("cannot read: {e}")));
                continue;
            }
        };
        let (value, spans) = match yaml::parse(&text) {
            Ok(x) => x,
            Err(e) => {
                diags.push(Diagnostic::new(&display, e.pos, format!("syntax error: {}", e.message)));
                continue;
            }
        };
        match serde_path_to_error::deserialize::<_, PluginSpec>(value) {
            Ok(spec) => {
                let spans = Arc::new(spans);
                out.push(decl(&name, spec, &display, Some(&f), "", &spans));
            }
            Err(e) => {
                let pointer = format!("/{}", e.path().to_string().replace(['.', '['], "/").replace(']', ""));
                diags.push(
                    Diagnostic::new(
                        &display,
                        spans.pos(&pointer),
                        format!("plugin `{name}`: {}", e.into_inner()),
                    )
                    .with_hint("see `stepwise schema` (the `plugins` part) for the manifest fields"),
                );
            }
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(diags))
    }
}

/// Start plugins read from a directory.
pub async fn start_dir_plugins(host: &PluginHost, decls: Vec<PluginDecl>) -> Result<(), Diagnostics> {
    let mut diags = Vec::new();
    for d in decls {
        if let Err(e) = host.ensure(&d).await {
            diags.push(Diagnostic::new(&d.declared_in, Pos { line: 1, col: 1 }, e.to_string()));
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(diags))
    }
}

fn decl(name: &str, spec: PluginSpec, file: &str, path: Option<&Path>, at: &str, spans: &Arc<SpanMap>) -> PluginDecl {
    let script_path = format!("{at}/script");
    let inline_origin = match &spec {
        PluginSpec::Rhai(r) if r.script.is_some() => {
            let spans = spans.clone();
            Some(ScriptOrigin {
                file: file.to_string(),
                map: Some(Arc::new(move |l, c| {
                    let p = spans.pos_in_scalar(&script_path, l, c);
                    (p.line, p.col)
                })),
            })
        }
        _ => None,
    };
    PluginDecl {
        name: name.to_string(),
        spec,
        base_dir: path.and_then(Path::parent).map(Path::to_path_buf),
        declared_in: file.to_string(),
        inline_origin,
    }
}

/// Find the well-formed plugin declarations of a plan and, recursively, of the workflows
/// its steps call. Malformed ones are left for the checker to report.
fn collect(
    source: &str,
    file: &str,
    path: Option<&Path>,
    out: &mut Vec<(Declared, String)>,
    seen: &mut BTreeSet<PathBuf>,
) {
    let Ok((value, spans)) = yaml::parse(source) else {
        return;
    };
    let spans = Arc::new(spans);
    if let Some(Value::Object(plugins)) = value.get("plugins") {
        for (name, v) in plugins {
            if let Ok(spec) = serde_json::from_value::<PluginSpec>(v.clone()) {
                let at = format!("/plugins/{name}");
                out.push((
                    Declared {
                        decl: decl(name, spec, file, path, &at, &spans),
                        at,
                        spans: spans.clone(),
                    },
                    file.to_string(),
                ));
            }
        }
    }
    let base = path.and_then(Path::parent).unwrap_or(Path::new("."));
    let mut subs = Vec::new();
    if let Some(steps) = value.get("steps") {
        workflows_of(steps, &mut subs);
    }
    for rel in subs {
        let p = base.join(&rel);
        let canon = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if !seen.insert(canon) {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&p) {
            collect(&text, &p.display().to_string(), Some(&p), out, seen);
        }
    }
}

/// `workflow:` paths anywhere in a list of steps.
fn workflows_of(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| workflows_of(x, out)),
        Value::Object(m) => {
            if let Some(Value::String(w)) = m.get("workflow") {
                out.push(w.clone());
            }
            for (k, x) in m {
                if matches!(k.as_str(), "steps" | "parallel" | "branch" | "for_each") {
                    workflows_of(x, out);
                }
            }
        }
        _ => {}
    }
}

async fn start_all(host: &PluginHost, found: Vec<(Declared, String)>) -> Result<(), Diagnostics> {
    let mut diags = Vec::new();
    for (d, file) in found {
        if let Err(e) = host.ensure(&d.decl).await {
            diags.push(diagnose(&e, &file, &d));
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(diags))
    }
}

fn diagnose(e: &PluginError, file: &str, d: &Declared) -> Diagnostic {
    match e {
        PluginError::Script {
            file: f,
            line,
            col,
            message,
            plugin,
        } => Diagnostic::new(
            f,
            Pos { line: *line, col: *col },
            format!("plugin `{plugin}`: {message}"),
        ),
        PluginError::Manifest { field, .. } => {
            Diagnostic::new(file, d.spans.pos(&format!("{}{field}", d.at)), e.to_string())
        }
        PluginError::Start { .. } => Diagnostic::new(file, d.spans.key_pos(&d.at), e.to_string())
            .with_hint("check `command`/`url`; `STEPWISE_LOG=debug` shows the server's stderr"),
        PluginError::NameTaken { .. } => Diagnostic::new(file, d.spans.key_pos(&d.at), e.to_string()),
    }
}
