//! The checked plan: ids resolved, tools bound, expressions compiled, durations parsed.
//! The engine only ever sees this type.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::expr::{Expr, Template};
use super::yaml::{Pos, SpanMap};

/// A validated plan, ready to run.
#[derive(Debug)]
pub struct Plan {
    pub name: String,
    pub description: Option<String>,
    /// Path it was loaded from, if any (sub-workflow paths are relative to it).
    pub path: Option<std::path::PathBuf>,
    /// The exact text it was parsed from (stored with each run, so resume runs the same plan).
    pub source: String,
    /// sha256 of `source`, hex.
    pub hash: String,
    /// JSON Schema of the inputs object.
    pub inputs_schema: Value,
    pub(crate) inputs_validator: Arc<jsonschema::Validator>,
    /// Declared inputs (name → schema), in file order.
    pub inputs: Map<String, Value>,
    pub outputs: Vec<(String, Template)>,
    pub steps: StepList,
    pub policy: ToolPolicy,
    pub(crate) spans: SpanMap,
}

/// Steps of one list, and who waits for whom.
#[derive(Debug, Default)]
pub struct StepList {
    pub steps: Vec<Arc<Step>>,
    /// `deps[i]`: indexes of steps in this list that step `i` waits for.
    pub deps: Vec<Vec<usize>>,
}

/// One checked step.
#[derive(Debug)]
pub struct Step {
    pub id: String,
    pub description: Option<String>,
    pub kind: StepKind,
    pub when: Option<Expr>,
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
    pub on_error: ErrorAction,
    /// Where the step is in the source (for runtime errors).
    pub pos: Pos,
    /// JSON path of the step in the plan (`/steps/1/for_each/steps/0`).
    pub path: String,
}

/// What a step does.
#[derive(Debug)]
pub enum StepKind {
    Tool {
        name: String,
        args: Template,
    },
    Script {
        expr: Expr,
    },
    ForEach {
        items: Expr,
        var: String,
        concurrency: usize,
        body: StepList,
    },
    Parallel {
        body: StepList,
    },
    Branch {
        arms: Vec<(Option<Expr>, StepList)>,
    },
    Workflow {
        plan: Arc<Plan>,
        args: Template,
    },
    Llm(Box<super::ai::LlmStep>),
    Agent(Box<super::ai::AgentStep>),
}

impl StepKind {
    /// The kind's name as written in plans.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Tool { .. } => "tool",
            StepKind::Script { .. } => "script",
            StepKind::ForEach { .. } => "for_each",
            StepKind::Parallel { .. } => "parallel",
            StepKind::Branch { .. } => "branch",
            StepKind::Workflow { .. } => "workflow",
            StepKind::Llm(_) => "llm",
            StepKind::Agent(_) => "agent",
        }
    }
}

/// Retry policy after parsing.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Wait before attempt `next` (2, 3, …): exponential from `backoff`, capped.
    pub fn delay_before(&self, next: u32) -> Duration {
        let exp = next.saturating_sub(2).min(20);
        self.backoff.saturating_mul(1u32 << exp).min(self.max_backoff)
    }
}

/// What a failure after retries does.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorAction {
    Fail,
    Continue,
    /// Index of the target in the same list.
    Goto(usize),
}

/// Which tools steps may call.
#[derive(Debug, Clone, Default)]
pub struct ToolPolicy {
    allow: Option<globset::GlobSet>,
    /// Patterns of `allow` that name tools explicitly (not a bare `*`).
    explicit: Option<globset::GlobSet>,
    deny: Option<globset::GlobSet>,
}

