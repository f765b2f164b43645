//! What expressions see: inputs, results of earlier steps, loop variables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rhai::Dynamic;
use serde_json::Value;

use crate::plan::expr::{Expr, from_dynamic, to_dynamic};

/// Final state of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Succeeded,
    Skipped,
    /// Failed, and `on_error` let the run go on.
    Continued,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Skipped => "skipped",
            Status::Continued => "continued",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "succeeded" => Some(Status::Succeeded),
            "skipped" => Some(Status::Skipped),
            "continued" => Some(Status::Continued),
            _ => None,
        }
    }
}

/// A finished step's result.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub status: Status,
    pub output: Arc<Value>,
}

/// One level of names: a plan (or sub-workflow) body, or one iteration of a for_each.
pub struct Scope {
    parent: Option<Arc<Scope>>,
    pub inputs: Arc<Value>,
    vars: Vec<(String, Value)>,
    results: Mutex<HashMap<String, StepResult>>,
    /// Prefix of the journal keys of steps run in this scope (`fan[3].`, `call/`).
    pub prefix: String,
}

impl Scope {
    /// The top scope of a plan.
    pub fn root(inputs: Arc<Value>, prefix: String) -> Arc<Scope> {
        Arc::new(Scope {
            parent: None,
            inputs,
            vars: Vec::new(),
            results: Mutex::new(HashMap::new()),
            prefix,
        })
    }

    /// A child scope (one loop iteration) with extra variables.
    pub fn child(self: &Arc<Self>, prefix: String, vars: Vec<(String, Value)>) -> Arc<Scope> {
        Arc::new(Scope {
            parent: Some(self.clone()),
            inputs: self.inputs.clone(),
            vars,
            results: Mutex::new(HashMap::new()),
            prefix,
        })
    }

    pub fn key(&self, id: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + id.len());
        k.push_str(&self.prefix);
        k.push_str(id);
        k
    }

    pub fn set(&self, id: &str, r: StepResult) {
        if let Ok(mut m) = self.results.lock() {
            m.insert(id.to_string(), r);
        }
    }

    pub fn get(&self, id: &str) -> Option<StepResult> {
        let mine = self.results.lock().ok().and_then(|m| m.get(id).cloned());
        match mine {
            Some(r) => Some(r),
            None => self.parent.as_ref().and_then(|p| p.get(id)),
        }
    }

    fn var(&self, name: &str) -> Option<&Value> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .or_else(|| self.parent.as_ref().and_then(|p| p.var(name)))
    }

    fn all_vars(&self, out: &mut Vec<(String, Value)>) {
        if let Some(p) = &self.parent {
            p.all_vars(out);
        }
        for (n, v) in &self.vars {
            out.retain(|(m, _)| m != n);
            out.push((n.clone(), v.clone()));
        }
    }

    fn all_results(&self, out: &mut HashMap<String, StepResult>) {
        if let Some(p) = &self.parent {
            p.all_results(out);
        }
        if let Ok(m) = self.results.lock() {
            for (k, v) in m.iter() {
                out.insert(k.clone(), v.clone());
            }
        }
    }

    /// A Rhai scope for `expr`: `inputs`, the `steps` it names (or every visible one for
    /// scripts), and loop variables.
    pub fn rhai_scope(&self, expr: &Expr, all_steps: bool) -> rhai::Scope<'static> {
        let mut s = rhai::Scope::new();
        if all_steps || expr.vars.contains("inputs") {
            s.push_constant_dynamic("inputs", to_dynamic(&self.inputs));
        }
        if all_steps || !expr.step_refs.is_empty() {
            let mut map = rhai::Map::new();
            let mut add = |id: &str, r: &StepResult| {
                let mut entry = rhai::Map::new();
                entry.insert("output".into(), to_dynamic(&r.output));
                entry.insert("status".into(), Dynamic::from(r.status.as_str().to_string()));
                map.insert(id.into(), Dynamic::from_map(entry));
            };
            if all_steps {
                let mut all = HashMap::new();
                self.all_results(&mut all);
                for (id, r) in &all {
                    add(id, r);
                }
            } else {
                for id in &expr.step_refs {
                    if let Some(r) = self.get(id) {
                        add(id, &r);
                    }
                }
            }
            s.push_constant_dynamic("steps", Dynamic::from_map(map));
        }
        if all_steps {
            let mut vars = Vec::new();
            self.all_vars(&mut vars);
            for (n, v) in vars {
                s.push_constant_dynamic(n, to_dynamic(&v));
            }
        } else {
            for name in &expr.vars {
                if name != "inputs"
                    && name != "steps"
                    && let Some(v) = self.var(name)
                {
                    s.push_constant_dynamic(name.clone(), to_dynamic(v));
                }
            }
        }
        s
    }

    /// Evaluate a pure expression.
    pub fn eval(&self, engine: &rhai::Engine, expr: &Expr) -> Result<Value, String> {
        let mut scope = self.rhai_scope(expr, false);
        let d = engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &expr.ast)
            .map_err(|e| format!("`{}`: {}", expr.source, strip_position(&e.to_string())))?;
        from_dynamic(&d)
    }
}

fn strip_position(s: &str) -> &str {
    match s.rfind(" (line ") {
        Some(i) => &s[..i],
        None => s,
    }
}
