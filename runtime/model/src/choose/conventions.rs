//! Generated arguments brought in line with the conventions the request and the tool's
//! descriptions write in. A small model copies what the user wrote ("50mH", "112.07 W",
//! "5ft 10in", "11 PM", "euros") where the tool asked for a plain number in base units, a
//! signed coordinate, a 24-hour clock or a currency code; or it fills a field with a choice
//! the request does not name. Each check reads the request and the parameter's schema, and
//! changes a value only when the request says what it should be. Returns one line per
//! change, for the trace.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use super::args::{ArgDecoder, name_words};
use super::free::{json_number as number, same_number as same};
use super::schema::{Prop, Ty};

/// All the checks, in order.
pub fn apply(args: &mut Value, props: &[Prop], source: &str, dec: &ArgDecoder<'_>) -> Vec<String> {
    let mut notes = compass_signs(args, source);
    notes.extend(prefixed_units(args, props, source));
    notes.extend(feet_and_inches(args, props, source));
    notes.extend(multiples_of_pi(args, props, source));
    notes.extend(afternoon_hours(args, props, source));
    notes.extend(named_choices(args, props, source));
    notes.extend(function_bodies(args, props));
    notes.extend(currency_codes(args, props));
    notes.extend(negated_flags(args, props, source, dec));
    notes
}

fn re(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

/// The words of a text, lowercased.
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether `phrase` stands in `text` as whole words (both lowercase).
fn has_phrase(text: &[String], phrase: &[String]) -> bool {
    !phrase.is_empty() && text.windows(phrase.len()).any(|w| w == phrase)
}

/// Coordinates written with a compass letter: "112.0740 W" and "33.9 S" are negative
/// longitudes and latitudes. A positive copy of such a number, alone or in a list, takes
/// the sign.
fn compass_signs(args: &mut Value, source: &str) -> Vec<String> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = re(&RE, r"(\d+(?:\.\d+)?)\s*°?\s*(W|S|West|South|N|E|North|East)\b") else {
        return Vec::new();
    };
    let mut negative: Vec<f64> = Vec::new();
    let mut positive: Vec<f64> = Vec::new();
    // Which axes the request letters: latitude (N/S), longitude (E/W).
    let (mut lat, mut lon) = (false, false);
    for c in re.captures_iter(source) {
        let Some(v) = c.get(1).and_then(|m| m.as_str().parse::<f64>().ok()) else {
            continue;
        };
        let letter = c.get(2).and_then(|m| m.as_str().chars().next());
        lat |= matches!(letter, Some('N' | 'S'));
        lon |= matches!(letter, Some('E' | 'W'));
        match letter {
            Some('W' | 'S') => negative.push(v),
            _ => positive.push(v),
        }
    }
    // Only coordinates: the request writes both axes, or says it gives coordinates ("100 W"
    // alone is a power).
    let lower = source.to_lowercase();
    let coordinates = (lat && lon)
        || ["coordinate", "latitude", "longitude", "gps", "°"]
            .iter()
            .any(|w| lower.contains(w));
    if !coordinates {
        return Vec::new();
    }
    // A number written both ways is left as the model wrote it.
    negative.retain(|n| !positive.iter().any(|p| same(*p, *n)));
    let mut notes = Vec::new();
    let Value::Object(map) = args else { return notes };
    for (name, v) in map.iter_mut() {
        let mut flip = |x: &mut Value| {
            if let Some(f) = x.as_f64()
                && f > 0.0
                && negative.iter().any(|n| same(*n, f))
                && let Some(neg) = number(-f, x.is_i64() || x.is_u64())
            {
                notes.push(format!("{name}: {f} -> -{f} (written west or south of zero)"));
                *x = neg;
            }
        };
        match v {
            Value::Array(items) => items.iter_mut().for_each(&mut flip),
            other => flip(other),
        }
    }
    notes
}

