//! From text to a checked [`Plan`]: parse, check the structure against the generated JSON
//! Schema, then check meaning (ids, references, tools, expressions, durations). Every
//! problem is collected, so one `stepwise validate` shows them all.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use regex::Regex;
use rhai::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use stepwise_tools::{Registry, closest};

use super::diag::{Diagnostic, Diagnostics};
use super::expr::{self, Expr, Template};
use super::model::*;
use super::spec::*;
use super::yaml::{self, Pos, SpanMap};

/// What checking needs from the outside world.
pub struct CheckEnv<'a> {
    /// Tools that steps may name.
    pub registry: &'a Registry,
    /// Engine used to compile expressions (limits matter for parse depth).
    pub engine: &'a Engine,
}

/// Load and check a plan file.
pub fn load_file(path: &Path, env: &CheckEnv<'_>) -> Result<Plan, Diagnostics> {
    let display = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![
            Diagnostic::new(&display, Pos { line: 1, col: 1 }, format!("cannot read the file: {e}"))
                .with_hint("check the path"),
        ])
    })?;
    let mut visiting = vec![canonical(path)];
    check_source(&source, &display, Some(path), env, &mut visiting)
}

/// Check plan text that was not read from a file (stored runs, tests).
pub fn load_str(source: &str, name: &str, path: Option<&Path>, env: &CheckEnv<'_>) -> Result<Plan, Diagnostics> {
    let mut visiting: Vec<PathBuf> = path.map(canonical).into_iter().collect();
    check_source(source, name, path, env, &mut visiting)
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn plan_validator() -> Option<&'static jsonschema::Validator> {
    static V: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::to_value(schemars::schema_for!(PlanSpec)).ok()?;
        jsonschema::validator_for(&schema).ok()
    })
    .as_ref()
}

/// Every property name the format knows, for "did you mean" on unknown fields.
fn known_fields() -> &'static Vec<String> {
    static F: OnceLock<Vec<String>> = OnceLock::new();
    F.get_or_init(|| {
        let schema = serde_json::to_value(schemars::schema_for!(PlanSpec)).unwrap_or(Value::Null);
        let mut out = BTreeSet::new();
        collect_props(&schema, &mut out);
        out.into_iter().collect()
    })
}

fn collect_props(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = m.get("properties") {
                out.extend(props.keys().cloned());
            }
            m.values().for_each(|x| collect_props(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_props(x, out)),
        _ => {}
    }
}

mod ai;

/// One list being checked: who owns which id, who waits for whom, and which step is current.
struct Frame {
    owner: HashMap<String, usize>,
    deps: Vec<Vec<usize>>,
    at: usize,
}

/// `Frame::at` for "after every step of the list" (plan outputs).
const AFTER_ALL: usize = usize::MAX;

/// Whether step `from` (transitively) waits for step `target` of the same list.
fn waits_for(deps: &[Vec<usize>], from: usize, target: usize) -> bool {
    let mut seen = vec![false; deps.len()];
    let mut stack: Vec<usize> = deps.get(from).cloned().unwrap_or_default();
    while let Some(d) = stack.pop() {
        if d == target {
            return true;
        }
        if !std::mem::replace(&mut seen[d], true) {
            stack.extend(deps[d].iter().copied());
        }
    }
    false
}

struct Checker<'a> {
    frames: Vec<Frame>,
    /// Paths of objects that had unknown fields removed (already reported).
    pruned: BTreeSet<String>,
    file: String,
    spans: &'a SpanMap,
    env: &'a CheckEnv<'a>,
    diags: Vec<Diagnostic>,
    /// Every step id in the plan → its JSON path.
    ids: HashMap<String, String>,
    inputs: BTreeSet<String>,
    policy: ToolPolicy,
    defaults: (RetryPolicy, Option<Duration>),
    /// `defaults.model`, for `llm` and `agent` steps without their own.
    default_model: Option<super::ai::ModelSpec>,
    base_dir: Option<PathBuf>,
    visiting: &'a mut Vec<PathBuf>,
}

