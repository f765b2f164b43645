//! BFCL (Berkeley Function Calling Leaderboard) items and a checker in the spirit of its AST
//! checker: same number of calls, names equal, required arguments present, every given
//! argument declared and among the acceptable values (numbers as numbers, strings
//! normalized the way BFCL's `standardize_string` does).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat::{Message, Role, ToolCall, ToolDef};
use crate::choose::schema;
use crate::error::{ModelError, Result};

/// One question of a BFCL file.
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub id: String,
    /// Turns, each a list of chat messages.
    pub question: Vec<Vec<RawMessage>>,
    /// The tools offered.
    pub function: Vec<RawFunction>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawFunction {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub parameters: Value,
}

impl Item {
    /// The conversation (all turns in order).
    pub fn messages(&self) -> Vec<Message> {
        self.question
            .iter()
            .flatten()
            .map(|m| {
                let role = match m.role.as_str() {
                    "system" => Role::System,
                    "assistant" => Role::Assistant,
                    "tool" => Role::Tool,
                    _ => Role::User,
                };
                Message {
                    role,
                    content: m.content.clone(),
                    tool_calls: Vec::new(),
                    tool_call_id: None,
                    name: None,
                }
            })
            .collect()
    }

    /// The tools, with their schemas as given (BFCL dialect).
    pub fn tools(&self) -> Vec<ToolDef> {
        self.function
            .iter()
            .map(|f| ToolDef {
                name: f.name.clone(),
                description: f.description.clone(),
                parameters: f.parameters.clone(),
            })
            .collect()
    }
}

/// Expected calls of one item: per call, name → argument → acceptable values.
#[derive(Debug, Clone, Deserialize)]
pub struct Answer {
    pub id: String,
    pub ground_truth: Vec<Map<String, Value>>,
}

/// Read a JSON Lines file of items.
pub fn load_items(path: &Path) -> Result<Vec<Item>> {
    load_lines(path)
}

/// Read a JSON Lines file of answers.
pub fn load_answers(path: &Path) -> Result<Vec<Answer>> {
    load_lines(path)
}

fn load_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(format!("reading {}", path.display()), e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v = serde_json::from_str(line).map_err(|e| {
            ModelError::BadOutput(format!(
                "{}:{}:{}: not a BFCL line: {e}",
                path.display(),
                i + 1,
                e.column()
            ))
        })?;
        out.push(v);
    }
    Ok(out)
}

/// What went wrong with a prediction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Correct,
    /// Called a tool when none should be called.
    UnexpectedCall,
    /// Called nothing when a call was expected.
    NoCall,
    WrongCount,
    WrongName,
    MissingArgument(String),
    UnknownArgument(String),
    WrongValue(String),
}

/// Check the calls of an item: with `expected = None` (irrelevance), no call is right.
pub fn check(item: &Item, calls: &[ToolCall], expected: Option<&Answer>) -> Verdict {
    let Some(exp) = expected else {
        return if calls.is_empty() {
            Verdict::Correct
        } else {
            Verdict::UnexpectedCall
        };
    };
    if calls.is_empty() && !exp.ground_truth.is_empty() {
        return Verdict::NoCall;
    }
    if calls.len() != exp.ground_truth.len() {
        return Verdict::WrongCount;
    }
    for (call, gt) in calls.iter().zip(&exp.ground_truth) {
        let Some((name, acceptable)) = gt.iter().next() else {
            return Verdict::WrongCount;
        };
        if &call.name != name {
            return Verdict::WrongName;
        }
        let Some(f) = item.function.iter().find(|f| &f.name == name) else {
            return Verdict::WrongName;
        };
        let params = schema::normalize(&f.parameters);
        let declared = params.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = params
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let empty = Map::new();
        let args = call.arguments.as_object().unwrap_or(&empty);
        for r in &required {
            if !args.contains_key(*r) {
                return Verdict::MissingArgument((*r).to_string());
            }
        }
        for (k, v) in args {
            if declared.is_some_and(|d| !d.contains_key(k)) {
                return Verdict::UnknownArgument(k.clone());
            }
            let Some(ok) = acceptable.get(k).and_then(Value::as_array) else {
                return Verdict::UnknownArgument(k.clone());
            };
            if !ok.iter().any(|a| same(v, a)) {
                return Verdict::WrongValue(k.clone());
            }
        }
        let empty_acc = Map::new();
        for (k, ok) in acceptable.as_object().unwrap_or(&empty_acc) {
            let optional = ok.as_array().is_some_and(|a| a.iter().any(|x| x == ""));
            if !args.contains_key(k) && !optional {
                return Verdict::MissingArgument(k.clone());
            }
        }
    }
    Verdict::Correct
}