/// Units a description asks for, by name (whole word, lowercase) and symbol.
const BASE_UNITS: &[(&str, &[&str])] = &[
    ("F", &["farad", "farads"]),
    ("H", &["henry", "henries", "henrys"]),
    ("Hz", &["hertz"]),
    ("V", &["volt", "volts"]),
    ("A", &["ampere", "amperes", "amp", "amps"]),
    ("W", &["watt", "watts"]),
    ("Ω", &["ohm", "ohms"]),
    ("g", &["gram", "grams"]),
    ("s", &["second", "seconds"]),
    ("J", &["joule", "joules"]),
    ("N", &["newton", "newtons"]),
    ("m", &["meter", "meters", "metre", "metres"]),
    ("L", &["liter", "liters", "litre", "litres"]),
];

/// A quantity written with an SI prefix ("100µF", "50 mH", "2.4 GHz") for a parameter whose
/// description asks for the base unit ("in farads", "in henries (H)"): the model copies the
/// digits; the tool wants 0.0001 and 0.05.
fn prefixed_units(args: &mut Value, props: &[Prop], source: &str) -> Vec<String> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = re(
        &RE,
        r"(\d+(?:\.\d+)?)\s?(µ|μ|u|m|n|p|k|M|G)(Hz|F|H|V|A|W|Ω|g|s|J|N|m|L)\b",
    ) else {
        return Vec::new();
    };
    let found: Vec<(f64, f64, &str)> = re
        .captures_iter(source)
        .filter_map(|c| {
            let v = c.get(1)?.as_str().parse::<f64>().ok()?;
            let exp = match c.get(2)?.as_str() {
                "µ" | "μ" | "u" => -6,
                "m" => -3,
                "n" => -9,
                "p" => -12,
                "k" => 3,
                "M" => 6,
                _ => 9,
            };
            let scaled = if exp < 0 {
                v / 10f64.powi(-exp)
            } else {
                v * 10f64.powi(exp)
            };
            Some((v, scaled, c.get(3)?.as_str()))
        })
        .collect();
    renumber(args, props, true, |p, v| {
        let desc = words(&p.description);
        let (_, scaled, unit) = found.iter().find(|(written, _, unit)| {
            same(*written, v)
                && BASE_UNITS
                    .iter()
                    .any(|(sym, names)| sym == unit && names.iter().any(|n| desc.iter().any(|w| w == n)))
        })?;
        Some((*scaled, format!("the request wrote {v} with a prefixed {unit}")))
    })
}

/// A height written in feet and inches ("5ft 10in", "5 feet 10 inches", `5'10"`) for a
/// parameter in inches: the model copies one of the two numbers.
fn feet_and_inches(args: &mut Value, props: &[Prop], source: &str) -> Vec<String> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = re(
        &RE,
        r#"(?i)(\d+)\s*(?:ft|feet|foot|')\s*(?:and\s+)?(\d+(?:\.\d+)?)\s*(?:in\b|inch|inches|"|'')"#,
    ) else {
        return Vec::new();
    };
    let found: Vec<(f64, f64)> = re
        .captures_iter(source)
        .filter_map(|c| Some((c.get(1)?.as_str().parse().ok()?, c.get(2)?.as_str().parse().ok()?)))
        .collect();
    renumber(args, props, true, |p, v| {
        if !words(&p.description).iter().any(|w| w == "inches" || w == "inch") {
            return None;
        }
        let &(ft, inches) = found.iter().find(|(ft, i)| same(*ft, v) || same(*i, v))?;
        Some((ft * 12.0 + inches, format!("{ft} ft {inches} in, in inches")))
    })
}

