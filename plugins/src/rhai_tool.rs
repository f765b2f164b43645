//! Tools written in Rhai: a plugin script defines one function per tool; the script is
//! compiled once, and each call runs its function in a fresh sandboxed engine (the limits,
//! deadline and cancellation of script steps) on a blocking thread.
//!
//! Inside a tool function, `log(level, message)`, `progress(done, total)` and
//! `ask(method, #{...})` reach the caller when it supports them (an MCP client calling
//! `stepwise mcp serve`); elsewhere they do nothing (`ask` fails).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult};
use serde_json::{Value, json};
use stepwise_tools::{DynTool, InteractionHandle, ToolContext, ToolError, ToolSpec};

use crate::PluginError;
use crate::manifest::{RhaiPluginSpec, RhaiPromptSpec, RhaiResourceSpec, parse_duration};
use crate::rhai_sandbox::{self, Limits};

/// Maps a (line, column) inside a script to a (line, column) in the file that holds it (a
/// script written inline in a plan starts somewhere inside the plan file).
pub type PositionMap = Arc<dyn Fn(usize, usize) -> (usize, usize) + Send + Sync>;

/// Where a plugin's Rhai source came from, so errors can say `file:line:column`.
#[derive(Clone)]
pub struct ScriptOrigin {
    /// File name shown in errors.
    pub file: String,
    /// Script position → file position; identity when `None` (a `.rhai` file).
    pub map: Option<PositionMap>,
}

impl ScriptOrigin {
    /// `(file, line, col)` of a position inside the script.
    pub fn locate(&self, line: usize, col: usize) -> (String, usize, usize) {
        let (l, c) = match &self.map {
            Some(m) => m(line, col),
            None => (line, col),
        };
        (self.file.clone(), l, c)
    }
}

/// One function of a compiled plugin script, callable from async code.
#[derive(Clone)]
pub struct RhaiFn {
    function: String,
    ast: Arc<AST>,
    limits: Limits,
    origin: ScriptOrigin,
}

/// One Rhai tool, ready to register.
pub struct RhaiTool {
    spec: ToolSpec,
    func: RhaiFn,
}

/// A compiled Rhai plugin: its tools, and the resources and prompts it serves over MCP.
pub struct RhaiPlugin {
    pub tools: Vec<Arc<dyn DynTool>>,
    pub resources: Vec<(RhaiResourceSpec, RhaiFn)>,
    pub prompts: Vec<(RhaiPromptSpec, RhaiFn)>,
}

/// Compile a Rhai plugin and build its tools (named `<plugin>.<tool>`).
pub fn load(
    plugin: &str,
    spec: &RhaiPluginSpec,
    source: &str,
    origin: ScriptOrigin,
) -> Result<RhaiPlugin, PluginError> {
    let timeout = parse_duration("timeout", spec.timeout.as_deref(), Duration::from_secs(10))
        .map_err(|m| PluginError::manifest(plugin, "/timeout", m))?;
    let limits = Limits {
        timeout,
        ..Limits::default()
    };
    let engine = rhai_sandbox::expression_engine(&limits);
    let ast = engine.compile(source).map_err(|e| {
        let err = rhai_sandbox::explain_parse_error(&e);
        let (line, col) = err.position.unwrap_or((1, 1));
        let (file, line, col) = origin.locate(line, col);
        PluginError::Script {
            plugin: plugin.to_string(),
            file,
            line,
            col,
            message: err.message,
        }
    })?;
    let ast = Arc::new(ast);
    let func = |function: &str, what: String, at: String| -> Result<RhaiFn, PluginError> {
        check_defined(plugin, &ast, function, &what, at)?;
        Ok(RhaiFn {
            function: function.to_string(),
            ast: ast.clone(),
            limits: limits.clone(),
            origin: origin.clone(),
        })
    };
    let mut tools: Vec<Arc<dyn DynTool>> = Vec::new();
    for (i, t) in spec.tools.iter().enumerate() {
        let function = t.function.clone().unwrap_or_else(|| t.name.clone());
        let f = func(&function, format!("tool `{}`", t.name), format!("/tools/{i}"))?;
        let parameters = t
            .parameters
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "additionalProperties": true}));
        if !parameters.is_object() {
            return Err(PluginError::manifest(
                plugin,
                format!("/tools/{i}/parameters"),
                format!("tool `{}`: `parameters` must be a JSON Schema object", t.name),
            ));
        }
        tools.push(Arc::new(RhaiTool {
            spec: ToolSpec {
                name: format!("{plugin}.{}", t.name),
                description: t.description.clone(),
                parameters,
                output: None,
                side_effects: t.side_effects,
            },
            func: f,
        }));
    }
    let mut resources = Vec::new();
    for (i, r) in spec.resources.iter().enumerate() {
        if r.uri.is_some() == r.uri_template.is_some() {
            return Err(PluginError::manifest(
                plugin,
                format!("/resources/{i}"),
                format!("resource `{}`: set `uri` or `uri_template` (one of them)", r.name),
            ));
        }
        let f = func(
            &r.function,
            format!("resource `{}`", r.name),
            format!("/resources/{i}/function"),
        )?;
        resources.push((r.clone(), f));
    }
    let mut prompts = Vec::new();
    for (i, p) in spec.prompts.iter().enumerate() {
        let f = func(
            &p.function,
            format!("prompt `{}`", p.name),
            format!("/prompts/{i}/function"),
        )?;
        prompts.push((p.clone(), f));
    }
    Ok(RhaiPlugin {
        tools,
        resources,
        prompts,
    })
}