/// BFCL's string normalization: drop spaces and `,./-_*^`, lower-case, `'` as `"`.
pub fn standardize(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | ',' | '.' | '/' | '-' | '_' | '*' | '^'))
        .flat_map(char::to_lowercase)
        .map(|c| if c == '\'' { '"' } else { c })
        .collect()
}

/// Whether a predicted value equals an acceptable one.
fn same(v: &Value, a: &Value) -> bool {
    match (v, a) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
            _ => false,
        },
        (Value::String(x), Value::String(y)) => standardize(x) == standardize(y),
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            // Acceptable dicts map each key to a list of acceptable values.
            x.iter().all(|(k, pv)| match y.get(k) {
                Some(Value::Array(opts)) => opts.iter().any(|o| same(pv, o)),
                Some(other) => same(pv, other),
                None => false,
            }) && y
                .iter()
                .all(|(k, opts)| x.contains_key(k) || opts.as_array().is_some_and(|o| o.iter().any(|z| z == "")))
        }
        (Value::Null, Value::Null) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item() -> Item {
        serde_json::from_value(json!({"id": "simple_0",
            "question": [[{"role": "user", "content": "Area of a triangle, base 10, height 5"}]],
            "function": [{"name": "geo.area", "description": "d", "parameters": {"type": "dict",
                "properties": {"base": {"type": "integer"}, "height": {"type": "integer"},
                               "unit": {"type": "string"}}, "required": ["base", "height"]}}]}))
        .unwrap()
    }

    fn answer() -> Answer {
        serde_json::from_value(json!({"id": "simple_0", "ground_truth": [
            {"geo.area": {"base": [10], "height": [5], "unit": ["units", ""]}}]}))
        .unwrap()
    }

    fn call(args: Value) -> Vec<ToolCall> {
        vec![ToolCall {
            id: None,
            name: "geo.area".into(),
            arguments: args,
        }]
    }

    #[test]
    fn checker_follows_bfcl_rules() {
        let (i, a) = (item(), answer());
        assert_eq!(
            check(&i, &call(json!({"base": 10, "height": 5})), Some(&a)),
            Verdict::Correct
        );
        assert_eq!(
            check(
                &i,
                &call(json!({"base": 10.0, "height": 5, "unit": "Units."})),
                Some(&a)
            ),
            Verdict::Correct
        );
        assert_eq!(
            check(&i, &call(json!({"base": 10})), Some(&a)),
            Verdict::MissingArgument("height".into())
        );
        assert_eq!(
            check(&i, &call(json!({"base": 10, "height": 6})), Some(&a)),
            Verdict::WrongValue("height".into())
        );
        assert_eq!(
            check(&i, &call(json!({"base": "10", "height": 5})), Some(&a)),
            Verdict::WrongValue("base".into())
        );
        assert_eq!(
            check(&i, &call(json!({"base": 10, "height": 5, "color": "red"})), Some(&a)),
            Verdict::UnknownArgument("color".into())
        );
        assert_eq!(check(&i, &[], Some(&a)), Verdict::NoCall);
        assert_eq!(check(&i, &[], None), Verdict::Correct);
        assert_eq!(check(&i, &call(json!({})), None), Verdict::UnexpectedCall);
        assert_eq!(standardize(" New York, NY. "), "newyorkny");
    }
}
