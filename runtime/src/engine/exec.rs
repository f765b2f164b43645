//! Executing lists and steps.

use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{Map, Value};
use stepwise_plugins::rhai_sandbox::{self, ToolBridge};

use super::scope::{Scope, Status, StepResult};
use super::{EngineEvent, RunCtx};
use crate::journal::{Op, json_text, now_us};
use crate::plan::expr::{Expr, Template, from_dynamic};
use crate::plan::{ErrorAction, Plan, Step, StepKind, StepList};

/// How long a step may run before its start is written to the journal on its own.
const START_GRACE: std::time::Duration = std::time::Duration::from_millis(2);

/// Why a list stopped: a step failed and nothing handled it.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub message: String,
}

/// What a step's execution came to, as seen by the list that runs it.
enum Done {
    Finished(StepResult),
    /// Failed; skip ahead to this index of the same list.
    Goto(StepResult, usize),
}

/// One attempt's error.
struct AttemptError {
    message: String,
    retryable: bool,
}

impl From<super::ai::AiError> for AttemptError {
    fn from(e: super::ai::AiError) -> Self {
        AttemptError {
            message: e.message,
            retryable: e.retryable,
        }
    }
}

impl AttemptError {
    fn fatal(message: impl Into<String>) -> Self {
        AttemptError {
            message: message.into(),
            retryable: false,
        }
    }
}

pub(crate) fn render_outputs(run: &RunCtx, plan: &Plan, scope: &Scope) -> Result<Value, String> {
    let mut out = Map::new();
    for (name, t) in &plan.outputs {
        let v = render(run, t, scope).map_err(|e| format!("output `{name}`: {e}"))?;
        out.insert(name.clone(), v);
    }
    Ok(Value::Object(out))
}

fn render(run: &RunCtx, t: &Template, scope: &Scope) -> Result<Value, String> {
    t.render(&mut |e: &Expr| scope.eval(&run.shared.expr_engine, e))
}

#[derive(Clone, Copy, PartialEq)]
enum Slot {
    Waiting,
    Running,
    Done,
}

