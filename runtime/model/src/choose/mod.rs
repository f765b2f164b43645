//! The tool chooser: given a conversation and the tools on offer, decide whether to call a
//! tool, which one, and with what arguments: always a well-formed call of an offered tool
//! with schema-valid arguments, or no call at all.
//!
//! Local models get the constrained path ([`local`]): candidates scored by likelihood
//! instead of free generation, abstention as a real decision, arguments decoded per type.
//! Other backends use their native tool calling ([`native`]); the [`naive`] strategy is
//! the route most frameworks take with small local models, kept for comparison.

pub mod args;
pub mod conventions;
pub mod cursor;
pub mod free;
pub mod lexical;
pub mod local;
pub mod naive;
pub mod native;
pub mod schema;
pub mod values;

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::chat::{ChatModel, Message, ToolCall, ToolDef, Usage};
use crate::error::{ModelError, Result};

pub use args::{ArgMode, ArgOptions};

/// How the chooser works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Likelihood scoring and constrained decoding (local models), native tool calling
    /// otherwise.
    #[default]
    Constrained,
    /// Tools as JSON in the system prompt, free generation, first JSON object parsed.
    Naive,
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "constrained" | "default" => Ok(Strategy::Constrained),
            "naive" => Ok(Strategy::Naive),
            other => Err(format!("unknown strategy `{other}` (use `constrained` or `naive`)")),
        }
    }
}

/// How the tools are shown to a local model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolPrompt {
    /// One line per tool, `name(arg: type, opt?: type): description`, in the system message.
    /// The default: on BFCL tuning items Qwen2.5-Coder chose as well from it as from its
    /// own tool section, abstained more cleanly, and read a third fewer tokens.
    #[default]
    Compact,
    /// The chat template's own tool section (JSON schemas), where it has one.
    Native,
}

impl std::str::FromStr for ToolPrompt {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "compact" => Ok(ToolPrompt::Compact),
            "native" => Ok(ToolPrompt::Native),
            other => Err(format!("unknown tool prompt `{other}` (use `compact` or `native`)")),
        }
    }
}

/// Knobs of the chooser.
#[derive(Debug, Clone)]
pub struct ChooseOptions {
    pub strategy: Strategy,
    /// How the tools are shown to the model.
    pub prompt: ToolPrompt,
    /// "No tool" is a possible outcome (otherwise one of the tools is always called).
    pub allow_none: bool,
    /// With more tools than this, only the most relevant ones are shown to the model.
    pub shortlist: usize,
    /// Added to the relevance of the best tool before comparing it with
    /// [`ChooseOptions::relevance`] (positive = call more often).
    pub call_bias: f32,
    /// Least relevance (word overlap of the request with the tool, plus the per-token gain
    /// in the request's likelihood from showing the tools) for which a tool is called.
    pub relevance: f32,
    /// Word overlap from which a tool is called without measuring the likelihood gain.
    pub sure_overlap: f32,
    /// For models trained on tool calls (their chat template has a tool section): no call
    /// unless the best tool's name is at least this much (nats) more likely than naming no
    /// function. Such a model's own "none" is informed; a model without that training
    /// prefers "none" almost always, so the rule is not applied to it.
    pub none_margin: f32,
    /// For the same models: weight of a second vote, the model asked apart whether the
    /// chosen function does what the request asks (log-odds of "yes" over "no", less
    /// [`ChooseOptions::verify_offset`]), added to the naming margin before it is compared
    /// with [`ChooseOptions::none_margin`]. Asked while the conversation ends with the
    /// user's request (not after tool results). 0 = never asked (one prompt evaluation less).
    /// The two votes spread differently (the margin over several nats, the answer within
    /// about one): 15 gives them about equal say.
    pub verify_weight: f32,
    /// The log-odds of "yes" at which the answer asked apart is neutral: the model leans
    /// to "yes" whatever it is asked.
    pub verify_offset: f32,
    /// Weight of the chosen tool's word overlap with the request (see
    /// [`lexical::overlap`]: 0 to about 2) in the same vote: a third voice, apart from the
    /// model's, for requests a model would rather answer from what it knows ("Who was the
    /// U.S. president in 1940?" with a lookup function at hand). With it, the vote called
    /// 371 rather than 357 of 393 requests that wanted a call (BFCL simple_python and
    /// multiple tuning items, Qwen2.5-Coder-0.5B) and abstained as often on irrelevant ones.
    pub overlap_vote_weight: f32,
    /// Whether the model was trained on tool calls, so that its own "no function" and its
    /// own argument values are worth trusting (see [`ChooseOptions::none_margin`] and
    /// [`ArgMode::Auto`]). `None`: when its chat template has a tool section.
    pub trained_on_tools: Option<bool>,
    /// Weight of word overlap against the model's log-probability of a tool's name when
    /// choosing among several tools.
    pub overlap_weight: f32,
    pub args: ArgOptions,
}

