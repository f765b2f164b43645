//! Checking `llm` and `agent` steps.

use std::sync::Arc;

use serde_json::Value;

use super::Checker;
use stepwise_memory::AgentMemoryConfig;

use crate::plan::ai::{AgentMemory, AgentSpec, AgentStep, LlmSpec, LlmStep, ModelSpec};
use crate::plan::expr::Template;
use crate::plan::model::StepKind;

impl Checker<'_> {
    /// A prompt-like text with `${…}` expressions.
    fn text_template(&mut self, text: &str, path: &str, own: Option<&str>) -> Option<Template> {
        let t = self.template(&Value::String(text.to_string()), path)?;
        self.check_refs(&t.exprs(), path, own);
        Some(t)
    }

    fn model_spec(&mut self, m: Option<&ModelSpec>, path: &str) -> Option<ModelSpec> {
        let m = m.cloned().or_else(|| self.default_model.clone());
        match &m {
            Some(ModelSpec::Name(n)) => {
                if let Err(e) = stepwise_model::ModelRef::parse(n) {
                    self.err(path, e.to_string()).hint =
                        Some("`stepwise models list` shows the catalog; a path to a .gguf file works too".into());
                }
            }
            Some(ModelSpec::OpenAi { openai })
                if !(openai.base_url.starts_with("http://") || openai.base_url.starts_with("https://")) =>
            {
                self.err(
                    &format!("{path}/openai/base_url"),
                    format!("`{}` is not an http(s) URL", openai.base_url),
                )
                .hint = Some("write e.g. `http://127.0.0.1:8080/v1`".into());
            }
            Some(ModelSpec::OpenAi { .. }) | None => {}
        }
        m
    }

    pub(super) fn llm_step(&mut self, l: &LlmSpec, p: &str, own: Option<&str>) -> Option<StepKind> {
        let lp = format!("{p}/llm");
        let prompt = self.text_template(&l.prompt, &format!("{lp}/prompt"), own);
        let system = match &l.system {
            Some(s) => Some(self.text_template(s, &format!("{lp}/system"), own)?),
            None => None,
        };
        let validator = match &l.schema {
            Some(schema) => match jsonschema::validator_for(schema) {
                Ok(v) => Some(Arc::new(v)),
                Err(e) => {
                    self.err(&format!("{lp}/schema"), format!("not a valid JSON Schema: {e}"))
                        .hint =
                        Some("e.g. `{type: object, properties: {city: {type: string}}, required: [city]}`".into());
                    None
                }
            },
            None => None,
        };
        if let Some(t) = l.temperature
            && !(0.0..=2.0).contains(&t)
        {
            self.err(&format!("{lp}/temperature"), format!("temperature {t} is out of range"))
                .hint = Some("use a value between 0 (greedy) and 2".into());
        }
        let model = self.model_spec(l.model.as_ref(), &format!("{lp}/model"));
        Some(StepKind::Llm(Box::new(LlmStep {
            prompt: prompt?,
            system,
            schema: l.schema.clone(),
            validator,
            model,
            max_tokens: l.max_tokens.unwrap_or(512).max(1),
            temperature: l.temperature.unwrap_or(0.0),
        })))
    }

    pub(super) fn agent_step(&mut self, a: &AgentSpec, p: &str, own: Option<&str>) -> Option<StepKind> {
        let ap = format!("{p}/agent");
        let prompt = self.text_template(&a.prompt, &format!("{ap}/prompt"), own);
        let instructions = match &a.instructions {
            Some(s) => Some(self.text_template(s, &format!("{ap}/instructions"), own)?),
            None => None,
        };
        let names = self.env.registry.names();
        for (i, pat) in a.tools.iter().enumerate() {
            let tp = format!("{ap}/tools/{i}");
            let glob = match globset::Glob::new(pat) {
                Ok(g) => g,
                Err(e) => {
                    self.err(&tp, format!("bad tool pattern `{pat}`: {e}"));
                    continue;
                }
            };
            let m = glob.compile_matcher();
            let matched: Vec<&String> = names.iter().filter(|n| m.is_match(n.as_str())).collect();
            if matched.is_empty() {
                let hint = self
                    .env
                    .registry
                    .suggest(pat)
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| "`stepwise tools list` shows the tools".into());
                self.err(&tp, format!("`{pat}` matches no tool")).hint = Some(hint);
            }
            for n in matched {
                let side = self.env.registry.spec(n).map(|s| s.side_effects).unwrap_or(false);
                // A glob quietly leaves out tools the policy forbids; a name must be allowed.
                if !pat.contains(['*', '?', '['])
                    && let Some(why) = self.policy.refusal(n, side)
                {
                    self.err(&tp, why);
                }
            }
        }
        if a.tools.is_empty() {
            self.err(&format!("{ap}/tools"), "an agent needs at least one tool")
                .hint = Some(
                "list tool names or globs, e.g. `tools: [time.now]`; for a plain model call use an `llm` step".into(),
            );
        }
        let policy = crate::plan::ToolPolicy::new(Some(&a.tools), &[]).ok()?;
        let time_budget = match &a.time_budget {
            Some(t) => Some(self.duration(t, &format!("{ap}/time_budget"))?),
            None => None,
        };
        if a.max_turns == Some(0) {
            self.err(&format!("{ap}/max_turns"), "`max_turns` must be at least 1");
        }
        let model = self.model_spec(a.model.as_ref(), &format!("{ap}/model"));
        let memory = match &a.memory {
            Some(m) => Some(self.agent_memory(m, &format!("{ap}/memory"), own)?),
            None => None,
        };
        Some(StepKind::Agent(Box::new(AgentStep {
            prompt: prompt?,
            instructions,
            tools: a.tools.clone(),
            policy,
            max_turns: a.max_turns.unwrap_or(6).max(1),
            max_tokens: a.max_tokens.unwrap_or(16_384),
            time_budget,
            model,
            memory,
        })))
    }

    fn agent_memory(&mut self, m: &AgentMemoryConfig, mp: &str, own: Option<&str>) -> Option<AgentMemory> {
        let thread = match &m.thread {
            Some(t) if t.contains("${") => Some(self.text_template(t, &format!("{mp}/thread"), own)?),
            Some(t) => {
                if let Some(why) = stepwise_memory::threads::thread_id_problem(t) {
                    self.err(&format!("{mp}/thread"), why).hint =
                        Some("e.g. `thread: trip-planning` or `thread: user-${inputs.user}`".into());
                }
                self.text_template(t, &format!("{mp}/thread"), own)
            }
            None => None,
        };
        if m.namespace.trim().is_empty() {
            self.err(&format!("{mp}/namespace"), "`namespace` cannot be empty").hint =
                Some("leave it out for the `default` namespace".into());
        }
        if m.recall.k > MAX_RECALL_K {
            self.err(
                &format!("{mp}/recall/k"),
                format!("`k` is {}; at most {MAX_RECALL_K} memories can be injected", m.recall.k),
            )
            .hint = Some("a small model does best with 3–5; 0 turns injection off".into());
        }
        if !(-1.0..=1.0).contains(&m.recall.min_cosine) {
            self.err(
                &format!("{mp}/recall/min_cosine"),
                format!("`min_cosine` {} is not a cosine similarity", m.recall.min_cosine),
            )
            .hint = Some("use a value between -1 and 1, e.g. 0.3".into());
        }
        if m.history_tokens < 0 {
            self.err(
                &format!("{mp}/history_tokens"),
                format!("`history_tokens` is {}; it cannot be negative", m.history_tokens),
            )
            .hint = Some("0 replays no earlier messages".into());
        }
        Some(AgentMemory {
            config: m.clone(),
            thread,
        })
    }
}

/// Most memories an agent step may have injected.
const MAX_RECALL_K: usize = 50;