fn check_source(
    source: &str,
    file: &str,
    path: Option<&Path>,
    env: &CheckEnv<'_>,
    visiting: &mut Vec<PathBuf>,
) -> Result<Plan, Diagnostics> {
    let (value, spans) = yaml::parse(source).map_err(|e| {
        Diagnostics(vec![
            Diagnostic::new(file, e.pos, format!("syntax error: {}", e.message))
                .with_hint("plans are YAML or JSON; check indentation and quoting around this place"),
        ])
    })?;

    let mut value = value;
    code_scalars_as_text(&mut value, false);
    let mut diags = structural_errors(&value, &spans, file);
    // Unknown fields are reported, then dropped, so the meaning of the rest can still be
    // checked and every problem shows up in one pass.
    let mut pruned = BTreeSet::new();
    if !diags.is_empty() {
        prune_unknown(&mut value, &mut pruned);
        if !structural_errors(&value, &spans, file).is_empty() {
            diags.sort_by_key(|d| (d.line, d.col));
            return Err(Diagnostics(diags));
        }
    }
    let spec: PlanSpec = match serde_path_to_error::deserialize(value) {
        Ok(s) => s,
        Err(e) => {
            let p = path_to_pointer(&e.path().to_string());
            diags.push(Diagnostic::new(file, spans.pos(&p), e.into_inner().to_string()));
            return Err(Diagnostics(diags));
        }
    };

    let mut c = Checker {
        frames: Vec::new(),
        pruned,
        file: file.to_string(),
        spans: &spans,
        env,
        diags: Vec::new(),
        ids: HashMap::new(),
        inputs: spec.inputs.keys().cloned().collect(),
        policy: ToolPolicy::default(),
        defaults: (RetryPolicy::default(), None),
        default_model: spec.defaults.as_ref().and_then(|d| d.model.clone()),
        base_dir: path.and_then(|p| p.parent().map(Path::to_path_buf)),
        visiting,
    };
    c.policy = match &spec.tools {
        Some(t) => ToolPolicy::new(t.allow.as_deref(), &t.deny).unwrap_or_else(|e| {
            c.err("/tools", e);
            ToolPolicy::default()
        }),
        None => ToolPolicy::default(),
    };
    if let Some(d) = &spec.defaults {
        if let Some(r) = &d.retry {
            c.defaults.0 = c.retry(r, "/defaults/retry");
        }
        if let Some(t) = &d.timeout {
            c.defaults.1 = c.duration(t, "/defaults/timeout");
        }
    }
    let (inputs_schema, inputs_validator) = c.inputs_schema(&spec.inputs);
    c.collect_ids(&spec.steps, "/steps");
    let steps = c.list(&spec.steps, "/steps", false);
    // Outputs are computed after every top-level step.
    let mut owner = HashMap::new();
    for (k, st) in spec.steps.iter().enumerate() {
        owner.insert(st.id.clone(), k);
        for id in exported_ids(st) {
            owner.insert(id, k);
        }
    }
    c.frames.push(Frame {
        owner,
        deps: Vec::new(),
        at: AFTER_ALL,
    });
    let outputs = spec
        .outputs
        .iter()
        .filter_map(|(k, v)| {
            let p = format!("/outputs/{k}");
            let t = c.template(v, &p)?;
            c.check_refs(&t.exprs(), &p, None);
            Some((k.clone(), t))
        })
        .collect();

    c.diags.extend(diags);
    if !c.diags.is_empty() {
        let mut d = std::mem::take(&mut c.diags);
        d.sort_by_key(|d| (d.file.clone(), d.line, d.col));
        d.dedup();
        return Err(Diagnostics(d));
    }
    let Some(inputs_validator) = inputs_validator else {
        return Err(Diagnostics(vec![Diagnostic::new(
            file,
            Pos { line: 1, col: 1 },
            "inputs schema could not be built",
        )]));
    };
    Ok(Plan {
        name: spec.name,
        description: spec.description,
        path: path.map(Path::to_path_buf),
        hash: hex(&Sha256::digest(source.as_bytes())),
        source: source.to_string(),
        inputs_schema,
        inputs_validator: Arc::new(inputs_validator),
        inputs: spec.inputs,
        outputs,
        steps,
        policy: c.policy,
        spans,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `steps[2].tool` (serde_path_to_error) → `/steps/2/tool`.
fn path_to_pointer(p: &str) -> String {
    if p == "." {
        return String::new();
    }
    let mut out = String::new();
    for seg in p.split('.') {
        let mut s = seg;
        if let Some(i) = s.find('[') {
            out.push('/');
            out.push_str(&s[..i]);
            s = &s[i..];
            for idx in s.split('[').filter(|x| !x.is_empty()) {
                out.push('/');
                out.push_str(idx.trim_end_matches(']'));
            }
        } else {
            out.push('/');
            out.push_str(s);
        }
    }
    out
}

/// Check the document against the plan schema and turn each violation into a diagnostic.
fn structural_errors(value: &Value, spans: &SpanMap, file: &str) -> Vec<Diagnostic> {
    let Some(validator) = plan_validator() else {
        return vec![Diagnostic::new(
            file,
            Pos::default(),
            "internal error: plan schema does not compile",
        )];
    };
    let mut out = Vec::new();
    for e in validator.iter_errors(value) {
        explain(&e, spans, file, &mut out);
    }
    out.dedup();
    out
}

/// `script: 1` or `when: true` are code, not numbers: keep their text so they parse as the
/// Rhai they are.
fn code_scalars_as_text(v: &mut Value, in_code_parent: bool) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let code = matches!(k.as_str(), "script" | "when" | "items");
                if code && (x.is_number() || x.is_boolean()) {
                    *x = Value::String(x.to_string());
                } else {
                    code_scalars_as_text(x, code);
                }
            }
        }
        Value::Array(a) if !in_code_parent => a.iter_mut().for_each(|x| code_scalars_as_text(x, false)),
        _ => {}
    }
}

