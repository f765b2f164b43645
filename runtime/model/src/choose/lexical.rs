//! Word overlap between a request and a tool (name, description, parameter names): cheap
//! relevance used to shortlist tools when many are offered.

use std::collections::HashSet;

use crate::chat::ToolDef;

const STOP: &[&str] = &[
    "a",
    "an",
    "the",
    "of",
    "to",
    "in",
    "on",
    "for",
    "and",
    "or",
    "with",
    "by",
    "at",
    "from",
    "is",
    "are",
    "be",
    "it",
    "this",
    "that",
    "what",
    "which",
    "who",
    "how",
    "me",
    "my",
    "i",
    "you",
    "your",
    "can",
    "could",
    "would",
    "please",
    "find",
    "get",
    "give",
    "tell",
    "show",
    "calculate",
    "compute",
    "given",
    "if",
    "as",
    "its",
    "do",
    "does",
    "will",
    "about",
    "into",
    "using",
    "use",
    "based",
    "some",
    "any",
    "all",
    "there",
    "their",
    "them",
    "we",
    "our",
    "us",
    "was",
    "were",
    "has",
    "have",
    "had",
    "not",
    "no",
    "yes",
    "so",
    "than",
    "then",
    "also",
    "want",
    "need",
    "like",
    "let",
    "default",
    "specified",
    "e",
    "g",
    "eg",
    "etc",
    "whether",
    "should",
    "may",
    "might",
    "want",
    "know",
    "other",
];

/// Lower-case stems of the content words of `text` (identifiers are split at `_`, `.`, and
/// camel case).
pub fn stems(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower && !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = c.is_lowercase();
            cur.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
        .into_iter()
        .filter(|w| w.len() > 1 && !STOP.contains(&w.as_str()) && !w.chars().all(|c| c.is_ascii_digit()))
        .map(|w| stem(&w))
        .collect()
}

fn stem(w: &str) -> String {
    for suf in ["ies", "ing", "ed", "es", "s"] {
        if w.len() >= suf.len() + 3
            && let Some(base) = w.strip_suffix(suf)
        {
            return if suf == "ies" {
                format!("{base}y")
            } else {
                base.to_string()
            };
        }
    }
    w.to_string()
}

/// All stems describing a tool: its name counts double.
pub fn tool_stems(t: &ToolDef) -> (HashSet<String>, HashSet<String>) {
    let name: HashSet<String> = stems(&t.name).into_iter().collect();
    let mut rest: HashSet<String> = stems(&t.description).into_iter().collect();
    if let Some(p) = t.parameters.get("properties").and_then(|p| p.as_object()) {
        for (k, v) in p {
            rest.extend(stems(k));
            if let Some(d) = v.get("description").and_then(|d| d.as_str()) {
                rest.extend(stems(d));
            }
        }
    }
    (name, rest)
}

/// Words that name a member of a kind, and the words for the kind a tool would use: "euro"
/// is a currency, "ounces" a unit, "protein" a nutrient. A request and a tool that share
/// only such a kind share no word ("I have 100 euro. How much is it in USD?" and
/// `currency_conversion`): then the kind counts as half a word in common.
const KINDS: &[(&[&str], &[&str])] = &[
    (
        &[
            "dollar", "euro", "eur", "usd", "gbp", "jpy", "yen", "cad", "aud", "chf", "cny", "inr", "rupee", "yuan",
            "peso", "franc", "sterling", "krona", "krone", "ruble", "rouble",
        ],
        &["currency"],
    ),
    (
        &[
            "ounce",
            "oz",
            "pound",
            "lb",
            "lbs",
            "gram",
            "kilogram",
            "kg",
            "cup",
            "tablespoon",
            "teaspoon",
            "liter",
            "litre",
            "gallon",
            "quart",
            "pint",
            "mile",
            "kilometer",
            "km",
            "meter",
            "inch",
            "feet",
            "foot",
            "yard",
            "celsius",
            "fahrenheit",
            "kelvin",
        ],
        &["unit", "measurement"],
    ),
    (
        &[
            "protein",
            "calorie",
            "calories",
            "carb",
            "carbs",
            "carbohydrate",
            "fat",
            "vitamin",
            "fiber",
            "sugar",
        ],
        &["nutrition", "nutritional", "nutrient"],
    ),
];

/// Fraction of the request's content words the tool mentions (name words weigh double).
pub fn overlap(request: &str, t: &ToolDef) -> f32 {
    overlap_by(request, t, false)
}

/// The overlap that the kinds of things the request names make (see [`KINDS`]), half a
/// word each: asked only when the request shares no word with any tool, so the words in
/// common decide wherever there are some.
pub fn kind_overlap(request: &str, t: &ToolDef) -> f32 {
    overlap_by(request, t, true)
}

fn overlap_by(request: &str, t: &ToolDef, kinds: bool) -> f32 {
    let q: HashSet<String> = stems(request).into_iter().collect();
    if q.is_empty() {
        return 0.0;
    }
    let (name, rest) = tool_stems(t);
    let kind_of = |w: &String| {
        KINDS.iter().any(|(members, words)| {
            members.iter().any(|m| stem(m) == *w)
                && words
                    .iter()
                    .map(|k| stem(k))
                    .any(|k| name.contains(&k) || rest.contains(&k))
        })
    };
    let hit: f32 = q
        .iter()
        .map(|w| {
            if kinds {
                if kind_of(w) { 0.5 } else { 0.0 }
            } else if name.contains(w) {
                2.0
            } else if rest.contains(w) {
                1.0
            } else {
                0.0
            }
        })
        .sum();
    hit / q.len() as f32
}

/// Indexes of the `n` tools that overlap most with the request, in their original order.
pub fn shortlist(request: &str, tools: &[ToolDef], n: usize) -> Vec<usize> {
    let mut scored: Vec<(usize, f32)> = tools
        .iter()
        .enumerate()
        .map(|(i, t)| (i, overlap(request, t)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut keep: Vec<usize> = scored.into_iter().take(n).map(|(i, _)| i).collect();
    keep.sort_unstable();
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str, desc: &str) -> ToolDef {
        ToolDef {
            name: name.into(),
            description: desc.into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }
    }

    #[test]
    fn stems_split_identifiers() {
        assert_eq!(stems("get_weatherForecast.daily"), vec!["weather", "forecast", "daily"]);
        assert_eq!(stems("Cities and flights"), vec!["city", "flight"]);
    }

    #[test]
    fn shortlist_prefers_overlap() {
        let tools = vec![
            tool("math.factorial", "Factorial of a number"),
            tool("weather.forecast", "Weather forecast for a city"),
            tool("flights.search", "Search flights between airports"),
        ];
        let q = "What's the weather forecast in Paris?";
        assert!(overlap(q, &tools[1]) > overlap(q, &tools[0]));
        assert_eq!(shortlist(q, &tools, 1), vec![1]);
    }

    #[test]
    fn a_word_for_a_kind_of_thing_meets_the_kind() {
        let conv = tool("currency_conversion", "Convert an amount between two currencies");
        let cook = tool(
            "cooking_conversion.convert",
            "Convert cooking measurements from one unit to another",
        );
        let q = "I have 100 euro. How much is it in USD?";
        assert_eq!(overlap(q, &conv), 0.0);
        assert!(kind_overlap(q, &conv) > 0.0);
        assert_eq!(kind_overlap(q, &cook), 0.0);
        let q = "How many ounces in 2 pounds of butter?";
        assert!(kind_overlap(q, &cook) > 0.0);
        // Half a word: less than the word itself.
        assert!(overlap("euro currency", &conv) > kind_overlap("euro currency", &conv));
    }
}
