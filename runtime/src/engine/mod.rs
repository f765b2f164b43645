//! The durable engine: runs a checked [`Plan`] step by step (concurrently where the plan
//! allows), journals every transition, and resumes runs from the journal without running a
//! finished step again.

mod ai;
pub use ai::DEFAULT_INSTRUCTIONS;
pub(crate) use ai::{captured_text, clip, observation_text, stored_message, text_history, with_memories};
mod exec;
pub mod models;
pub mod scope;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use stepwise_plugins::PluginHost;
use stepwise_plugins::rhai_sandbox::{self, Limits};
use stepwise_tools::{Registry, ToolContext};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::journal::{Journal, Op, json_text, now_us};
use crate::plan::{CheckEnv, Plan};
use scope::{Scope, Status, StepResult};

/// Something that happened in a run, for live progress and the daemon's event streams.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EngineEvent {
    RunStarted {
        run: String,
        plan: String,
        resumed: bool,
    },
    StepStarted {
        run: String,
        key: String,
        attempt: u32,
    },
    StepRetrying {
        run: String,
        key: String,
        attempt: u32,
        error: String,
        delay_ms: u64,
    },
    StepFinished {
        run: String,
        key: String,
        status: String,
        duration_us: u64,
        replayed: bool,
        error: Option<String>,
    },
    RunFinished {
        run: String,
        status: String,
        error: Option<String>,
    },
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub run_id: String,
    pub status: String,
    pub outputs: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunOutcome {
    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }
}

/// Settings shared by every run of an engine.
#[derive(Clone)]
pub struct EngineConfig {
    /// Root directory for file tools.
    pub workspace: PathBuf,
    /// Limits of script steps.
    pub script_limits: Limits,
    /// Limits of expressions (conditions, templates).
    pub expr_limits: Limits,
    /// Models of `llm` and `agent` steps.
    pub models: models::ModelHub,
    /// Memory of agent steps with a `memory:` block (the journal's database, usually).
    pub memory: Option<stepwise_memory::Memory>,
}

impl EngineConfig {
    pub fn new(workspace: impl Into<PathBuf>) -> Self {
        EngineConfig {
            workspace: workspace.into(),
            script_limits: Limits::default(),
            // Conditions and templates run on the async executor: keep them short.
            expr_limits: Limits {
                max_operations: 200_000,
                timeout: Duration::from_secs(1),
                ..Limits::default()
            },
            models: models::ModelHub::default(),
            memory: None,
        }
    }
}

pub(crate) struct Shared {
    pub journal: Journal,
    pub registry: Registry,
    pub config: EngineConfig,
    pub expr_engine: rhai::Engine,
    pub tool_cx: ToolContext,
    pub observer: Option<mpsc::UnboundedSender<EngineEvent>>,
    /// Plugins started for the plans of this engine (their tools live in `registry`).
    pub plugins: Arc<PluginHost>,
}