/// Remove the fields the plan schema does not know (each already reported), recording the
/// paths of the objects they were in.
fn prune_unknown(value: &mut Value, pruned: &mut BTreeSet<String>) {
    use jsonschema::error::ValidationErrorKind as K;
    let Some(validator) = plan_validator() else { return };
    for _ in 0..8 {
        let found: Vec<(String, Vec<String>)> = validator
            .iter_errors(value)
            .filter_map(|e| match e.kind() {
                K::AdditionalProperties { unexpected } => Some((e.instance_path().to_string(), unexpected.clone())),
                _ => None,
            })
            .collect();
        if found.is_empty() {
            return;
        }
        for (path, keys) in found {
            if let Some(Value::Object(m)) = value.pointer_mut(&path) {
                for k in keys {
                    m.remove(&k);
                }
            }
            pruned.insert(path);
        }
    }
}

fn explain(e: &jsonschema::ValidationError<'_>, spans: &SpanMap, file: &str, out: &mut Vec<Diagnostic>) {
    use jsonschema::error::ValidationErrorKind as K;
    let path = e.instance_path().to_string();
    let field = path.rsplit('/').next().unwrap_or("").to_string();
    let what = if field.is_empty() {
        "the plan".to_string()
    } else {
        format!("`{field}`")
    };
    match e.kind() {
        K::AdditionalProperties { unexpected } => {
            for u in unexpected {
                let mut d = Diagnostic::new(
                    file,
                    spans.key_pos(&format!("{path}/{u}")),
                    format!("unknown field `{u}`"),
                );
                if let Some(s) = closest(u, known_fields().iter().map(String::as_str)) {
                    d = d.with_hint(format!("did you mean `{s}`?"));
                } else {
                    d = d.with_hint("see `stepwise schema` for the fields this place accepts");
                }
                out.push(d);
            }
        }
        K::Required { property } => {
            let prop = property.as_str().unwrap_or_default();
            out.push(Diagnostic::new(
                file,
                spans.pos(&path),
                format!("missing required field `{prop}`"),
            ));
        }
        K::Type { kind } => {
            let expected = match kind {
                jsonschema::error::TypeKind::Single(t) => t.to_string(),
                jsonschema::error::TypeKind::Multiple(ts) => {
                    ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or ")
                }
            };
            out.push(Diagnostic::new(
                file,
                spans.pos(&path),
                format!(
                    "{what} must be {} {expected}, found {}",
                    article(&expected),
                    describe(e.instance())
                ),
            ));
        }
        K::AnyOf { context } | K::OneOfNotValid { context } => {
            // Report the alternative that got furthest (fewest errors).
            if let Some(best) = context.iter().filter(|c| !c.is_empty()).min_by_key(|c| c.len()) {
                for sub in best {
                    explain(sub, spans, file, out);
                }
            } else {
                out.push(Diagnostic::new(file, spans.pos(&path), format!("{what}: {e}")));
            }
        }
        K::Pattern { pattern } if field == "id" || path.ends_with("/id") => out.push(
            Diagnostic::new(file, spans.pos(&path), format!("step id {} is not valid", e.instance())).with_hint(
                format!("ids use letters, digits and `_` and do not start with a digit ({pattern})"),
            ),
        ),
        _ => out.push(Diagnostic::new(file, spans.pos(&path), format!("{what}: {e}"))),
    }
}