impl Default for ChooseOptions {
    fn default() -> Self {
        ChooseOptions {
            strategy: Strategy::Constrained,
            prompt: ToolPrompt::Compact,
            allow_none: true,
            shortlist: 6,
            call_bias: 0.0,
            relevance: 0.3,
            sure_overlap: 0.5,
            none_margin: 2.0,
            verify_weight: 15.0,
            verify_offset: 1.15,
            overlap_vote_weight: 4.0,
            trained_on_tools: None,
            overlap_weight: 20.0,
            args: ArgOptions::default(),
        }
    }
}

/// A request to choose a tool call.
#[derive(Debug, Clone)]
pub struct ChooseRequest {
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDef>,
    pub options: ChooseOptions,
    pub cancel: CancellationToken,
}

impl ChooseRequest {
    pub fn new(messages: Vec<Message>, tools: Vec<ToolDef>) -> Self {
        ChooseRequest {
            messages,
            tools,
            options: ChooseOptions::default(),
            cancel: CancellationToken::new(),
        }
    }
}

/// The chooser's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// The call to make, or `None` to answer without a tool.
    pub call: Option<ToolCall>,
    /// Text the model produced instead of a call (naive and native paths only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub usage: Usage,
    /// Why: the scores behind the decision, for logs and `--json` output.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<String>,
}

impl Decision {
    pub(crate) fn none(usage: Usage, trace: Vec<String>) -> Self {
        Decision {
            call: None,
            text: None,
            usage,
            trace,
        }
    }
}

/// The tool chooser used by agent steps and `stepwise eval bfcl`.
#[derive(Clone)]
pub struct ToolChooser {
    model: Arc<dyn ChatModel>,
    pub options: ChooseOptions,
}

impl ToolChooser {
    pub fn new(model: Arc<dyn ChatModel>) -> Self {
        ToolChooser {
            model,
            options: ChooseOptions::default(),
        }
    }

    /// The model behind it.
    pub fn model(&self) -> &Arc<dyn ChatModel> {
        &self.model
    }

    /// Choose a call for the conversation among `tools` (any schema dialect).
    pub async fn choose(&self, messages: &[Message], tools: &[ToolDef]) -> Result<Decision> {
        self.choose_with(messages, tools, CancellationToken::new()).await
    }

    /// [`ToolChooser::choose`] with cancellation.
    pub async fn choose_with(
        &self,
        messages: &[Message],
        tools: &[ToolDef],
        cancel: CancellationToken,
    ) -> Result<Decision> {
        let tools: Vec<ToolDef> = tools
            .iter()
            .map(|t| ToolDef {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: schema::normalize(&t.parameters),
            })
            .collect();
        let req = ChooseRequest {
            messages: messages.to_vec(),
            tools: tools.clone(),
            options: self.options.clone(),
            cancel,
        };
        let d = match self.options.strategy {
            Strategy::Naive => naive::choose(self.model.as_ref(), req).await?,
            Strategy::Constrained => self.model.choose(req).await?,
        };
        if self.options.strategy == Strategy::Constrained
            && let Some(call) = &d.call
        {
            check_call(call, &tools)?;
        }
        Ok(d)
    }
}

/// The call names an offered tool and its arguments conform to the tool's schema.
pub fn check_call(call: &ToolCall, tools: &[ToolDef]) -> Result<()> {
    let tool = tools
        .iter()
        .find(|t| t.name == call.name)
        .ok_or_else(|| ModelError::BadOutput(format!("the model called `{}`, which is not offered", call.name)))?;
    validate_args(&tool.parameters, &call.arguments)
        .map_err(|e| ModelError::BadOutput(format!("arguments of `{}`: {e}", call.name)))
}

/// Validate arguments against a (normalized) parameter schema.
pub fn validate_args(schema: &Value, args: &Value) -> std::result::Result<(), String> {
    let v = jsonschema::validator_for(schema).map_err(|e| format!("the tool's schema is invalid: {e}"))?;
    match v.iter_errors(args).next() {
        None => Ok(()),
        Some(e) => {
            let path = e.instance_path().to_string();
            Err(if path.is_empty() {
                e.to_string()
            } else {
                format!("{path}: {e}")
            })
        }
    }
}