fn check_defined(plugin: &str, ast: &AST, function: &str, what: &str, at: String) -> Result<(), PluginError> {
    match ast
        .iter_functions()
        .find(|f| f.name == function)
        .map(|f| f.params.len())
    {
        Some(1) => Ok(()),
        Some(n) => Err(PluginError::manifest(
            plugin,
            at,
            format!("{what}: function `{function}` takes {n} parameters; it must take one, the arguments map"),
        )),
        None => {
            let known: Vec<String> = ast.iter_functions().map(|f| f.name.to_string()).collect();
            let hint = stepwise_tools::closest(function, known.iter().map(String::as_str))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            Err(PluginError::manifest(
                plugin,
                at,
                format!("{what}: the script defines no function `{function}(args)`{hint}"),
            ))
        }
    }
}

impl RhaiFn {
    /// Run the function with one JSON argument in a fresh sandboxed engine on a blocking
    /// thread. Errors carry `file:line:column` when Rhai knows the position.
    pub async fn call(&self, arg: Value, cx: &ToolContext) -> Result<Value, String> {
        let ast = self.ast.clone();
        let limits = self.limits.clone();
        let function = self.function.clone();
        let cancel = cx.cancel.clone();
        let interaction = cx.interaction.clone();
        let handle = tokio::runtime::Handle::current();
        let res = tokio::task::spawn_blocking(move || {
            let mut engine = rhai_sandbox::script_engine(&limits, cancel, None);
            register_interaction(&mut engine, interaction, handle);
            let arg = rhai::serde::to_dynamic(&arg).map_err(|e| (e.to_string(), None))?;
            let mut scope = rhai::Scope::new();
            let out = engine
                .call_fn_with_options::<Dynamic>(
                    CallFnOptions::new().eval_ast(false),
                    &mut scope,
                    &ast,
                    &function,
                    (arg,),
                )
                .map_err(|e| {
                    let err = rhai_sandbox::explain_eval_error(&e, &limits);
                    (err.message, err.position)
                })?;
            rhai::serde::from_dynamic::<Value>(&out)
                .map_err(|e| (format!("the result cannot be turned into JSON: {e}"), None))
        })
        .await
        .map_err(|e| format!("script task failed: {e}"))?;
        res.map_err(|(message, pos)| match pos {
            Some((l, c)) => {
                let (f, l, c) = self.origin.locate(l, c);
                format!("{message} at {f}:{l}:{c}")
            }
            None => message,
        })
    }
}

#[async_trait]
impl DynTool for RhaiTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call_json(&self, args: Value, cx: &ToolContext) -> Result<Value, ToolError> {
        let name = self.spec.name.as_str();
        self.func.call(args, cx).await.map_err(|message| {
            if message == "script cancelled" {
                ToolError::Cancelled { tool: name.to_string() }
            } else {
                ToolError::failed(name, message)
            }
        })
    }
}