/// A multiple of pi ("from 0 to 2 pi", "3π/2" is not taken) for a number parameter: the
/// model copies the coefficient. Rounded to four decimals, as such tools state.
fn multiples_of_pi(args: &mut Value, props: &[Prop], source: &str) -> Vec<String> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = re(&RE, r"(?i)(\d+(?:\.\d+)?)\s*\*?\s*(?:pi\b|π)(?:\s*/)?") else {
        return Vec::new();
    };
    let coefficients: Vec<f64> = re
        .captures_iter(source)
        .filter(|c| c.get(0).is_some_and(|m| !m.as_str().ends_with('/')))
        .filter_map(|c| c.get(1)?.as_str().parse().ok())
        .collect();
    renumber(args, props, false, |_, v| {
        (v != 0.0 && coefficients.iter().any(|c| same(*c, v)))
            .then(|| ((v * std::f64::consts::PI * 1e4).round() / 1e4, format!("{v} pi")))
    })
}

/// An hour written "11 PM" for a parameter on the 24-hour clock: the model copies 11.
fn afternoon_hours(args: &mut Value, props: &[Prop], source: &str) -> Vec<String> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = re(&RE, r"(?i)\b(\d{1,2})(?::00)?\s*p\.?m\b") else {
        return Vec::new();
    };
    let hours: Vec<f64> = re
        .captures_iter(source)
        .filter_map(|c| c.get(1)?.as_str().parse().ok())
        .filter(|h| (1.0..12.0).contains(h))
        .collect();
    renumber(args, props, true, |p, v| {
        let d = p.description.to_lowercase();
        let clock = d.contains("24 hour") || d.contains("24-hour") || d.contains("24h");
        (clock && hours.iter().any(|h| same(*h, v))).then(|| (v + 12.0, format!("{v} PM on the 24-hour clock")))
    })
}

/// Each number argument (`integers` too, or only fractional ones) that `change` gives a new
/// value, with the reason for the trace; an integer parameter takes only a whole number.
fn renumber(
    args: &mut Value,
    props: &[Prop],
    integers: bool,
    change: impl Fn(&Prop, f64) -> Option<(f64, String)>,
) -> Vec<String> {
    let mut notes = Vec::new();
    let Value::Object(map) = args else { return notes };
    for p in props {
        let integer = match p.ty {
            Ty::Integer if integers => true,
            Ty::Number => false,
            _ => continue,
        };
        let Some(v) = map.get(&p.name).and_then(Value::as_f64) else {
            continue;
        };
        let Some((new, why)) = change(p, v) else { continue };
        let Some(new) = number(new, integer) else { continue };
        if integer && !new.is_i64() {
            continue;
        }
        notes.push(format!("{}: {v} -> {new} ({why})", p.name));
        map.insert(p.name.clone(), new);
    }
    notes
}

/// Choices the request names. A single choice, when the request names exactly one and the
/// model took another it does not name (the default, often): "Find all the roots" with
/// `root_type` 'real' or 'all'. A list of choices loses those the request does not name
/// (a model lists every option), as long as one it names is left.
fn named_choices(args: &mut Value, props: &[Prop], source: &str) -> Vec<String> {
    let text = words(source);
    let named = |v: &Value| v.as_str().is_some_and(|s| has_phrase(&text, &words(s)));
    // A word of a choice the request writes: whole, or the first five letters of a longer one
    // ("disabled people" for "Disabled Access").
    let word_said = |w: &String| {
        text.contains(w)
            || (w.chars().count() >= 4 && {
                let stem: String = w.chars().take(5).collect();
                text.iter().any(|t| t.starts_with(&stem))
            })
    };
    let said_in_part = |v: &Value| v.as_str().is_some_and(|s| words(s).iter().any(word_said));
    let said_whole = |v: &Value| {
        v.as_str()
            .is_some_and(|s| !s.trim().is_empty() && words(s).iter().all(word_said))
    };
    let mut notes = Vec::new();
    let Value::Object(map) = args else { return notes };
    for p in props {
        let Some(v) = map.get_mut(&p.name) else { continue };
        match (&p.ty, v) {
            (Ty::Enum(choices), v @ Value::String(_)) => {
                let said: Vec<&Value> = choices.iter().filter(|c| named(c)).collect();
                if let [only] = said.as_slice()
                    && !named(v)
                    && *only != v
                {
                    notes.push(format!("{}: {v} -> {only} (the choice the request names)", p.name));
                    *v = (*only).clone();
                }
            }
            (Ty::Array(item), Value::Array(items)) if items.len() >= 2 => {
                let Ty::Enum(choices) = &**item else { continue };
                // Only when the model listed every one of three or more choices (a model that
                // lists them all has not chosen; "vegan" for "vegetarian", one of two, is a
                // choice), and the request names one of them outright ("court" alone does not
                // name `court_updates`).
                if choices.len() < 3 || choices.iter().any(|c| !items.contains(c)) || !items.iter().any(said_whole) {
                    continue;
                }
                let kept: Vec<Value> = items.iter().filter(|i| said_in_part(i)).cloned().collect();
                if kept.len() < items.len() {
                    let gone: Vec<String> = items
                        .iter()
                        .filter(|i| !said_in_part(i))
                        .map(Value::to_string)
                        .collect();
                    notes.push(format!(
                        "{}: dropped {} (choices the request does not name)",
                        p.name,
                        gone.join(", ")
                    ));
                    *items = kept;
                }
            }
            _ => {}
        }
    }
    notes
}