/// The engine. Cheap to clone; runs may be started concurrently.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    pub fn new(journal: Journal, registry: Registry, config: EngineConfig) -> Self {
        let expr_engine = rhai_sandbox::expression_engine(&config.expr_limits);
        let tool_cx = ToolContext::new(config.workspace.clone());
        let plugins = Arc::new(PluginHost::new(registry.clone(), config.workspace.clone()));
        Engine {
            shared: Arc::new(Shared {
                journal,
                registry,
                config,
                expr_engine,
                tool_cx,
                observer: None,
                plugins,
            }),
        }
    }

    /// The same engine, reporting progress to `tx`.
    pub fn with_observer(&self, tx: mpsc::UnboundedSender<EngineEvent>) -> Self {
        let s = &self.shared;
        Engine {
            shared: Arc::new(Shared {
                journal: s.journal.clone(),
                registry: s.registry.clone(),
                config: s.config.clone(),
                expr_engine: rhai_sandbox::expression_engine(&s.config.expr_limits),
                tool_cx: s.tool_cx.clone(),
                observer: Some(tx),
                plugins: s.plugins.clone(),
            }),
        }
    }

    /// Network rules for tools started by this engine.
    pub fn set_net_policy(&mut self, net: stepwise_tools::NetPolicy) {
        if let Some(s) = Arc::get_mut(&mut self.shared) {
            s.tool_cx.net = net;
        }
    }

    pub fn journal(&self) -> &Journal {
        &self.shared.journal
    }

    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Root directory of file tools.
    pub fn workspace(&self) -> &Path {
        &self.shared.config.workspace
    }

    /// An expression engine with the plan-checking limits (for `validate`).
    pub fn check_env(&self) -> CheckEnv<'_> {
        CheckEnv {
            registry: &self.shared.registry,
            engine: &self.shared.expr_engine,
        }
    }

    /// Load and check a plan file with this engine's tools.
    pub fn load_plan(&self, path: &Path) -> Result<Plan> {
        crate::plan::load_file(path, &self.check_env()).map_err(Error::Plan)
    }

    /// The plugins started by this engine's plans.
    pub fn plugins(&self) -> &Arc<PluginHost> {
        &self.shared.plugins
    }

    /// Load a plan file: start the plugins it declares (and those of the workflows it
    /// calls), then check it against the tools they add. Problems of both kinds come back
    /// together.
    pub async fn prepare_plan(&self, path: &Path) -> Result<Plan> {
        let display = path.display().to_string();
        let started = match std::fs::read_to_string(path) {
            Ok(src) => crate::plan::plugins::start_plan_plugins(&self.shared.plugins, &src, &display, Some(path)).await,
            Err(_) => Ok(()), // load_file reports it
        };
        let checked = crate::plan::load_file(path, &self.check_env());
        merge_problems(started, checked)
    }

    /// Start a new run of `plan` and drive it to the end.
    pub async fn run(
        &self,
        plan: Arc<Plan>,
        inputs: Map<String, Value>,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        let inputs = plan.resolve_inputs(inputs).map_err(Error::Inputs)?;
        let id = ulid::Ulid::new().to_string().to_lowercase();
        let at = now_us();
        self.shared
            .journal
            .commit(vec![Op::RunCreated {
                id: id.clone(),
                plan_name: plan.name.clone(),
                plan_path: plan.path.as_ref().map(|p| p.display().to_string()),
                plan_source: plan.source.clone(),
                plan_hash: plan.hash.clone(),
                inputs: json_text(&inputs),
                pid: std::process::id(),
                parent: None,
                at,
            }])
            .await?;
        let run = RunCtx::new(
            self.shared.clone(),
            id,
            plan,
            Arc::new(inputs),
            HashMap::new(),
            HashMap::new(),
            1,
            cancel,
        );
        Ok(run.drive(false).await)
    }

    /// Continue a run that was interrupted or failed: finished steps are replayed from the
    /// journal, everything else runs.
    pub async fn resume(&self, run_id: &str, force: bool, cancel: CancellationToken) -> Result<RunOutcome> {
        let id = self.shared.journal.resolve_id(run_id).await?;
        let rid = id.clone();
        let (record, steps, ev_seq) = self
            .shared
            .journal
            .read(move |c| {
                Ok((
                    crate::journal::read_run(c, &rid)?,
                    crate::journal::read_steps(c, &rid)?,
                    crate::journal::read_max_seq(c, &rid)?,
                ))
            })
            .await?;
        match record.status.as_str() {
            "succeeded" => {
                return Err(Error::NotResumable {
                    id,
                    why: "it already succeeded".into(),
                });
            }
            "running" if !force => {
                if let Some(pid) = record.pid
                    && pid as u32 != std::process::id()
                    && process_alive(pid)
                {
                    return Err(Error::NotResumable {
                        id,
                        why: format!("process {pid} is still running it (use --force if that is wrong)"),
                    });
                }
            }
            _ => {}
        }
        let path = record.plan_path.as_ref().map(PathBuf::from);
        // The plan's plugins are started again (a resumed run may be in a new process).
        let started = crate::plan::plugins::start_plan_plugins(
            &self.shared.plugins,
            &record.plan_source,
            &record.plan_name,
            path.as_deref(),
        )
        .await;
        let checked = crate::plan::load_str(
            &record.plan_source,
            &record.plan_name,
            path.as_deref(),
            &self.check_env(),
        );
        let plan = merge_problems(started, checked)?;
        let mut done = HashMap::new();
        let mut attempts = HashMap::new();
        for s in steps {
            match Status::parse(&s.status) {
                Some(status) => {
                    done.insert(
                        s.key,
                        StepResult {
                            status,
                            output: Arc::new(s.output.unwrap_or(Value::Null)),
                        },
                    );
                }
                None => {
                    attempts.insert(s.key, s.attempts);
                }
            }
        }
        let run = RunCtx::new(
            self.shared.clone(),
            id.clone(),
            Arc::new(plan),
            Arc::new(record.inputs),
            done,
            attempts,
            ev_seq + 1,
            cancel,
        );
        let seq = run.next_event();
        self.shared
            .journal
            .commit(vec![Op::RunResumed {
                id,
                pid: std::process::id(),
                seq,
                at: now_us(),
            }])
            .await?;
        Ok(run.drive(true).await)
    }
}

