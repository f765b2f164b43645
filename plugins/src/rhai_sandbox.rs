//! The sandboxed Rhai engine shared by script steps, plan expressions and Rhai tools.
//!
//! Every engine built here has limits on operations, call depth, expression depth, string,
//! array and map sizes, no module loading and no file or network access. Script engines also
//! get a wall-clock deadline and cancellation (checked by `on_progress`), and may call tools
//! through `tool(name, #{...})` when given a [`ToolBridge`].

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rhai::packages::{Package, StandardPackage};
use rhai::{Dynamic, Engine, EvalAltResult, Position};
use serde_json::Value;
use stepwise_tools::{Registry, ToolContext};
use tokio_util::sync::CancellationToken;

/// Resource limits for one engine.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Rhai operations (roughly: expression nodes evaluated).
    pub max_operations: u64,
    /// Function call nesting.
    pub max_call_levels: usize,
    /// Expression nesting at parse time.
    pub max_expr_depth: usize,
    /// Characters in one string.
    pub max_string_size: usize,
    /// Items in one array (nested arrays count their items too).
    pub max_array_size: usize,
    /// Entries in one object map.
    pub max_map_size: usize,
    /// Wall-clock limit for one evaluation.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 50_000_000,
            max_call_levels: 64,
            max_expr_depth: 64,
            max_string_size: 4 * 1024 * 1024,
            // Rhai re-measures a container after each operation, so filling one costs time
            // quadratic in its size: 50k items is reached in about a second.
            max_array_size: 50_000,
            max_map_size: 50_000,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Decides whether a script may call a tool.
pub type ToolFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Lets scripts call tools: `tool("time.now", #{ tz: "Europe/Lisbon" })`.
#[derive(Clone)]
pub struct ToolBridge {
    pub registry: Registry,
    pub cx: ToolContext,
    pub handle: tokio::runtime::Handle,
    /// Tool names the caller may use; `None` allows every registered tool.
    pub allowed: Option<ToolFilter>,
}

fn standard_package() -> &'static StandardPackage {
    static PKG: OnceLock<StandardPackage> = OnceLock::new();
    PKG.get_or_init(StandardPackage::new)
}

/// Marker put into the `on_progress` termination value, so errors can say why a script
/// was stopped.
const STOP_TIMEOUT: &str = "timeout";
const STOP_CANCELLED: &str = "cancelled";

/// An engine with limits but no deadline: for short, pure expressions evaluated on the hot
/// path (operation limits bound their cost).
pub fn expression_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(standard_package().as_shared_module());
    apply_limits(&mut engine, limits);
    engine.on_print(|s| tracing::info!(target: "rhai", "{s}"));
    engine.on_debug(|s, _, pos| tracing::debug!(target: "rhai", "{pos}: {s}"));
    engine
}

/// An engine for one script evaluation: limits, a wall-clock deadline starting now,
/// cancellation, and optionally tool calls.
pub fn script_engine(limits: &Limits, cancel: CancellationToken, tools: Option<ToolBridge>) -> Engine {
    let mut engine = expression_engine(limits);
    let deadline = Instant::now() + limits.timeout;
    engine.on_progress(move |ops| {
        // Checking the clock every operation would cost more than the script; every 1024 is
        // enough for a millisecond-grade deadline.
        if ops & 1023 == 0 {
            if cancel.is_cancelled() {
                return Some(Dynamic::from(STOP_CANCELLED));
            }
            if Instant::now() >= deadline {
                return Some(Dynamic::from(STOP_TIMEOUT));
            }
        }
        None
    });
    if let Some(bridge) = tools {
        engine.register_fn(
            "tool",
            move |name: &str, args: rhai::Map| -> Result<Dynamic, Box<EvalAltResult>> {
                call_tool(&bridge, name, Dynamic::from_map(args))
            },
        );
    }
    engine
}

fn call_tool(bridge: &ToolBridge, name: &str, args: Dynamic) -> Result<Dynamic, Box<EvalAltResult>> {
    if let Some(allowed) = &bridge.allowed
        && !allowed(name)
    {
        return Err(format!("tool `{name}` is not allowed here").into());
    }
    let args: Value = rhai::serde::from_dynamic(&args)?;
    let registry = bridge.registry.clone();
    let cx = bridge.cx.clone();
    let out = bridge
        .handle
        .block_on(async move { registry.call(name, args, &cx).await })
        .map_err(|e| -> Box<EvalAltResult> { e.to_string().into() })?;
    rhai::serde::to_dynamic(out)
}