/// A function of x written as the user did, "y=3x+2" or "f(x) = 3x^2", for a parameter that
/// takes the function itself: the body ("3x+2"). An equation parameter keeps its "=".
fn function_bodies(args: &mut Value, props: &[Prop]) -> Vec<String> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = re(&RE, r"^\s*(?:[a-zA-Z]|[a-zA-Z]\s*\(\s*[a-zA-Z]\s*\))\s*=\s*(\S.*)$") else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    let Value::Object(map) = args else { return notes };
    for p in props.iter().filter(|p| matches!(p.ty, Ty::String)) {
        let nw = name_words(&p.name);
        let about = format!("{} {}", nw.join(" "), p.description).to_lowercase();
        let takes_function = nw
            .iter()
            .any(|w| w.starts_with("func") || w.starts_with("expr") || w == "polynomial");
        if !takes_function || about.contains("equation") {
            continue;
        }
        let Some(Value::String(s)) = map.get(&p.name) else {
            continue;
        };
        let Some(body) = re
            .captures(s)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().trim().to_string())
        else {
            continue;
        };
        if body.contains('=') {
            continue;
        }
        notes.push(format!(
            "{}: {s:?} -> {body:?} (the function, without its name)",
            p.name
        ));
        map.insert(p.name.clone(), Value::String(body));
    }
    notes
}

/// Currencies by name, to their ISO 4217 codes (lowercase, singular, spaces).
const CURRENCIES: &[(&str, &str)] = &[
    ("dollar", "USD"),
    ("us dollar", "USD"),
    ("u s dollar", "USD"),
    ("american dollar", "USD"),
    ("euro", "EUR"),
    ("pound", "GBP"),
    ("british pound", "GBP"),
    ("pound sterling", "GBP"),
    ("sterling", "GBP"),
    ("yen", "JPY"),
    ("japanese yen", "JPY"),
    ("canadian dollar", "CAD"),
    ("australian dollar", "AUD"),
    ("new zealand dollar", "NZD"),
    ("singapore dollar", "SGD"),
    ("hong kong dollar", "HKD"),
    ("swiss franc", "CHF"),
    ("franc", "CHF"),
    ("yuan", "CNY"),
    ("chinese yuan", "CNY"),
    ("renminbi", "CNY"),
    ("rupee", "INR"),
    ("indian rupee", "INR"),
    ("peso", "MXN"),
    ("mexican peso", "MXN"),
    ("won", "KRW"),
    ("korean won", "KRW"),
    ("south korean won", "KRW"),
    ("ruble", "RUB"),
    ("rouble", "RUB"),
    ("russian ruble", "RUB"),
    ("brazilian real", "BRL"),
    ("swedish krona", "SEK"),
    ("norwegian krone", "NOK"),
    ("danish krone", "DKK"),
];

