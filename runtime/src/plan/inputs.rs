//! Turning `--input k=v` strings and JSON into the validated inputs object of a run.

use serde_json::{Map, Value};

use super::model::Plan;

impl Plan {
    /// The declared JSON type of an input (`string`, `integer`, …), if it names one.
    fn input_type(&self, name: &str) -> Option<&str> {
        match self.inputs.get(name)? {
            Value::String(t) => Some(t.as_str()),
            Value::Object(m) => m.get("type").and_then(Value::as_str),
            _ => None,
        }
    }

    /// Parse a command-line `key=value` according to the input's declared type.
    pub fn coerce_cli_input(&self, key: &str, raw: &str) -> Result<Value, String> {
        if !self.inputs.contains_key(key) {
            let known: Vec<&str> = self.inputs.keys().map(String::as_str).collect();
            let hint = stepwise_tools::closest(key, known.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| {
                    if known.is_empty() {
                        "; this plan takes no inputs".into()
                    } else {
                        format!("; it takes: {}", known.join(", "))
                    }
                });
            return Err(format!("plan `{}` has no input `{key}`{hint}", self.name));
        }
        let bad = |what: &str| format!("input `{key}`: `{raw}` is not {what}");
        Ok(match self.input_type(key) {
            Some("integer") => Value::from(raw.trim().parse::<i64>().map_err(|_| bad("an integer"))?),
            Some("number") => serde_json::from_str::<Value>(raw.trim())
                .ok()
                .filter(Value::is_number)
                .ok_or_else(|| bad("a number"))?,
            Some("boolean") => match raw.trim() {
                "true" | "yes" | "1" => Value::Bool(true),
                "false" | "no" | "0" => Value::Bool(false),
                _ => return Err(bad("a boolean (true or false)")),
            },
            Some("array") | Some("object") | None => {
                serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
            }
            Some(_) => Value::String(raw.to_string()),
        })
    }

    /// Apply defaults and check `given` against the inputs schema. Errors name each field.
    pub fn resolve_inputs(&self, given: Map<String, Value>) -> Result<Value, Vec<String>> {
        let mut all = given;
        for (name, schema) in &self.inputs {
            if !all.contains_key(name)
                && let Some(d) = schema.get("default")
            {
                all.insert(name.clone(), d.clone());
            }
        }
        let v = Value::Object(all);
        let errors: Vec<String> = self
            .inputs_validator
            .iter_errors(&v)
            .map(|e| {
                let path = e.instance_path().to_string();
                let field = path.trim_start_matches('/');
                if field.is_empty() {
                    format!("inputs: {e}")
                } else {
                    format!("input `{field}`: {e}")
                }
            })
            .collect();
        if errors.is_empty() { Ok(v) } else { Err(errors) }
    }
}