fn apply_limits(engine: &mut Engine, limits: &Limits) {
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_max_modules(0);
    engine.set_max_variables(10_000);
    engine.set_max_functions(1_000);
    // Rhai checks sizes after operators but not inside the array package's mutators, so a
    // `push` loop could grow until the deadline: guard them here.
    let max = limits.max_array_size;
    let too_large = move || -> Box<EvalAltResult> {
        EvalAltResult::ErrorDataTooLarge(format!("an array (more than {max} items)"), Position::NONE).into()
    };
    engine.register_fn(
        "push",
        move |a: &mut rhai::Array, item: Dynamic| -> Result<(), Box<EvalAltResult>> {
            if a.len() >= max {
                return Err(too_large());
            }
            a.push(item);
            Ok(())
        },
    );
    engine.register_fn(
        "insert",
        move |a: &mut rhai::Array, at: rhai::INT, item: Dynamic| -> Result<(), Box<EvalAltResult>> {
            if a.len() >= max {
                return Err(too_large());
            }
            let at = if at < 0 {
                (a.len() as rhai::INT + at).max(0)
            } else {
                at.min(a.len() as rhai::INT)
            } as usize;
            a.insert(at, item);
            Ok(())
        },
    );
    engine.register_fn(
        "append",
        move |a: &mut rhai::Array, b: rhai::Array| -> Result<(), Box<EvalAltResult>> {
            if a.len() + b.len() > max {
                return Err(too_large());
            }
            a.extend(b);
            Ok(())
        },
    );
    engine.register_fn(
        "pad",
        move |a: &mut rhai::Array, len: rhai::INT, item: Dynamic| -> Result<(), Box<EvalAltResult>> {
            if len as usize > max {
                return Err(too_large());
            }
            while (a.len() as rhai::INT) < len {
                a.push(item.clone());
            }
            Ok(())
        },
    );
}

/// A Rhai failure turned into a message and a 1-based line/column within the script text.
#[derive(Debug, Clone)]
pub struct ScriptError {
    pub message: String,
    /// 1-based (line, column) inside the script, when Rhai knows it.
    pub position: Option<(usize, usize)>,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.position {
            Some((l, c)) => write!(f, "{} (script line {l}, column {c})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn pos(p: Position) -> Option<(usize, usize)> {
    match (p.line(), p.position()) {
        (Some(l), Some(c)) => Some((l, c)),
        (Some(l), None) => Some((l, 1)),
        _ => None,
    }
}

/// Explain a Rhai evaluation error in the words a plan author needs.
pub fn explain_eval_error(err: &EvalAltResult, limits: &Limits) -> ScriptError {
    let position = pos(err.position());
    let message = match err {
        EvalAltResult::ErrorTerminated(v, _) => {
            let why = v.clone().into_string().unwrap_or_default();
            if why == STOP_CANCELLED {
                "script cancelled".to_string()
            } else {
                format!(
                    "script stopped: it ran longer than its time limit of {} ms (a loop that never ends?)",
                    limits.timeout.as_millis()
                )
            }
        }
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "script stopped: it exceeded the limit of {} operations (a loop that never ends?)",
            limits.max_operations
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => format!(
            "script stopped: {what} grew past its limit (strings {} chars, arrays {} items, maps {} entries)",
            limits.max_string_size, limits.max_array_size, limits.max_map_size
        ),
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "script stopped: calls nested deeper than {} levels (unbounded recursion?)",
            limits.max_call_levels
        ),
        other => {
            let mut s = other.to_string();
            // Rhai appends " (line L, position P)"; we report the position separately.
            if let Some(i) = s.rfind(" (line ") {
                s.truncate(i);
            }
            s
        }
    };
    ScriptError { message, position }
}

/// Explain a Rhai parse error.
pub fn explain_parse_error(err: &rhai::ParseError) -> ScriptError {
    ScriptError {
        message: err.err_type().to_string(),
        position: pos(err.position()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str, limits: &Limits) -> Result<Dynamic, ScriptError> {
        let engine = script_engine(limits, CancellationToken::new(), None);
        engine.eval::<Dynamic>(src).map_err(|e| explain_eval_error(&e, limits))
    }

    #[test]
    fn infinite_loop_is_stopped_by_operation_limit() {
        let limits = Limits {
            max_operations: 100_000,
            ..Limits::default()
        };
        let e = run("let x = 0; loop { x += 1; }", &limits).unwrap_err();
        assert!(e.message.contains("operations"), "{e}");
    }

    #[test]
    fn infinite_loop_is_stopped_by_deadline() {
        let limits = Limits {
            max_operations: 0,
            timeout: Duration::from_millis(50),
            ..Limits::default()
        };
        let started = Instant::now();
        let e = run("loop { }", &limits).unwrap_err();
        assert!(e.message.contains("time limit"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn unbounded_allocation_is_stopped() {
        let e = run("let s = \"x\"; loop { s += s; }", &Limits::default()).unwrap_err();
        assert!(e.message.contains("grew past its limit"), "{e}");
        let e = run("let a = []; loop { a.push(1); }", &Limits::default()).unwrap_err();
        assert!(e.message.contains("grew past its limit"), "{e}");
    }

    #[test]
    fn no_modules() {
        let e = run("import \"std\" as s; 1", &Limits::default()).unwrap_err();
        assert!(!e.message.is_empty());
    }
}
