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

/// The schema with what descriptions state in prose made part of it, for the grammar and
/// the decoder (the tool's own schema still validates the call):
/// - the choices a string parameter lists become an `enum`: described as "Can be 'melting',
///   'freezing', 'vaporization', 'condensation'" or "'real' for real roots, 'all' for
///   both", it takes one of those values, where a small model writes its own word for them
///   ("boiling"). Only closed lists count: two or more quoted values with a word that says
///   they are the choices ("can be", "options", "either", "one of", "or" between them); a
///   list that says it is open ("e.g.", "such as", "etc.") stays free text;
/// - the form of a place an example shows becomes a `pattern` (see [`place_code_form`]).
pub fn with_stated_forms(schema: &Value) -> Value {
    let Value::Object(m) = schema else {
        return schema.clone();
    };
    let mut out = m.clone();
    if let Some(Value::Object(ps)) = m.get("properties") {
        let ps = ps.iter().map(|(n, s)| (n.clone(), with_stated_forms(s))).collect();
        out.insert("properties".into(), Value::Object(ps));
    }
    if let Some(items) = m.get("items") {
        out.insert("items".into(), with_stated_forms(items));
    }
    let is_string = m.get("type").and_then(Value::as_str) == Some("string");
    let description = m.get("description").and_then(Value::as_str).unwrap_or("");
    if is_string && !m.contains_key("enum") && !m.contains_key("pattern") {
        let default = m.get("default").and_then(Value::as_str);
        if let Some(choices) = stated_choices(description).or_else(|| listed_with_default(description, default)) {
            out.insert(
                "enum".into(),
                Value::Array(choices.into_iter().map(Value::String).collect()),
            );
        } else if let Some(pattern) = place_code_form(description) {
            out.insert("pattern".into(), Value::String(pattern));
        }
    }
    Value::Object(out)
}

/// The form of a place the description shows by example, "e.g. Los Angeles, CA": a name,
/// a comma and a code of as many capitals as the example's. A model writes "Los Angeles"
/// and stops; the tool asked for "Los Angeles, CA". Returns a JSON Schema `pattern`.
fn place_code_form(description: &str) -> Option<String> {
    let lower = description.to_lowercase();
    let at = [
        "e.g.,",
        "e.g.",
        "for instance,",
        "for instance",
        "for example,",
        "for example",
    ]
    .iter()
    .find_map(|cue| lower.find(cue).map(|i| i + cue.len()))?;
    let example = description.get(at..)?.trim_start();
    // The example runs to the end of its sentence or clause.
    let end = example
        .char_indices()
        .find(|&(i, c)| {
            matches!(c, ';' | ')' | '\n')
                || (c == '.' && example[i + 1..].chars().next().is_none_or(char::is_whitespace))
        })
        .map_or(example.len(), |(i, _)| i);
    let example = example[..end].trim().trim_end_matches(',');
    let (name, rest) = example.split_once(", ")?;
    // The code: the capitals after the comma, ending the example or followed by more words
    // about it ("e.g. New York, NY, you should format it as City, State").
    let len = rest.chars().take_while(char::is_ascii_uppercase).count();
    let code_ok = (2..=3).contains(&len) && rest[len..].chars().next().is_none_or(|c| c == ',');
    let name_ok = name.chars().next().is_some_and(char::is_uppercase)
        && name
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '.' | '-' | '\''));
    let code = &rest[..len];
    (name_ok && code_ok).then(|| format!("^[^,\"]+, [A-Z]{{{}}}$", code.len()))
}