impl RunCtx {
    /// Run a list of steps, respecting `needs`, concurrently where allowed. Returns the
    /// output of the list's last step.
    pub(crate) fn run_list<'a>(
        self: Arc<Self>,
        list: &'a StepList,
        scope: Arc<Scope>,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        Box::pin(async move {
            let n = list.steps.len();
            // Dependency counting: `waiting_on[i]` unfinished steps before `i` may start;
            // `users[d]` are the steps that wait for `d`.
            let mut waiting_on: Vec<usize> = list.deps.iter().map(Vec::len).collect();
            let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
            for (i, deps) in list.deps.iter().enumerate() {
                for &d in deps {
                    users[d].push(i);
                }
            }
            let mut slots = vec![Slot::Waiting; n];
            let mut results: Vec<Option<StepResult>> = vec![None; n];
            let mut ready: Vec<usize> = (0..n).filter(|&i| waiting_on[i] == 0).rev().collect();
            let mut running = FuturesUnordered::new();
            loop {
                while let Some(i) = ready.pop() {
                    if slots[i] != Slot::Waiting {
                        continue;
                    }
                    slots[i] = Slot::Running;
                    let step = list.steps[i].clone();
                    let me = self.clone();
                    let sc = scope.clone();
                    running.push(async move { (i, me.run_step(step, sc).await) });
                }
                let Some((i, done)) = running.next().await else {
                    break;
                };
                let mut finished = vec![i];
                match done {
                    Ok(Done::Finished(r)) => results[i] = Some(r),
                    Ok(Done::Goto(r, target)) => {
                        results[i] = Some(r);
                        for j in (i + 1)..target {
                            if slots[j] == Slot::Waiting {
                                slots[j] = Slot::Done;
                                let why = format!(
                                    "skipped: `{}` failed and jumped to `{}`",
                                    list.steps[i].id, list.steps[target].id
                                );
                                let skipped = self
                                    .record_skip(&list.steps[j], &scope, Some(why))
                                    .await
                                    .map_err(|message| Failure { message })?;
                                results[j] = Some(skipped);
                                finished.push(j);
                            }
                        }
                    }
                    Err(f) => return Err(f),
                }
                slots[i] = Slot::Done;
                for d in finished {
                    for &u in &users[d] {
                        waiting_on[u] -= 1;
                        if waiting_on[u] == 0 {
                            ready.push(u);
                        }
                    }
                }
            }
            Ok(results
                .last()
                .and_then(|r| r.as_ref())
                .map(|r| (*r.output).clone())
                .unwrap_or(Value::Null))
        })
    }

    async fn record_skip(&self, step: &Step, scope: &Scope, why: Option<String>) -> Result<StepResult, String> {
        let key = scope.key(&step.id);
        let r = StepResult {
            status: Status::Skipped,
            output: Arc::new(Value::Null),
        };
        self.shared
            .journal
            .commit(vec![self.finished_op(&key, step, "skipped", 0, None, why)])
            .await
            .map_err(|e| e.to_string())?;
        self.finish(&key, step, scope, r.clone(), 0, true, None);
        Ok(r)
    }

    /// The journal record of a step reaching a final state.
    fn finished_op(
        &self,
        key: &str,
        step: &Step,
        status: &'static str,
        attempt: u32,
        output: Option<String>,
        error: Option<String>,
    ) -> Op {
        Op::StepFinished {
            run: self.id.clone(),
            key: key.to_string(),
            step_id: step.id.clone(),
            kind: step.kind.name(),
            status,
            attempt,
            output,
            error,
            seq: self.next_event(),
            at: now_us(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        key: &str,
        step: &Step,
        scope: &Scope,
        r: StepResult,
        dur: u64,
        replayed: bool,
        error: Option<String>,
    ) {
        scope.set(&step.id, r.clone());
        self.emit(EngineEvent::StepFinished {
            run: self.id.clone(),
            key: key.to_string(),
            status: r.status.as_str().into(),
            duration_us: dur,
            replayed,
            error,
        });
        if let Ok(mut d) = self.done.lock() {
            d.insert(key.to_string(), r);
        }
    }

    async fn run_step(self: Arc<Self>, step: Arc<Step>, scope: Arc<Scope>) -> Result<Done, Failure> {
        let key = scope.key(&step.id);
        let replay = self.done.lock().ok().and_then(|d| d.get(&key).cloned());
        if let Some(r) = replay {
            scope.set(&step.id, r.clone());
            self.emit(EngineEvent::StepFinished {
                run: self.id.clone(),
                key,
                status: r.status.as_str().into(),
                duration_us: 0,
                replayed: true,
                error: None,
            });
            return Ok(Done::Finished(r));
        }
        let at_fail = |m: String| Failure {
            message: format!("step `{}` ({}): {m}", key, self.where_(&step)),
        };
        if let Some(cond) = &step.when {
            let v = scope
                .eval(&self.shared.expr_engine, cond)
                .map_err(|e| at_fail(format!("`when`: {e}")))?;
            if !truthy(&v) {
                let r = self.record_skip(&step, &scope, None).await.map_err(at_fail)?;
                return Ok(Done::Finished(r));
            }
        }
        let started = Instant::now();
        let mut attempt = self.prior_attempts.get(&key).copied().unwrap_or(0);
        let mut tries = 0u32;
        loop {
            attempt += 1;
            tries += 1;
            if self.cancel.is_cancelled() {
                return Err(at_fail("cancelled".into()));
            }
            // The start record rides with the step's finish commit when the step is quick
            // (one commit per step); a step still running after a moment has its start
            // record written on its own so the journal shows it as running.
            let mut start = Some(Op::StepStarted {
                run: self.id.clone(),
                key: key.clone(),
                step_id: step.id.clone(),
                kind: step.kind.name(),
                attempt,
                seq: self.next_event(),
                at: now_us(),
            });
            self.emit(EngineEvent::StepStarted {
                run: self.id.clone(),
                key: key.clone(),
                attempt,
            });
            let exec = self.clone().execute(step.clone(), scope.clone(), key.clone());
            let timed = async {
                match step.timeout {
                    Some(t) => match tokio::time::timeout(t, exec).await {
                        Ok(r) => r,
                        Err(_) => Err(AttemptError {
                            message: format!("timed out after {}", humantime::format_duration(t)),
                            retryable: true,
                        }),
                    },
                    None => exec.await,
                }
            };
            tokio::pin!(timed);
            let result = tokio::select! {
                biased;
                r = &mut timed => r,
                _ = tokio::time::sleep(START_GRACE) => {
                    if let Some(op) = start.take() {
                        self.shared.journal.submit(vec![op]);
                    }
                    timed.await
                }
            };
            let with_start = |op: Op, start: &mut Option<Op>| match start.take() {
                Some(s) => vec![s, op],
                None => vec![op],
            };
            match result {
                Ok(output) => {
                    let text = if output.is_null() {
                        None
                    } else {
                        Some(json_text(&output))
                    };
                    let ops = with_start(
                        self.finished_op(&key, &step, "succeeded", attempt, text, None),
                        &mut start,
                    );
                    self.shared
                        .journal
                        .commit(ops)
                        .await
                        .map_err(|e| at_fail(format!("journal: {e}")))?;
                    let r = StepResult {
                        status: Status::Succeeded,
                        output: Arc::new(output),
                    };
                    self.finish(
                        &key,
                        &step,
                        &scope,
                        r.clone(),
                        started.elapsed().as_micros() as u64,
                        false,
                        None,
                    );
                    return Ok(Done::Finished(r));
                }
                Err(e) if e.retryable && tries < step.retry.attempts && !self.cancel.is_cancelled() => {
                    let delay = step.retry.delay_before(tries + 1);
                    let ops = with_start(
                        Op::AttemptFailed {
                            run: self.id.clone(),
                            key: key.clone(),
                            attempt,
                            error: e.message.clone(),
                            seq: self.next_event(),
                            at: now_us(),
                        },
                        &mut start,
                    );
                    self.shared.journal.submit(ops);
                    self.emit(EngineEvent::StepRetrying {
                        run: self.id.clone(),
                        key: key.clone(),
                        attempt,
                        error: e.message.clone(),
                        delay_ms: delay.as_millis() as u64,
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.cancel.cancelled() => {}
                    }
                }
                Err(e) => {
                    let message = if self.cancel.is_cancelled() {
                        "cancelled".to_string()
                    } else {
                        e.message
                    };
                    let handled = !self.cancel.is_cancelled() && step.on_error != ErrorAction::Fail;
                    let ops = with_start(
                        self.finished_op(
                            &key,
                            &step,
                            if handled { "continued" } else { "failed" },
                            attempt,
                            None,
                            Some(message.clone()),
                        ),
                        &mut start,
                    );
                    self.shared
                        .journal
                        .commit(ops)
                        .await
                        .map_err(|e| at_fail(format!("journal: {e}")))?;
                    let dur = started.elapsed().as_micros() as u64;
                    if !handled {
                        self.emit(EngineEvent::StepFinished {
                            run: self.id.clone(),
                            key: key.clone(),
                            status: "failed".into(),
                            duration_us: dur,
                            replayed: false,
                            error: Some(message.clone()),
                        });
                        return Err(at_fail(message));
                    }
                    let r = StepResult {
                        status: Status::Continued,
                        output: Arc::new(Value::Null),
                    };
                    self.finish(&key, &step, &scope, r.clone(), dur, false, Some(message));
                    return Ok(match step.on_error {
                        ErrorAction::Goto(t) => Done::Goto(r, t),
                        _ => Done::Finished(r),
                    });
                }
            }
        }
    }

    fn where_(&self, step: &Step) -> String {
        let file = self
            .plan
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| self.plan.name.clone());
        format!("{file}:{}:{}", step.pos.line, step.pos.col)
    }

    async fn execute(self: Arc<Self>, step: Arc<Step>, scope: Arc<Scope>, key: String) -> Result<Value, AttemptError> {
        match &step.kind {
            StepKind::Tool { name, args } => {
                let args = render(&self, args, &scope).map_err(|e| AttemptError::fatal(format!("arguments: {e}")))?;
                let cx = self.tool_cx.for_step(&self.id, &key);
                self.shared
                    .registry
                    .call(name, args, &cx)
                    .await
                    .map_err(|e| AttemptError {
                        retryable: e.is_retryable(),
                        message: e.to_string(),
                    })
            }
            StepKind::Script { expr } => self.script(expr, &scope, &key, &step).await,
            StepKind::ForEach {
                items,
                var,
                concurrency,
                body,
            } => {
                let items = scope
                    .eval(&self.shared.expr_engine, items)
                    .map_err(|e| AttemptError::fatal(format!("`for_each.items`: {e}")))?;
                let Value::Array(items) = items else {
                    return Err(AttemptError::fatal(format!(
                        "`for_each.items` must give a list, got {}",
                        short(&items)
                    )));
                };
                let me = self.clone();
                let outs: Vec<Result<Value, Failure>> = futures::stream::iter(items.into_iter().enumerate())
                    .map(|(i, item)| {
                        let child = scope.child(
                            format!("{key}[{i}]."),
                            vec![(var.clone(), item), ("index".into(), Value::from(i))],
                        );
                        me.clone().run_list(body, child)
                    })
                    .buffered(*concurrency)
                    .collect()
                    .await;
                let mut list = Vec::with_capacity(outs.len());
                for o in outs {
                    list.push(o.map_err(|f| AttemptError::fatal(f.message))?);
                }
                Ok(Value::Array(list))
            }
            StepKind::Parallel { body } => {
                self.clone()
                    .run_list(body, scope.clone())
                    .await
                    .map_err(|f| AttemptError::fatal(f.message))?;
                let mut out = Map::new();
                for s in &body.steps {
                    let v = scope.get(&s.id).map(|r| (*r.output).clone()).unwrap_or(Value::Null);
                    out.insert(s.id.clone(), v);
                }
                Ok(Value::Object(out))
            }
            StepKind::Branch { arms } => {
                for (cond, body) in arms {
                    let take = match cond {
                        Some(c) => truthy(
                            &scope
                                .eval(&self.shared.expr_engine, c)
                                .map_err(|e| AttemptError::fatal(format!("branch `when`: {e}")))?,
                        ),
                        None => true,
                    };
                    if take {
                        return self
                            .clone()
                            .run_list(body, scope.clone())
                            .await
                            .map_err(|f| AttemptError::fatal(f.message));
                    }
                }
                Ok(Value::Null)
            }
            StepKind::Workflow { plan, args } => {
                let args = render(&self, args, &scope).map_err(|e| AttemptError::fatal(format!("inputs: {e}")))?;
                let Value::Object(args) = args else {
                    return Err(AttemptError::fatal("`with` must be a map"));
                };
                let inputs = plan.resolve_inputs(args).map_err(|errs| {
                    AttemptError::fatal(format!("inputs of workflow `{}`: {}", plan.name, errs.join("; ")))
                })?;
                let sub = Scope::root(Arc::new(inputs), format!("{key}/"));
                self.clone()
                    .run_list(&plan.steps, sub.clone())
                    .await
                    .map_err(|f| AttemptError::fatal(f.message))?;
                render_outputs(&self, plan, &sub).map_err(AttemptError::fatal)
            }
            StepKind::Llm(l) => self.llm(l, &scope).await.map_err(AttemptError::from),
            StepKind::Agent(a) => self.agent(a, &scope, &key, &step.id).await.map_err(AttemptError::from),
        }
    }

    async fn script(&self, expr: &Expr, scope: &Scope, key: &str, step: &Step) -> Result<Value, AttemptError> {
        let limits = self.shared.config.script_limits.clone();
        let mut rscope = scope.rhai_scope(expr, true);
        let ast = expr.ast.clone();
        let plan = self.plan.clone();
        let policy_plan = plan.clone();
        let registry = self.shared.registry.clone();
        let bridge = ToolBridge {
            registry: self.shared.registry.clone(),
            cx: self.tool_cx.for_step(&self.id, key),
            handle: tokio::runtime::Handle::current(),
            // Scripts obey the plan's tool policy like tool steps do.
            allowed: Some(Arc::new(move |name: &str| {
                let side = registry.spec(name).map(|s| s.side_effects).unwrap_or(false);
                policy_plan.policy.refusal(name, side).is_none()
            })),
        };
        let cancel = self.cancel.clone();
        let path = format!("{}/script", step.path);
        let res = tokio::task::spawn_blocking(move || {
            let engine = rhai_sandbox::script_engine(&limits, cancel, Some(bridge));
            engine
                .eval_ast_with_scope::<rhai::Dynamic>(&mut rscope, &ast)
                .map_err(|e| rhai_sandbox::explain_eval_error(&e, &limits))
                .and_then(|d| {
                    from_dynamic(&d).map_err(|m| rhai_sandbox::ScriptError {
                        message: format!("the script's value cannot be stored as JSON: {m}"),
                        position: None,
                    })
                })
        })
        .await
        .map_err(|e| AttemptError::fatal(format!("script task failed: {e}")))?;
        res.map_err(|e| {
            let at = match e.position {
                Some((l, c)) => {
                    let p = plan.pos_in_scalar(&path, l, c);
                    let file = plan
                        .path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| plan.name.clone());
                    format!(" at {file}:{}:{}", p.line, p.col)
                }
                None => String::new(),
            };
            AttemptError::fatal(format!("{}{at}", e.message))
        })
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", &s[..s.floor_char_boundary(60)])
    } else {
        s
    }
}