fn article(s: &str) -> &'static str {
    if s.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}

fn inputs_ref_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\binputs\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)").unwrap_or_else(|_| unreachable!()))
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Names a loop may not use for its variable (they would hide plan data).
const RESERVED_VARS: &[&str] = &["inputs", "steps", "index"];

impl Checker<'_> {
    fn err(&mut self, path: &str, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::new(&self.file, self.spans.pos(path), msg));
        self.diags.last_mut().unwrap_or_else(|| unreachable!())
    }

    fn err_at(&mut self, pos: Pos, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::new(&self.file, pos, msg));
        self.diags.last_mut().unwrap_or_else(|| unreachable!())
    }

    fn duration(&mut self, s: &str, path: &str) -> Option<Duration> {
        match humantime::parse_duration(s.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(path, format!("`{s}` is not a duration: {e}")).hint =
                    Some("write e.g. `500ms`, `30s`, `2m`, `1h`".into());
                None
            }
        }
    }

    fn retry(&mut self, r: &RetrySpec, path: &str) -> RetryPolicy {
        let mut p = RetryPolicy {
            attempts: r.attempts,
            ..RetryPolicy::default()
        };
        if let Some(b) = &r.backoff
            && let Some(d) = self.duration(b, &format!("{path}/backoff"))
        {
            p.backoff = d;
        }
        if let Some(b) = &r.max_backoff
            && let Some(d) = self.duration(b, &format!("{path}/max_backoff"))
        {
            p.max_backoff = d;
        }
        p
    }

    fn inputs_schema(&mut self, inputs: &Map<String, Value>) -> (Value, Option<jsonschema::Validator>) {
        let mut props = Map::new();
        let mut required = Vec::new();
        for (name, s) in inputs {
            let path = format!("/inputs/{name}");
            let schema = match s {
                Value::String(t) => json!({ "type": t }),
                other => other.clone(),
            };
            if expr::compile(self.env.engine, &format!("inputs.{name}"), false).is_err() {
                self.err(
                    &format!("{path}#"),
                    format!("input name `{name}` cannot be used in expressions"),
                )
                .hint = Some("use letters, digits and `_`, and avoid Rhai keywords".into());
            }
            if let Err(e) = jsonschema::validator_for(&schema) {
                self.err(&path, format!("input `{name}` has an invalid schema: {e}"));
            }
            if schema.get("default").is_none() {
                required.push(Value::String(name.clone()));
            }
            props.insert(name.clone(), schema);
        }
        let schema = json!({
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        });
        let v = jsonschema::validator_for(&schema).ok();
        (schema, v)
    }

    /// Record every id with its path; report duplicates and bad ids.
    fn collect_ids(&mut self, steps: &[StepSpec], path: &str) {
        for (i, s) in steps.iter().enumerate() {
            let p = format!("{path}/{i}");
            if !valid_id(&s.id) {
                self.err(&format!("{p}/id"), format!("step id `{}` is not valid", s.id))
                    .hint = Some("ids use letters, digits and `_` and do not start with a digit".into());
            } else if expr::compile(self.env.engine, &format!("steps.{}", s.id), false).is_err() {
                self.err(
                    &format!("{p}/id"),
                    format!("step id `{}` is a reserved word in expressions", s.id),
                )
                .hint = Some(format!("`steps.{}` could not be written; choose another id", s.id));
            } else if let Some(first) = self.ids.get(&s.id).cloned() {
                let first_pos = self.spans.pos(&first);
                self.err(&format!("{p}/id"), format!("duplicate step id `{}`", s.id))
                    .hint = Some(format!(
                    "first used at line {}; ids are unique in a plan",
                    first_pos.line
                ));
            } else {
                self.ids.insert(s.id.clone(), p.clone());
            }
            for (sub, kids) in children(s) {
                self.collect_ids(kids, &format!("{p}/{sub}"));
            }
        }
    }

    fn template(&mut self, v: &Value, path: &str) -> Option<Template> {
        match expr::compile_template(self.env.engine, v) {
            Ok(t) => Some(t),
            Err(errs) => {
                for (sub, e) in errs {
                    let p = format!("{path}{sub}");
                    let pos = self.spans.pos_in_scalar(&p, e.line, e.col);
                    self.err_at(pos, format!("expression error: {}", e.message));
                }
                None
            }
        }
    }

    fn expression(&mut self, src: &str, path: &str, script: bool) -> Option<Expr> {
        let inner = if script {
            src
        } else {
            expr::whole_expr(src).unwrap_or(src)
        };
        match expr::compile(self.env.engine, inner, script) {
            Ok(e) => Some(e),
            Err(e) => {
                let pos = self.spans.pos_in_scalar(path, e.line, e.col);
                let what = if script { "script" } else { "expression" };
                let lost = self.spans.lost_to_comment(path);
                let d = self.err_at(pos, format!("{what} error: {}", e.message));
                if lost {
                    d.hint = Some("in YAML an unquoted ` #` starts a comment (Rhai maps are `#{…}`): quote the value or use a `|` block".into());
                }
                None
            }
        }
    }

    /// Check references of `exprs` (found in the scalar at `path`) against what is visible.
    fn check_refs(&mut self, exprs: &[&Expr], path: &str, own_id: Option<&str>) {
        for e in exprs {
            for r in &e.step_refs {
                if Some(r.as_str()) == own_id {
                    self.err(path, format!("step `{r}` refers to its own output")).hint =
                        Some("a step can only use the outputs of steps that ran before it".into());
                } else if !self.ids.contains_key(r) {
                    let hint = closest(r, self.ids.keys().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| "check the step ids of this plan".into());
                    self.err(path, format!("reference to unknown step `{r}`")).hint = Some(hint);
                } else if !self.is_visible(r) {
                    let who = own_id
                        .map(|s| format!("step `{s}`"))
                        .unwrap_or_else(|| "this value".into());
                    self.err(
                        path,
                        format!("{who} uses `steps.{r}`, which may not have finished by then"),
                    )
                    .hint = Some(format!(
                        "add `{r}` to `needs`, or move the step after `{r}` (steps inside a for_each body are not visible outside it)"
                    ));
                }
            }
            let stripped = &e.source;
            let unknown: Vec<String> = inputs_ref_regex()
                .captures_iter(stripped)
                .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
                .filter(|n| !self.inputs.contains(n))
                .collect();
            for n in unknown {
                let hint = closest(&n, self.inputs.iter().map(String::as_str))
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| "declare it under `inputs:`".into());
                self.err(path, format!("reference to unknown input `{n}`")).hint = Some(hint);
            }
        }
    }

    /// Check one list of steps. In a `parallel` list every step starts at once.
    fn list(&mut self, steps: &[StepSpec], path: &str, parallel: bool) -> StepList {
        let index: HashMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        // Dependencies within the list.
        let mut deps: Vec<Vec<usize>> = Vec::with_capacity(steps.len());
        for (i, s) in steps.iter().enumerate() {
            let p = format!("{path}/{i}");
            match &s.needs {
                _ if parallel => deps.push(vec![]),
                None => deps.push(if i == 0 { vec![] } else { vec![i - 1] }),
                Some(needs) => {
                    let mut d = Vec::new();
                    for (j, n) in needs.iter().enumerate() {
                        match index.get(n.as_str()) {
                            Some(&k) if k == i => {
                                self.err(&format!("{p}/needs/{j}"), format!("step `{}` cannot need itself", s.id));
                            }
                            Some(&k) => d.push(k),
                            None => {
                                let hint = if self.ids.contains_key(n) {
                                    format!("`{n}` is not in the same list as `{}`; `needs` names siblings", s.id)
                                } else {
                                    closest(n, index.keys().copied())
                                        .map(|c| format!("did you mean `{c}`?"))
                                        .unwrap_or_else(|| "name a step of the same list".into())
                                };
                                self.err(&format!("{p}/needs/{j}"), format!("`needs` names unknown step `{n}`"))
                                    .hint = Some(hint);
                            }
                        }
                    }
                    deps.push(d);
                }
            }
        }
        // Cycles.
        if let Err(cycle) = topo_order(&deps) {
            let names: Vec<&str> = cycle.iter().map(|&i| steps[i].id.as_str()).collect();
            let first = cycle[0];
            self.err(
                &format!("{path}/{first}/needs"),
                format!("steps wait for each other in a cycle: {}", names.join(" → ")),
            )
            .hint = Some("remove one of these `needs` entries".into());
        }
        // Which sibling "owns" each id readable after it finishes: itself, and the insides of
        // parallel groups and branches.
        let mut owner = HashMap::new();
        for (k, st) in steps.iter().enumerate() {
            owner.insert(st.id.clone(), k);
            for id in exported_ids(st) {
                owner.insert(id, k);
            }
        }
        self.frames.push(Frame {
            owner,
            deps: deps.clone(),
            at: 0,
        });
        let mut out = StepList {
            steps: Vec::with_capacity(steps.len()),
            deps: deps.clone(),
        };
        for (i, s) in steps.iter().enumerate() {
            let p = format!("{path}/{i}");
            if let Some(f) = self.frames.last_mut() {
                f.at = i;
            }
            let goto = match &s.on_error {
                Some(OnError::Goto { goto }) => match index.get(goto.as_str()) {
                    Some(&k) if k > i => ErrorAction::Goto(k),
                    Some(_) => {
                        self.err(
                            &format!("{p}/on_error/goto"),
                            format!("`goto: {goto}` must jump forward"),
                        )
                        .hint = Some("name a step that comes later in the same list".into());
                        ErrorAction::Fail
                    }
                    None => {
                        self.err(
                            &format!("{p}/on_error/goto"),
                            format!("`goto` names unknown step `{goto}`"),
                        )
                        .hint = Some("name a later step of the same list".into());
                        ErrorAction::Fail
                    }
                },
                Some(OnError::Simple(OnErrorAction::Continue)) => ErrorAction::Continue,
                _ => ErrorAction::Fail,
            };
            if let Some(step) = self.step(s, &p, goto) {
                out.steps.push(Arc::new(step));
            }
        }
        self.frames.pop();
        out
    }

    /// Whether `id` has surely finished when the current step starts: it is owned by a
    /// sibling (or a sibling of an enclosing step) that the step transitively waits for.
    fn is_visible(&self, id: &str) -> bool {
        for f in self.frames.iter().rev() {
            if let Some(&k) = f.owner.get(id) {
                return f.at == AFTER_ALL || waits_for(&f.deps, f.at, k);
            }
        }
        false
    }

    fn step(&mut self, s: &StepSpec, p: &str, on_error: ErrorAction) -> Option<Step> {
        let kinds = s.kinds();
        let kind_name = match kinds.as_slice() {
            [k] => *k,
            [] if self.pruned.contains(p) => return None,
            [] => {
                self.err(p, format!("step `{}` does not say what to do", s.id)).hint =
                    Some(format!("add one of: {}", STEP_KINDS.join(", ")));
                return None;
            }
            many => {
                self.err(
                    p,
                    format!("step `{}` sets more than one kind: {}", s.id, many.join(", ")),
                )
                .hint = Some("a step does one thing; split it into several steps".into());
                return None;
            }
        };
        if s.with.is_some() && !matches!(kind_name, "tool" | "workflow") {
            self.err(
                &format!("{p}/with"),
                format!("`with` does not apply to a {kind_name} step"),
            )
            .hint = Some("`with` holds the arguments of a tool or workflow step".into());
        }
        let own = Some(s.id.as_str());
        let when = s.when.as_ref().and_then(|w| {
            let wp = format!("{p}/when");
            let e = self.expression(w, &wp, false)?;
            self.check_refs(&[&e], &wp, own);
            Some(e)
        });
        let timeout = match &s.timeout {
            Some(t) => self.duration(t, &format!("{p}/timeout")),
            None => self.defaults.1,
        };
        let retry = match &s.retry {
            Some(r) => self.retry(r, &format!("{p}/retry")),
            None => self.defaults.0.clone(),
        };
        let args_path = format!("{p}/with");
        let empty = Map::new();
        let with = Value::Object(s.with.clone().unwrap_or(empty));
        let kind = match kind_name {
            "tool" => {
                let name = s.tool.clone().unwrap_or_default();
                let args = self.template(&with, &args_path)?;
                self.check_refs(&args.exprs(), &args_path, own);
                self.check_tool(&name, &args, &format!("{p}/tool"), &args_path);
                StepKind::Tool { name, args }
            }
            "script" => {
                let sp = format!("{p}/script");
                let e = self.expression(s.script.as_deref().unwrap_or_default(), &sp, true)?;
                self.check_refs(&[&e], &sp, own);
                StepKind::Script { expr: e }
            }
            "for_each" => {
                let f = s.for_each.as_ref()?;
                let fp = format!("{p}/for_each");
                let items = self.expression(&f.items, &format!("{fp}/items"), false)?;
                self.check_refs(&[&items], &format!("{fp}/items"), own);
                if !valid_id(&f.var) || RESERVED_VARS.contains(&f.var.as_str()) {
                    self.err(
                        &format!("{fp}/as"),
                        format!("`{}` cannot name the loop variable", f.var),
                    )
                    .hint = Some("use a plain name such as `city`; `inputs`, `steps` and `index` are taken".into());
                }
                let body = self.list(&f.steps, &format!("{fp}/steps"), false);
                if f.steps.is_empty() {
                    self.err(&fp, "a for_each needs at least one step");
                }
                StepKind::ForEach {
                    items,
                    var: f.var.clone(),
                    concurrency: f.concurrency.max(1) as usize,
                    body,
                }
            }
            "parallel" => {
                let kids = s.parallel.as_deref().unwrap_or_default();
                let pp = format!("{p}/parallel");
                for (i, k) in kids.iter().enumerate() {
                    if k.needs.is_some() {
                        self.err(&format!("{pp}/{i}/needs"), "steps of a parallel group start together")
                            .hint = Some("use a plain list with `needs` to order some of them".into());
                    }
                }
                let body = self.list(kids, &pp, true);
                StepKind::Parallel { body }
            }
            "branch" => {
                let arms = s.branch.as_deref().unwrap_or_default();
                let bp = format!("{p}/branch");
                let mut out = Vec::new();
                for (i, arm) in arms.iter().enumerate() {
                    let ap = format!("{bp}/{i}");
                    let cond = match &arm.when {
                        Some(w) => {
                            let e = self.expression(w, &format!("{ap}/when"), false);
                            if let Some(e) = &e {
                                self.check_refs(&[e], &format!("{ap}/when"), own);
                            }
                            e
                        }
                        None => {
                            if i + 1 != arms.len() {
                                self.err(&ap, "only the last arm of a branch may leave out `when`").hint =
                                    Some("the arm without `when` is the default; move it to the end".into());
                            }
                            None
                        }
                    };
                    let body = self.list(&arm.steps, &format!("{ap}/steps"), false);
                    out.push((cond, body));
                }
                StepKind::Branch { arms: out }
            }
            "workflow" => {
                let rel = s.workflow.clone().unwrap_or_default();
                let args = self.template(&with, &args_path)?;
                self.check_refs(&args.exprs(), &args_path, own);
                let plan = self.sub_workflow(&rel, &format!("{p}/workflow"))?;
                StepKind::Workflow { plan, args }
            }
            "llm" => self.llm_step(s.llm.as_ref()?, p, own)?,
            "agent" => self.agent_step(s.agent.as_ref()?, p, own)?,
            _ => return None,
        };
        Some(Step {
            id: s.id.clone(),
            description: s.description.clone(),
            kind,
            when,
            retry,
            timeout,
            on_error,
            pos: self.spans.pos(p),
            path: p.to_string(),
        })
    }

    fn check_tool(&mut self, name: &str, args: &Template, tool_path: &str, args_path: &str) {
        let Some(spec) = self.env.registry.spec(name) else {
            let hint = self
                .env
                .registry
                .suggest(name)
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| "`stepwise tools list` shows the tools".into());
            self.err(tool_path, format!("unknown tool `{name}`")).hint = Some(hint);
            return;
        };
        if let Some(why) = self.policy.refusal(name, spec.side_effects) {
            self.err(tool_path, why);
        }
        // Arguments known before the run are checked now.
        if let Template::Const(v) = args
            && let Err(e) = self.env.registry.validate(name, v)
        {
            let (field, msg) = match &e {
                stepwise_tools::ToolError::InvalidArguments { field, message, .. } => (field.clone(), message.clone()),
                other => ("(root)".into(), other.to_string()),
            };
            let at = if field == "(root)" {
                args_path.to_string()
            } else {
                format!("{args_path}/{}", field.replace('.', "/"))
            };
            self.err(&at, format!("argument `{field}` of `{name}`: {msg}")).hint =
                Some(format!("`stepwise tools list` shows the parameters of `{name}`"));
        }
    }

    fn sub_workflow(&mut self, rel: &str, path: &str) -> Option<Arc<Plan>> {
        let base = self.base_dir.clone().unwrap_or_else(|| PathBuf::from("."));
        let file = base.join(rel);
        let canon = canonical(&file);
        if self.visiting.contains(&canon) {
            self.err(
                path,
                format!("workflow `{rel}` calls itself (directly or through others)"),
            );
            return None;
        }
        let source = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => {
                self.err(path, format!("cannot read workflow `{}`: {e}", file.display()))
                    .hint = Some("paths are relative to the file of the plan that calls them".into());
                return None;
            }
        };
        self.visiting.push(canon);
        let r = check_source(
            &source,
            &file.display().to_string(),
            Some(&file),
            self.env,
            self.visiting,
        );
        self.visiting.pop();
        match r {
            Ok(p) => Some(Arc::new(p)),
            Err(ds) => {
                self.diags.extend(ds.0);
                None
            }
        }
    }
}

