//! The plan file format (version 1), as serde types. The JSON Schema printed by
//! `stepwise schema` is generated from these types, so doc comments here are the schema's
//! descriptions. Every struct denies unknown fields: a typo is an error, not a silent no-op.
//!
//! A step has an `id` and exactly one *kind* key (`tool`, `script`, `for_each`, `parallel`,
//! `branch`, `workflow`, …). New kinds are new optional keys, so plans written today keep
//! parsing as the format grows.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A stepwise plan: typed inputs, a list of steps, and outputs computed from them.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "stepwise plan")]
pub struct PlanSpec {
    /// Format version. Always `1`.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// Short name of the plan (shown in `runs list`).
    pub name: String,
    /// What the plan does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Named inputs. Each value is a JSON Schema (`{type: string, default: "x"}`) or just a
    /// type name (`string`, `integer`, `number`, `boolean`, `array`, `object`). An input
    /// without a `default` is required.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schemars(with = "std::collections::BTreeMap<String, InputSchema>")]
    pub inputs: Map<String, Value>,
    /// Named outputs: values with `${…}` expressions over `inputs` and `steps`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub outputs: Map<String, Value>,
    /// Tool permissions for the whole plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<ToolPolicySpec>,
    /// Plugins this plan uses, by name: Rhai tools or MCP servers. They start before the
    /// plan is checked; their tools are called as `<plugin>.<tool>`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub plugins: std::collections::BTreeMap<String, stepwise_plugins::PluginSpec>,
    /// Defaults applied to every step that does not set its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<StepDefaults>,
    /// The steps. They run in order; a step with `needs` runs as soon as those steps are done,
    /// concurrently with others.
    pub steps: Vec<StepSpec>,
}

/// Schema of one input: a JSON Schema object or a type name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum InputSchema {
    /// A JSON type name.
    Type(JsonType),
    /// A full JSON Schema (`type`, `description`, `default`, `enum`, `items`, …).
    Schema(Map<String, Value>),
}

/// JSON type names.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JsonType {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
    Null,
}

/// Which tools steps may call.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolPolicySpec {
    /// Tool names or globs (`time.*`, `mcp_time.*`) that steps may call. Without it, every
    /// tool without side effects may be called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// Tool names or globs that may never be called; wins over `allow`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// Defaults for every step.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDefaults {
    /// Default retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Default timeout per attempt, e.g. `30s`, `500ms`, `2m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Default model of `llm` and `agent` steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<super::ai::ModelSpec>,
}

/// One step. Set `id` and exactly one of the kind keys: `tool`, `script`, `for_each`,
/// `parallel`, `branch`, `workflow`, `llm`, `agent`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Unique id within the plan: letters, digits and `_`, not starting with a digit.
    /// Later steps refer to this step's result as `steps.<id>.output`.
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub id: String,
    /// Human description, shown in progress output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// Kind `tool`: name of the tool to call (`time.now`, `plugin.tool`). Arguments go in `with`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Kind `script`: Rhai code. Sees `inputs`, `steps` and loop variables; may call
    /// `tool(name, #{...})`. The value of the last expression is the step's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Kind `for_each`: run `steps` once per item of a list, up to `concurrency` at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<ForEachSpec>,
    /// Kind `parallel`: run these steps concurrently; output is a map from id to output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<Vec<StepSpec>>,
    /// Kind `branch`: the first arm whose `when` holds runs; an arm without `when` is the
    /// default and must come last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<Vec<BranchArm>>,
    /// Kind `workflow`: path of another plan (relative to this file) to run as part of this
    /// run, with `with` as its inputs. Output is its outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// Kind `llm`: one model call; output is text, or JSON conforming to `schema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<super::ai::LlmSpec>,
    /// Kind `agent`: a model calling tools until it can answer, every turn journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<super::ai::AgentSpec>,

    /// Arguments of a `tool` step or inputs of a `workflow` step. Strings may hold
    /// `${expression}`; a string that is exactly one `${…}` keeps the expression's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<Map<String, Value>>,
    /// Rhai condition; when it is false the step is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Ids of earlier steps in the same list that must finish first. Without `needs` a step
    /// waits for the step before it; `needs: []` starts it at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<Vec<String>>,
    /// Retry policy for failed attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Time limit per attempt, e.g. `30s`, `500ms`, `2m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// What a failure (after retries) does: `fail` the run (default), `continue` with a null
    /// output, or `{goto: <id>}` to skip ahead to a later step in the same list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
}

/// `for_each` settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForEachSpec {
    /// Rhai expression giving the list, e.g. `inputs.cities` or `range(0, 10)`.
    pub items: String,
    /// Name of the loop variable (default `item`); `index` holds the position.
    #[serde(default = "default_item", rename = "as")]
    pub var: String,
    /// How many iterations run at once (default 1).
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 1024))]
    pub concurrency: u32,
    /// Steps run for each item. The iteration's output is the last step's output.
    pub steps: Vec<StepSpec>,
}

fn default_item() -> String {
    "item".into()
}
fn one() -> u32 {
    1
}

/// One arm of a `branch`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchArm {
    /// Rhai condition. Leave it out on the last arm to make it the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Steps of this arm. The branch's output is the last one's output.
    pub steps: Vec<StepSpec>,
}

/// Retry policy.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Total attempts, including the first (default 3).
    #[serde(default = "three")]
    #[schemars(range(min = 1, max = 100))]
    pub attempts: u32,
    /// Wait before the second attempt, e.g. `200ms` (default `1s`); doubles each time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<String>,
    /// Longest wait between attempts (default `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<String>,
}

fn three() -> u32 {
    3
}

/// What to do when a step fails after its retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OnError {
    /// `fail` or `continue`.
    Simple(OnErrorAction),
    /// Skip ahead to a later step in the same list.
    Goto {
        /// Id of the step to continue at.
        goto: String,
    },
}

/// `fail` stops the run; `continue` records the failure and goes on with a null output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnErrorAction {
    Fail,
    Continue,
}

/// The kind keys, in the order they are documented.
pub const STEP_KINDS: &[&str] = &[
    "tool", "script", "for_each", "parallel", "branch", "workflow", "llm", "agent",
];

impl StepSpec {
    /// The kind keys this step sets (a valid step sets exactly one).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        if self.tool.is_some() {
            k.push("tool");
        }
        if self.script.is_some() {
            k.push("script");
        }
        if self.for_each.is_some() {
            k.push("for_each");
        }
        if self.parallel.is_some() {
            k.push("parallel");
        }
        if self.branch.is_some() {
            k.push("branch");
        }
        if self.workflow.is_some() {
            k.push("workflow");
        }
        if self.llm.is_some() {
            k.push("llm");
        }
        if self.agent.is_some() {
            k.push("agent");
        }
        k
    }
}

/// The JSON Schema of the plan format, as pretty JSON (what `stepwise schema` prints and
/// `workflows/schema.json` holds).
pub fn plan_schema_json() -> String {
    let schema = schemars::schema_for!(PlanSpec);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