/// A currency written by name ("euros", "US dollars") for a currency parameter: its code.
/// Tools take codes; a code is what any converter accepts.
fn currency_codes(args: &mut Value, props: &[Prop]) -> Vec<String> {
    let mut notes = Vec::new();
    let Value::Object(map) = args else { return notes };
    for p in props.iter().filter(|p| matches!(p.ty, Ty::String)) {
        if !name_words(&p.name).iter().any(|w| w == "currency") {
            continue;
        }
        let Some(Value::String(s)) = map.get(&p.name) else {
            continue;
        };
        let ws = words(s);
        let mut key: Vec<String> = ws.clone();
        if let Some(last) = key.last_mut()
            && last.len() > 3
            && let Some(stem) = last.strip_suffix('s')
        {
            *last = stem.to_string();
        }
        let key = key.join(" ");
        let Some((_, code)) = CURRENCIES.iter().find(|(n, _)| *n == key) else {
            continue;
        };
        notes.push(format!("{}: {s:?} -> {code:?} (its currency code)", p.name));
        map.insert(p.name.clone(), Value::String((*code).to_string()));
    }
    notes
}

/// Words that say no to what follows them.
const NEGATORS: &[&str] = &[
    "not", "no", "few", "never", "without", "little", "hardly", "rarely", "isn't", "doesn't", "don't", "aren't",
    "isnt", "doesnt", "dont", "non", "lacks", "lacking",
];