/// Ids defined inside a step that later steps may read once it finishes.
fn exported_ids(s: &StepSpec) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(kids) = &s.parallel {
        for k in kids {
            out.push(k.id.clone());
            out.extend(exported_ids(k));
        }
    }
    if let Some(arms) = &s.branch {
        for a in arms {
            for k in &a.steps {
                out.push(k.id.clone());
                out.extend(exported_ids(k));
            }
        }
    }
    out
}

fn children(s: &StepSpec) -> Vec<(String, &[StepSpec])> {
    let mut out: Vec<(String, &[StepSpec])> = Vec::new();
    if let Some(f) = &s.for_each {
        out.push(("for_each/steps".into(), &f.steps));
    }
    if let Some(p) = &s.parallel {
        out.push(("parallel".into(), p));
    }
    if let Some(arms) = &s.branch {
        for (i, a) in arms.iter().enumerate() {
            out.push((format!("branch/{i}/steps"), &a.steps));
        }
    }
    out
}

/// Kahn's algorithm; on a cycle, returns the steps on it.
fn topo_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = deps.len();
    let mut indeg: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &j in d {
            users[j].push(i);
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| indeg[i] == 0).rev().collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop() {
        order.push(i);
        for &u in &users[i] {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                ready.push(u);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Walk dependencies from a step left over until one repeats.
    let left: Vec<usize> = (0..n).filter(|&i| indeg[i] > 0).collect();
    let mut path = vec![left[0]];
    loop {
        let cur = *path.last().unwrap_or(&left[0]);
        let next = deps[cur].iter().copied().find(|d| indeg[*d] > 0).unwrap_or(left[0]);
        if let Some(pos) = path.iter().position(|&x| x == next) {
            let mut cycle = path[pos..].to_vec();
            cycle.push(next);
            return Err(cycle);
        }
        path.push(next);
    }
}
