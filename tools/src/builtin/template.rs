//! `text.template`: render a Jinja template string (minijinja) with the given variables.
//!
//! Strict: a variable that is not provided is an error naming it, never an empty string. No
//! loader, so `include`/`import`/`extends` cannot read files. Rendering has a fuel budget and
//! an output cap, and runs off the async executor.

use async_trait::async_trait;
use minijinja::{Environment, UndefinedBehavior};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Tool, ToolContext, ToolError};

/// Longest template accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;
/// Longest output produced, in bytes.
pub const MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;
/// Instruction budget for one render (stops runaway loops).
const FUEL: u64 = 5_000_000;

/// `text.template`: renders a template.
pub struct Template;

/// Arguments of `text.template`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateArgs {
    /// Jinja template source, e.g. `Hello {{ name }}! {% for c in cities %}{{ c }} {% endfor %}`.
    /// Filters and tests of Jinja are available (`upper`, `join`, `default`, `round`, …);
    /// there is no file access.
    #[schemars(length(max = 262144))]
    pub template: String,
    /// Variables the template can use, as a JSON object.
    #[serde(default)]
    pub vars: Map<String, Value>,
}

/// Output of `text.template`.
#[derive(Debug, Serialize)]
pub struct TemplateOutput {
    /// The rendered text.
    pub text: String,
}

fn bad(field: &str, message: String) -> ToolError {
    ToolError::InvalidArguments {
        tool: "text.template".into(),
        field: field.into(),
        message,
    }
}

/// Explain a minijinja error: what, the line and column, and the offending line with a caret.
fn explain(src: &str, e: &minijinja::Error) -> String {
    let what = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    let Some(range) = e.range() else {
        return match e.line() {
            Some(l) => format!("line {l}: {what}"),
            None => what,
        };
    };
    let start = range.start.min(src.len());
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
    let line_no = src[..start].matches('\n').count() + 1;
    let col = src[line_start..start].chars().count() + 1;
    let width = src[start..range.end.clamp(start, line_end)].chars().count().max(1);
    format!(
        "line {line_no}, column {col}: {what}\n  {}\n  {}{}",
        &src[line_start..line_end],
        " ".repeat(col - 1),
        "^".repeat(width)
    )
}

/// Render `template` with `vars`, strictly.
pub fn render(template: &str, vars: &Map<String, Value>) -> Result<String, ToolError> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(bad(
            "template",
            format!(
                "template is {} bytes; the limit is {MAX_TEMPLATE_BYTES}",
                template.len()
            ),
        ));
    }
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(64);
    let tmpl = env
        .template_from_str(template)
        .map_err(|e| bad("template", explain(template, &e)))?;
    let mut missing: Vec<String> = tmpl
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !vars.contains_key(v) && env.globals().all(|(g, _)| g != v.as_str()))
        .collect();
    missing.sort();
    let text = tmpl.render(minijinja::value::Serde(vars)).map_err(|e| {
        let mut msg = explain(template, &e);
        if e.kind() == minijinja::ErrorKind::OutOfFuel {
            msg.push_str(&format!(
                " (rendering stopped after {FUEL} instructions: the loops in the template do too much work)"
            ));
        }
        if e.kind() == minijinja::ErrorKind::UndefinedError && !missing.is_empty() {
            let list = missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
            msg.push_str(&format!("\nmissing variable(s): {list}; add them to `vars`"));
        }
        bad(
            if e.kind() == minijinja::ErrorKind::UndefinedError {
                "vars"
            } else {
                "template"
            },
            msg,
        )
    })?;
    if text.len() > MAX_OUTPUT_BYTES {
        return Err(bad(
            "template",
            format!("output is {} bytes; the limit is {MAX_OUTPUT_BYTES}", text.len()),
        ));
    }
    Ok(text)
}

#[async_trait]
impl Tool for Template {
    type Args = TemplateArgs;
    type Output = TemplateOutput;

    fn name(&self) -> &str {
        "text.template"
    }
    fn description(&self) -> String {
        "Renders a Jinja template string with `vars` (a JSON object) and returns the text. A variable \
         used but not given is an error naming it. No file access."
            .into()
    }
    async fn call(&self, args: TemplateArgs, _cx: &ToolContext) -> Result<TemplateOutput, ToolError> {
        let text = tokio::task::spawn_blocking(move || render(&args.template, &args.vars))
            .await
            .map_err(|e| ToolError::failed("text.template", format!("render task failed: {e}")))??;
        Ok(TemplateOutput { text })
    }
}
