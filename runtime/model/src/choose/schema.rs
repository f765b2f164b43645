//! Argument schemas: BFCL's dialect ("dict", "float", "tuple", "any") turned into JSON
//! Schema, and a typed view the argument decoder walks.

use serde_json::{Map, Value};

/// The JSON Schema equivalent of a schema in BFCL's dialect (standard schemas pass through).
pub fn normalize(schema: &Value) -> Value {
    match schema {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                match k.as_str() {
                    "type" => {
                        let t = match v.as_str() {
                            Some("dict") => Some("object"),
                            Some("float" | "double") => Some("number"),
                            Some("tuple" | "list") => Some("array"),
                            Some("int") => Some("integer"),
                            Some("bool") => Some("boolean"),
                            Some("str") => Some("string"),
                            Some("any") => None,
                            Some(other) => Some(other),
                            None => {
                                out.insert(k.clone(), v.clone());
                                continue;
                            }
                        };
                        if let Some(t) = t {
                            out.insert(k.clone(), Value::String(t.into()));
                        }
                    }
                    "properties" => {
                        let props = v
                            .as_object()
                            .map(|p| p.iter().map(|(n, s)| (n.clone(), normalize(s))).collect())
                            .unwrap_or_default();
                        out.insert(k.clone(), Value::Object(props));
                    }
                    "items" | "additionalProperties" => {
                        out.insert(k.clone(), normalize(v));
                    }
                    // BFCL marks optional parameters with a non-standard flag; `required` says it.
                    "optional" => {}
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            // A `required` list naming absent properties would make every call invalid.
            if let (Some(Value::Array(req)), Some(Value::Object(props))) = (out.get("required"), out.get("properties"))
            {
                let kept: Vec<Value> = req
                    .iter()
                    .filter(|r| r.as_str().is_some_and(|n| props.contains_key(n)))
                    .cloned()
                    .collect();
                out.insert("required".into(), Value::Array(kept));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Type of one value, as the decoder sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    String,
    Integer,
    Number,
    Boolean,
    /// One of these values (any JSON type).
    Enum(Vec<Value>),
    Array(Box<Ty>),
    Object(Vec<Prop>),
    /// Anything: decoded as a string.
    Any,
}

/// One property of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Prop {
    pub name: String,
    pub ty: Ty,
    pub required: bool,
    pub description: String,
    pub default: Option<Value>,
}

impl Ty {
    /// The typed view of a (normalized) JSON Schema.
    pub fn of(schema: &Value) -> Ty {
        if let Some(Value::Array(e)) = schema.get("enum")
            && !e.is_empty()
        {
            return Ty::Enum(e.clone());
        }
        let t = match schema.get("type") {
            Some(Value::String(t)) => t.as_str(),
            // A list of types: take the first non-null one.
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("string"),
            _ if schema.get("properties").is_some() => "object",
            _ if schema.get("items").is_some() => "array",
            _ => "any",
        };
        match t {
            "string" => Ty::String,
            "integer" => Ty::Integer,
            "number" => Ty::Number,
            "boolean" => Ty::Boolean,
            "array" => Ty::Array(Box::new(schema.get("items").map(Ty::of).unwrap_or(Ty::Any))),
            "object" => Ty::Object(props(schema)),
            _ => Ty::Any,
        }
    }

    /// A short name for prompts (`integer`, `array of number`, …).
    pub fn label(&self) -> String {
        match self {
            Ty::String => "string".into(),
            Ty::Integer => "integer".into(),
            Ty::Number => "number".into(),
            Ty::Boolean => "boolean".into(),
            Ty::Enum(v) => format!(
                "one of {}",
                v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
            ),
            Ty::Array(t) => format!("array of {}", t.label()),
            Ty::Object(_) => "object".into(),
            Ty::Any => "any".into(),
        }
    }
}

/// The properties of an object schema, in declaration order.
pub fn props(schema: &Value) -> Vec<Prop> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .map(|(name, s)| Prop {
                    name: name.clone(),
                    ty: Ty::of(s),
                    required: required.contains(&name.as_str()),
                    description: s.get("description").and_then(Value::as_str).unwrap_or("").to_string(),
                    default: s.get("default").cloned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bfcl_dialect_becomes_json_schema() {
        let s = json!({"type": "dict", "properties": {
            "x": {"type": "float"}, "p": {"type": "tuple", "items": {"type": "integer"}},
            "a": {"type": "any", "optional": true},
            "o": {"type": "dict", "properties": {"k": {"type": "string", "enum": ["a", "b"]}}}},
            "required": ["x", "missing"]});
        let n = normalize(&s);
        assert_eq!(n["type"], "object");
        assert_eq!(n["properties"]["x"]["type"], "number");
        assert_eq!(n["properties"]["p"]["type"], "array");
        assert!(n["properties"]["a"].get("type").is_none());
        assert!(n["properties"]["a"].get("optional").is_none());
        assert_eq!(n["properties"]["o"]["type"], "object");
        assert_eq!(n["required"], json!(["x"]));
        let ps = props(&n);
        assert_eq!(ps.len(), 4);
        assert!(ps[0].required && !ps[1].required);
        assert_eq!(ps[1].ty, Ty::Array(Box::new(Ty::Integer)));
        assert_eq!(ps[2].ty, Ty::Any);
        assert!(matches!(&ps[3].ty, Ty::Object(p) if p[0].ty == Ty::Enum(vec![json!("a"), json!("b")])));
        // It is a schema the validator accepts.
        assert!(jsonschema::validator_for(&n).is_ok());
    }
}