/// A flag the request names right after a word that says no ("has few artistic interests",
/// "is not talkative"): false, where the model set it because the request named it.
fn negated_flags(args: &mut Value, props: &[Prop], source: &str, dec: &ArgDecoder<'_>) -> Vec<String> {
    let lower = source.to_lowercase();
    let mut notes = Vec::new();
    let Value::Object(map) = args else { return notes };
    for p in props.iter().filter(|p| matches!(p.ty, Ty::Boolean)) {
        if map.get(&p.name) != Some(&Value::Bool(true)) {
            continue;
        }
        let at = dec.name_positions(&p.name);
        let Some(&first) = at.first() else { continue };
        // Every place the request names it, it says no right before.
        let all_negated = at.iter().all(|&i| {
            let before: Vec<&str> = lower
                .get(..i)
                .unwrap_or_default()
                .split(|c: char| !(c.is_alphanumeric() || c == '\''))
                .filter(|w| !w.is_empty())
                .collect();
            before.iter().rev().take(2).any(|w| NEGATORS.contains(w))
        });
        if all_negated {
            let word: String = lower[first..].chars().take_while(|c| c.is_alphanumeric()).collect();
            notes.push(format!("{}: true -> false (the request says no to {word:?})", p.name));
            map.insert(p.name.clone(), Value::Bool(false));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::super::free::tests::prop;
    use super::*;
    use serde_json::json;

    #[test]
    fn coordinates_west_and_south_are_negative() {
        let src = "Distance between (33.4484 N, 112.0740 W) and (34.0522 N, 118.2437 W), and 20.5 S, 10 E.";
        let mut args = json!({"coord1": [33.4484, 112.074], "coord2": [34.0522, 118.2437], "lat": 20.5, "lon": 10});
        assert_eq!(compass_signs(&mut args, src).len(), 3);
        assert_eq!(
            args,
            json!({"coord1": [33.4484, -112.074], "coord2": [34.0522, -118.2437], "lat": -20.5, "lon": 10})
        );
        // Already negative, or no compass letter: unchanged.
        assert!(compass_signs(&mut args, src).is_empty());
        let mut args = json!({"x": 112.074});
        assert!(compass_signs(&mut args, "Point 112.074 east of the river").is_empty());
        let mut args = json!({"power": 100});
        assert!(compass_signs(&mut args, "A 100 W bulb for 5 hours").is_empty());
    }

    #[test]
    fn prefixed_quantities_go_to_base_units_the_description_asks_for() {
        let props = [
            prop("inductance", Ty::Number, "The inductance (L) in henries (H)."),
            prop("capacitance", Ty::Number, "The capacitance (C) in farads (F)."),
            prop("distance", Ty::Number, "Distance in kilometers."),
        ];
        let src = "An LC circuit with capacitance of 100µF and inductance of 50mH, 5 km away.";
        let mut args = json!({"inductance": 50, "capacitance": 100, "distance": 5});
        assert_eq!(prefixed_units(&mut args, &props, src).len(), 2);
        assert_eq!(args, json!({"inductance": 0.05, "capacitance": 0.0001, "distance": 5}));
        // The model already scaled it: left alone.
        assert!(prefixed_units(&mut args, &props, src).is_empty());
    }

    #[test]
    fn feet_and_inches_become_inches() {
        let props = [
            prop("height", Ty::Integer, "Height of the person in inches."),
            prop("weight", Ty::Integer, "Weight in lbs."),
        ];
        let mut args = json!({"height": 5, "weight": 150});
        assert_eq!(
            feet_and_inches(&mut args, &props, "weight 150lbs and height 5ft 10in").len(),
            1
        );
        assert_eq!(args, json!({"height": 70, "weight": 150}));
        let mut args = json!({"height": 6});
        feet_and_inches(&mut args, &props, "He is 6 feet 2 inches tall");
        assert_eq!(args["height"], 74);
        let props = [prop("height", Ty::Integer, "Height in cm.")];
        let mut args = json!({"height": 5});
        assert!(feet_and_inches(&mut args, &props, "5ft 10in").is_empty());
    }

    #[test]
    fn multiples_of_pi_and_afternoon_hours() {
        let props = [
            prop("start_range", Ty::Number, "Start in radians."),
            prop("end_range", Ty::Number, "End in radians."),
            prop("frequency", Ty::Integer, "Hz"),
        ];
        let mut args = json!({"start_range": 0, "end_range": 2, "frequency": 5});
        assert_eq!(
            multiples_of_pi(&mut args, &props, "Plot a sine wave from 0 to 2 pi at 5 Hz.").len(),
            1
        );
        // 2 pi to four decimals (6.2832).
        let two_pi = (std::f64::consts::TAU * 1e4).round() / 1e4;
        assert_eq!(args, json!({"start_range": 0, "end_range": two_pi, "frequency": 5}));
        let mut args = json!({"end_range": 3});
        assert!(multiples_of_pi(&mut args, &props, "from 0 to 3π/2").is_empty());

        let props = [
            prop(
                "closing",
                Ty::Integer,
                "Latest closing time. This is in 24 hour format.",
            ),
            prop("guests", Ty::Integer, "Guests."),
        ];
        let mut args = json!({"closing": 11, "guests": 4});
        assert_eq!(
            afternoon_hours(&mut args, &props, "Open until at least 11 PM, for 4.").len(),
            1
        );
        assert_eq!(args, json!({"closing": 23, "guests": 4}));
        let mut args = json!({"closing": 11});
        assert!(afternoon_hours(&mut args, &props, "Open until 11 AM").is_empty());
    }

    #[test]
    fn choices_follow_what_the_request_names() {
        let choices = |v: &[&str]| Ty::Enum(v.iter().map(|s| json!(s)).collect());
        let props = [
            prop("root_type", choices(&["real", "all"]), ""),
            prop("period", choices(&["Daily", "Weekly"]), ""),
            prop(
                "preferences",
                Ty::Array(Box::new(choices(&[
                    "Pet-friendly",
                    "Disabled Access",
                    "24 hours",
                    "Cafe Inside",
                ]))),
                "",
            ),
        ];
        let src = "Find all the roots; a pet-friendly library with facilities for disabled people.";
        let mut args = json!({"root_type": "real", "period": "Weekly",
            "preferences": ["Pet-friendly", "Disabled Access", "24 hours", "Cafe Inside"]});
        assert_eq!(named_choices(&mut args, &props, src).len(), 2);
        assert_eq!(
            args,
            json!({"root_type": "all", "period": "Weekly", "preferences": ["Pet-friendly", "Disabled Access"]})
        );
        // Both of two choices: a choice ("vegetarian and gluten-free" for vegan, gluten-free).
        let props4 = [prop(
            "categories",
            Ty::Array(Box::new(choices(&["vegan", "gluten-free"]))),
            "",
        )];
        let mut args = json!({"categories": ["vegan", "gluten-free"]});
        assert!(named_choices(&mut args, &props4, "Vegetarian and gluten-free foods").is_empty());
        // Not every choice listed: the model chose.
        let mut args = json!({"preferences": ["Pet-friendly", "Cafe Inside"]});
        assert!(named_choices(&mut args, &props, src).is_empty());
        // A word of one choice is not the choice.
        let props2 = [prop(
            "details",
            Ty::Array(Box::new(choices(&["attorneys", "charges", "court_updates"]))),
            "",
        )];
        let mut args = json!({"details": ["attorneys", "charges", "court_updates"]});
        assert!(named_choices(&mut args, &props2, "Details of the case in the Los Angeles court.").is_empty());
        let props3 = [prop(
            "facilities",
            Ty::Array(Box::new(choices(&["Wi-Fi", "Fiction", "Cafe"]))),
            "",
        )];
        let mut args = json!({"facilities": ["Wi-Fi", "Fiction", "Cafe"]});
        named_choices(
            &mut args,
            &props3,
            "A library with English fiction section and free Wi-Fi.",
        );
        assert_eq!(args, json!({"facilities": ["Wi-Fi", "Fiction"]}));
        // Both choices named, or none of the listed ones: left alone.
        let mut args = json!({"root_type": "real", "preferences": ["24 hours", "Cafe Inside"]});
        assert!(named_choices(&mut args, &props, "Real or all roots? Open late.").is_empty());
    }

    #[test]
    fn functions_lose_their_names_and_currencies_take_codes() {
        let props = [
            prop(
                "function1",
                Ty::String,
                "First function given as a string with x as the variable",
            ),
            prop("func", Ty::String, "The function to be integrated."),
            prop("equation_function", Ty::String, "An equation"),
            prop("from_currency", Ty::String, ""),
            prop("to_currency", Ty::String, ""),
            prop("label", Ty::String, ""),
        ];
        let mut args = json!({"function1": "y=3x+2", "func": "f(x) = 3x^2", "equation_function": "y = x",
            "from_currency": "euros", "to_currency": "us_dollars", "label": "euros"});
        assert_eq!(function_bodies(&mut args, &props).len(), 2);
        assert_eq!(currency_codes(&mut args, &props).len(), 2);
        assert_eq!(
            args,
            json!({"function1": "3x+2", "func": "3x^2", "equation_function": "y = x",
                "from_currency": "EUR", "to_currency": "USD", "label": "euros"})
        );
        let mut args = json!({"from_currency": "Bitcoin"});
        assert!(currency_codes(&mut args, &props).is_empty());
    }

    #[test]
    fn flags_the_request_says_no_to_are_false() {
        let props = [
            prop("talkative", Ty::Boolean, ""),
            prop("artistic_interests", Ty::Boolean, ""),
            prop("lazy", Ty::Boolean, ""),
        ];
        let opts = super::super::args::ArgOptions::default();
        let src = "I'm talkative, have few artistic interests and I am not lazy.";
        let dec = ArgDecoder::new(src, &opts);
        let mut args = json!({"talkative": true, "artistic_interests": true, "lazy": true});
        assert_eq!(negated_flags(&mut args, &props, src, &dec).len(), 2);
        assert_eq!(
            args,
            json!({"talkative": true, "artistic_interests": false, "lazy": false})
        );
    }
}