/// A plan, or every problem found while starting its plugins and checking it.
fn merge_problems(
    started: std::result::Result<(), crate::plan::Diagnostics>,
    checked: std::result::Result<Plan, crate::plan::Diagnostics>,
) -> Result<Plan> {
    match (started, checked) {
        (Ok(()), Ok(p)) => Ok(p),
        (Ok(()), Err(d)) => Err(Error::Plan(d)),
        (Err(mut a), checked) => {
            if let Err(b) = checked {
                a.0.extend(b.0);
            }
            a.0.dedup();
            Err(Error::Plan(a))
        }
    }
}

fn process_alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// State of one run while it executes.
pub(crate) struct RunCtx {
    pub shared: Arc<Shared>,
    pub id: String,
    pub plan: Arc<Plan>,
    pub inputs: Arc<Value>,
    /// Finished steps by key: loaded from the journal on resume, then kept up to date.
    pub done: std::sync::Mutex<HashMap<String, StepResult>>,
    /// Attempts already made by unfinished steps (so numbering continues on resume).
    pub prior_attempts: HashMap<String, u32>,
    event_seq: AtomicI64,
    pub cancel: CancellationToken,
    pub tool_cx: ToolContext,
}

impl RunCtx {
    #[allow(clippy::too_many_arguments)]
    fn new(
        shared: Arc<Shared>,
        id: String,
        plan: Arc<Plan>,
        inputs: Arc<Value>,
        done: HashMap<String, StepResult>,
        prior_attempts: HashMap<String, u32>,
        event_seq: i64,
        cancel: CancellationToken,
    ) -> Arc<RunCtx> {
        let mut tool_cx = shared.tool_cx.clone();
        tool_cx.run_id = Some(id.clone());
        tool_cx.cancel = cancel.clone();
        Arc::new(RunCtx {
            shared,
            id,
            plan,
            inputs,
            done: std::sync::Mutex::new(done),
            prior_attempts,
            event_seq: AtomicI64::new(event_seq),
            cancel,
            tool_cx,
        })
    }

    pub fn next_event(&self) -> i64 {
        self.event_seq.fetch_add(1, Ordering::Relaxed)
    }

    pub fn emit(&self, ev: EngineEvent) {
        if let Some(tx) = &self.shared.observer {
            let _ = tx.send(ev);
        }
    }

    async fn drive(self: Arc<Self>, resumed: bool) -> RunOutcome {
        self.emit(EngineEvent::RunStarted {
            run: self.id.clone(),
            plan: self.plan.name.clone(),
            resumed,
        });
        let scope = Scope::root(self.inputs.clone(), String::new());
        let plan = self.plan.clone();
        let result = self.clone().run_list(&plan.steps, scope.clone()).await;
        let (status, outputs, error) = match result {
            Ok(_) => match exec::render_outputs(&self, &plan, &scope) {
                Ok(o) => ("succeeded", o, None),
                Err(e) => ("failed", Value::Null, Some(format!("computing outputs: {e}"))),
            },
            Err(f) if self.cancel.is_cancelled() => ("cancelled", Value::Null, Some(f.message)),
            Err(f) => ("failed", Value::Null, Some(f.message)),
        };
        let op = Op::RunFinished {
            id: self.id.clone(),
            status,
            outputs: if outputs.is_null() {
                None
            } else {
                Some(json_text(&outputs))
            },
            error: error.clone(),
            seq: self.next_event(),
            at: now_us(),
        };
        let (status, error) = match self.shared.journal.commit(vec![op]).await {
            Ok(()) => (status, error),
            Err(e) => ("failed", Some(format!("could not record the end of the run: {e}"))),
        };
        self.emit(EngineEvent::RunFinished {
            run: self.id.clone(),
            status: status.to_string(),
            error: error.clone(),
        });
        RunOutcome {
            run_id: self.id.clone(),
            status: status.to_string(),
            outputs,
            error,
        }
    }
}