impl ToolPolicy {
    /// Build from allow/deny patterns.
    pub fn new(allow: Option<&[String]>, deny: &[String]) -> Result<Self, String> {
        fn set<'a>(pats: impl Iterator<Item = &'a String>) -> Result<globset::GlobSet, String> {
            let mut b = globset::GlobSetBuilder::new();
            for p in pats {
                b.add(globset::Glob::new(p).map_err(|e| format!("bad pattern `{p}`: {e}"))?);
            }
            b.build().map_err(|e| e.to_string())
        }
        Ok(ToolPolicy {
            allow: allow.map(|a| set(a.iter())).transpose()?,
            explicit: allow
                .map(|a| set(a.iter().filter(|p| !matches!(p.as_str(), "*" | "**"))))
                .transpose()?,
            deny: if deny.is_empty() { None } else { Some(set(deny.iter())?) },
        })
    }

    /// Why `tool` may not be called under every one of `layers` (e.g. the plan's policy,
    /// then an agent step's own allowlist), or `None` when all of them allow it. A
    /// side-effecting tool must be named explicitly by each layer that has an allowlist.
    pub fn refusal_layered(layers: &[&ToolPolicy], tool: &str, side_effects: bool) -> Option<String> {
        layers.iter().find_map(|p| p.refusal(tool, side_effects))
    }

    /// The tools of `registry` that may be called under every one of `layers`: what an agent
    /// step offers its model.
    pub fn visible(layers: &[&ToolPolicy], registry: &stepwise_tools::Registry) -> Vec<stepwise_tools::ToolSpec> {
        registry
            .list()
            .into_iter()
            .filter(|t| Self::refusal_layered(layers, &t.spec.name, t.spec.side_effects).is_none())
            .map(|t| t.spec)
            .collect()
    }

    /// Why `tool` may not be called, or `None` when it may.
    pub fn refusal(&self, tool: &str, side_effects: bool) -> Option<String> {
        if self.deny.as_ref().is_some_and(|d| d.is_match(tool)) {
            return Some(format!("tool `{tool}` is denied by `tools.deny`"));
        }
        if let Some(a) = &self.allow
            && !a.is_match(tool)
        {
            return Some(format!("tool `{tool}` is not in `tools.allow`"));
        }
        if side_effects && !self.explicit.as_ref().is_some_and(|e| e.is_match(tool)) {
            return Some(format!(
                "tool `{tool}` has side effects and must be allowed explicitly: add `{tool}` to `tools.allow`"
            ));
        }
        None
    }
}

impl Plan {
    /// Position of a JSON path in the plan's source.
    pub fn pos(&self, path: &str) -> Pos {
        self.spans.pos(path)
    }

    /// Position of a character inside a scalar of the plan.
    pub fn pos_in_scalar(&self, path: &str, line: usize, col: usize) -> Pos {
        self.spans.pos_in_scalar(path, line, col)
    }

    /// Number of steps, counting nested ones once.
    pub fn step_count(&self) -> usize {
        fn count(l: &StepList) -> usize {
            l.steps
                .iter()
                .map(|s| {
                    1 + match &s.kind {
                        StepKind::ForEach { body, .. } | StepKind::Parallel { body } => count(body),
                        StepKind::Branch { arms } => arms.iter().map(|(_, b)| count(b)).sum(),
                        _ => 0,
                    }
                })
                .sum()
        }
        count(&self.steps)
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    #[test]
    fn layers_narrow_and_side_effects_need_explicit_names() {
        let plan = ToolPolicy::new(Some(&["clock.*".into(), "files.read_text_file".into()]), &[]).unwrap();
        let step = ToolPolicy::new(Some(&["clock.get_current_time".into()]), &[]).unwrap();
        let layers = [&plan, &step];
        assert!(ToolPolicy::refusal_layered(&layers, "clock.get_current_time", true).is_none());
        let why = ToolPolicy::refusal_layered(&layers, "clock.convert_time", false).unwrap();
        assert!(why.contains("not in `tools.allow`"), "{why}");
        let why = ToolPolicy::refusal_layered(&[&plan], "files.write_file", true).unwrap();
        assert!(why.contains("not in `tools.allow`"), "{why}");
        let open = ToolPolicy::new(Some(&["*".into()]), &["util.sleep".into()]).unwrap();
        assert!(open.refusal("util.noop", false).is_none());
        assert!(open.refusal("util.sleep", false).unwrap().contains("denied"));
        assert!(
            open.refusal("fs.write", true)
                .unwrap()
                .contains("must be allowed explicitly")
        );
        let reg = stepwise_tools::Registry::with_builtins();
        let names: Vec<String> = ToolPolicy::visible(&[&open], &reg)
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert!(names.contains(&"util.noop".to_string()), "{names:?}");
        assert!(names.contains(&"time.now".to_string()), "{names:?}");
        assert!(!names.contains(&"util.sleep".to_string()), "denied: {names:?}");
        assert!(!names.contains(&"file.write".to_string()), "side effects: {names:?}");
    }
}