/// The words a description lists in parentheses when the parameter's default is one of
/// them: "The mode of transportation (walk, bike, transit, drive)" with default `walk`. The
/// default among them says they are the values, not an aside ("as (latitude, longitude)").
fn listed_with_default(description: &str, default: Option<&str>) -> Option<Vec<String>> {
    let default = default?.trim();
    let lower = description.to_lowercase();
    if ["e.g", "such as", "for example", "etc"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return None;
    }
    let mut rest = description;
    while let Some(open) = rest.find('(') {
        let after = &rest[open + 1..];
        let close = after.find(')')?;
        let items: Vec<String> = after[..close].split(',').map(|i| i.trim().to_string()).collect();
        let words = items
            .iter()
            .all(|i| !i.is_empty() && i.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_'));
        if items.len() >= 2 && words && items.iter().any(|i| i == default) {
            return Some(items);
        }
        rest = &after[close..];
    }
    None
}

/// The closed list of quoted values a description offers, if it offers one.
fn stated_choices(description: &str) -> Option<Vec<String>> {
    let lower = description.to_lowercase();
    const OPEN: [&str; 6] = ["e.g.", "eg.", "such as", "for example", "like ", "etc"];
    if OPEN.iter().any(|w| lower.contains(w)) {
        return None;
    }
    let mut values: Vec<String> = Vec::new();
    let mut or_between = false;
    // Values each followed by what it means ("'real' for real roots, 'all' for both").
    let mut defined = 0;
    let mut last_end = None;
    let re = super::values::quoted_re()?;
    for c in re.captures_iter(description) {
        let Some(m) = c.get(1).or_else(|| c.get(2)) else {
            continue;
        };
        if m.as_str().chars().count() > 40 {
            continue;
        }
        if let Some(end) = last_end {
            let gap = description[end..m.start()].to_lowercase();
            or_between |= gap.split(|ch: char| !ch.is_alphanumeric()).any(|w| w == "or");
        }
        // Past the closing quote.
        let end = m.end() + 1;
        last_end = Some(end);
        let after = description.get(end..).unwrap_or_default().to_lowercase();
        defined += usize::from(after.starts_with(" for ") || after.starts_with(" refers to "));
        if !values.iter().any(|v| v == m.as_str()) {
            values.push(m.as_str().to_string());
        }
    }
    const CLOSED: [&str; 9] = [
        "can be",
        "one of",
        "options",
        "either",
        "possible values",
        "choices",
        "valid values",
        "supported values",
        "i.e.",
    ];
    let closed = or_between || defined >= 2 || CLOSED.iter().any(|w| lower.contains(w));
    (values.len() >= 2 && closed).then_some(values)
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

    #[test]
    fn choices_stated_in_prose_become_an_enum() {
        let choices = |d: &str| stated_choices(d);
        let v = |xs: &[&str]| Some(xs.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(
            choices("Phase transition. Can be 'melting', 'freezing', 'vaporization', 'condensation'."),
            v(&["melting", "freezing", "vaporization", "condensation"])
        );
        assert_eq!(
            choices("The type of roots: 'real' for real roots, 'all' for both. Default value is 'real'."),
            v(&["real", "all"])
        );
        assert_eq!(
            choices("Quoted 'a' and 'b' here."),
            None,
            "no word says these are the choices"
        );
        assert_eq!(
            choices("The unit ('Celsius' or 'Fahrenheit'). Default is 'Fahrenheit'."),
            v(&["Celsius", "Fahrenheit"])
        );
        assert_eq!(
            choices("Level of detail, either \"summary\" or \"full\"."),
            v(&["summary", "full"])
        );
        let listed = |d: &str, def: &str| listed_with_default(d, Some(def));
        assert_eq!(
            listed("The mode of transportation (walk, bike, transit, drive).", "walk"),
            v(&["walk", "bike", "transit", "drive"])
        );
        assert_eq!(
            listed("The mode of transportation (walk, bike, transit, drive).", "car"),
            None
        );
        assert_eq!(listed("The point as (latitude, longitude), in degrees.", "0"), None);
        assert_eq!(listed("Mode (e.g. walk, bike).", "walk"), None);
        // Open lists, a single value, apostrophes: no enum.
        assert_eq!(
            choices("Options include: 'civil', 'criminal', 'small_claims', etc."),
            None
        );
        assert_eq!(choices("Format, e.g. 'IMAX' or '3D'."), None);
        assert_eq!(choices("The unit of measurement. Default is 'cm'."), None);
        assert_eq!(
            choices("The restaurant's dishes, it's optional: 'lunch' or 'dinner'"),
            v(&["lunch", "dinner"])
        );
        let s = with_stated_forms(&serde_json::json!({"type": "object", "properties": {
            "unit": {"type": "string", "description": "Options: 'miles', 'kilometers'."},
            "n": {"type": "integer", "description": "Options: 'miles', 'kilometers'."},
            "fixed": {"type": "string", "enum": ["a"], "description": "Options: 'miles', 'kilometers'."}}}));
        assert_eq!(
            s["properties"]["unit"]["enum"],
            serde_json::json!(["miles", "kilometers"])
        );
        assert!(s["properties"]["n"].get("enum").is_none());
        assert!(s["properties"]["unit"].get("pattern").is_none());
        assert_eq!(s["properties"]["fixed"]["enum"], serde_json::json!(["a"]));
    }

    #[test]
    fn a_place_shown_with_its_code_is_asked_in_that_form() {
        let form = |d: &str| place_code_form(d);
        let two = Some("^[^,\"]+, [A-Z]{2}$".to_string());
        assert_eq!(form("The city and state, e.g. Los Angeles, CA"), two);
        assert_eq!(form("The city and state, e.g. Chicago, IL."), two);
        assert_eq!(form("The city, for instance Boston, MA"), two);
        assert_eq!(form("The city where it is held, e.g., New York, NY. Required."), two);
        assert_eq!(
            form("The city and state, e.g. New York, NY, you should format it as City, State."),
            two
        );
        // Lists of examples, other shapes, no example: no pattern.
        assert_eq!(form("The gaming platform e.g. Xbox, Playstation, PC."), None);
        assert_eq!(form("The city, e.g. Boston"), None);
        assert_eq!(form("The city and state, like Boston, MA"), None);
        assert_eq!(form("Date, e.g. 2023-01-01, in ISO form"), None);
        let s = with_stated_forms(&serde_json::json!({"type": "object", "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. Denver, CO"}}}));
        let p = s["properties"]["location"]["pattern"].as_str().unwrap_or_default();
        let re = regex::Regex::new(p).expect("a valid regex");
        assert!(re.is_match("Denver, CO") && !re.is_match("Denver") && !re.is_match("Denver, Colorado"));
        // llama.cpp turns it into a grammar.
        assert!(llama_cpp_2::json_schema_to_grammar(&s.to_string()).is_ok());
    }
}