/// `log`, `progress`, `ask`, `sleep` and `to_json` for tool functions.
fn register_interaction(engine: &mut Engine, ix: Option<InteractionHandle>, handle: tokio::runtime::Handle) {
    // A short pause (at most 10 s), e.g. between progress reports.
    engine.register_fn("sleep", |ms: rhai::INT| {
        std::thread::sleep(Duration::from_millis(ms.clamp(0, 10_000) as u64));
    });
    engine.register_fn("to_json", |v: Dynamic| -> String {
        rhai::serde::from_dynamic::<Value>(&v)
            .map(|j| j.to_string())
            .unwrap_or_default()
    });
    let (i1, h1) = (ix.clone(), handle.clone());
    engine.register_fn("log", move |level: &str, message: Dynamic| {
        if let Some(i) = &i1 {
            let data = rhai::serde::from_dynamic::<Value>(&message).unwrap_or(Value::Null);
            h1.block_on(i.0.log(level, data));
        }
    });
    let (i2, h2) = (ix.clone(), handle.clone());
    let progress = move |done: f64, total: Option<f64>| {
        if let Some(i) = &i2 {
            h2.block_on(i.0.progress(done, total, None));
        }
    };
    let p1 = progress.clone();
    engine.register_fn("progress", move |done: rhai::FLOAT, total: rhai::FLOAT| {
        p1(done, Some(total))
    });
    let p2 = progress.clone();
    engine.register_fn("progress", move |done: rhai::INT, total: rhai::INT| {
        p2(done as f64, Some(total as f64))
    });
    engine.register_fn("progress", move |done: rhai::INT| progress(done as f64, None));
    engine.register_fn(
        "ask",
        move |method: &str, params: rhai::Map| -> Result<Dynamic, Box<EvalAltResult>> {
            let Some(i) = &ix else {
                return Err(format!("`{method}` is not available: the caller cannot answer questions").into());
            };
            let params: Value = rhai::serde::from_dynamic(&Dynamic::from_map(params))?;
            let out = handle
                .block_on(i.0.request(method, params))
                .map_err(|e| -> Box<EvalAltResult> { e.into() })?;
            rhai::serde::to_dynamic(out)
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::RhaiToolSpec;

    fn spec(tools: &[(&str, Option<Value>)]) -> RhaiPluginSpec {
        RhaiPluginSpec {
            description: None,
            script: None,
            file: None,
            timeout: Some("2s".into()),
            resources: vec![],
            prompts: vec![],
            tools: tools
                .iter()
                .map(|(n, p)| RhaiToolSpec {
                    name: n.to_string(),
                    description: format!("tool {n}"),
                    parameters: p.clone(),
                    function: None,
                    side_effects: false,
                })
                .collect(),
        }
    }

    fn origin() -> ScriptOrigin {
        ScriptOrigin {
            file: "math.rhai".into(),
            map: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tools_run_and_errors_carry_positions() {
        let src = "fn add(a) { a.x + a.y }\n\nfn boom(a) {\n  let z = 1;\n  z.nope()\n}\n";
        let tools = load("math", &spec(&[("add", None), ("boom", None)]), src, origin())
            .unwrap()
            .tools;
        let cx = ToolContext::new(std::env::temp_dir());
        assert_eq!(tools[0].spec().name, "math.add");
        let out = tools[0].call_json(json!({"x": 2, "y": 40}), &cx).await.unwrap();
        assert_eq!(out, json!(42));
        let e = tools[1].call_json(json!({}), &cx).await.unwrap_err().to_string();
        assert!(e.contains("math.rhai:5:"), "{e}");
    }

    #[test]
    fn compile_errors_and_missing_functions() {
        let e = load("m", &spec(&[("a", None)]), "fn a(x) {\n  let = 3;\n}", origin())
            .err()
            .unwrap();
        assert!(matches!(e, PluginError::Script { line: 2, .. }), "{e}");
        let e = load("m", &spec(&[("ad", None)]), "fn add(x) { x }", origin())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("no function `ad(args)`") && e.contains("did you mean `add`"),
            "{e}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runaway_tools_are_stopped() {
        let tools = load("m", &spec(&[("spin", None)]), "fn spin(a) { loop {} }", origin())
            .unwrap()
            .tools;
        let cx = ToolContext::new(std::env::temp_dir());
        let e = tools[0].call_json(json!({}), &cx).await.unwrap_err().to_string();
        assert!(e.contains("limit"), "{e}");
    }
}
