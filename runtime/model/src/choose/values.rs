//! Candidate argument values found in the user's words: numbers (digits, number words,
//! "5 million", "40%"), and the spans a string argument may copy.

use std::sync::OnceLock;

use regex::Regex;

fn number_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)(?:^|[^\w.])(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?|-?\.\d+)(\s*(?:%|percent|thousand|million|billion|k\b))?").ok()
    })
    .as_ref()
}

const WORDS: &[(&str, f64)] = &[
    ("zero", 0.0),
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("fifteen", 15.0),
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("fifty", 50.0),
    ("hundred", 100.0),
    ("thousand", 1000.0),
    ("dozen", 12.0),
    ("once", 1.0),
    ("twice", 2.0),
    ("double", 2.0),
    ("triple", 3.0),
    ("half", 0.5),
    ("rest", 0.0),
];

/// A number found in text.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub value: f64,
    /// Byte offset in the text.
    pub at: usize,
}

/// Every number the text mentions, in order, with the variants a unit word implies
/// ("5 million" gives 5 and 5000000, "40%" gives 40 and 0.4).
pub fn numbers(text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    let Some(re) = number_re() else { return out };
    for c in re.captures_iter(text) {
        let Some(m) = c.get(1) else { continue };
        let raw = m.as_str().replace(',', "");
        let Ok(v) = raw.parse::<f64>() else { continue };
        let unit = c.get(2).map(|u| u.as_str().trim().to_ascii_lowercase());
        let scale = match unit.as_deref() {
            Some("thousand" | "k") => 1e3,
            Some("million") => 1e6,
            Some("billion") => 1e9,
            _ => 1.0,
        };
        // "5 million" is 5000000; "40%" may be meant as 40 or as 0.4.
        out.push(Found {
            value: v * scale,
            at: m.start(),
        });
        if matches!(unit.as_deref(), Some("%" | "percent")) {
            out.push(Found {
                value: v / 100.0,
                at: m.start(),
            });
        }
    }
    let lower = text.to_ascii_lowercase();
    for (w, v) in WORDS {
        let mut from = 0;
        while let Some(i) = lower[from..].find(w) {
            let at = from + i;
            let before = lower[..at].chars().next_back();
            let after = lower[at + w.len()..].chars().next();
            let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
            if boundary(before) && boundary(after) {
                out.push(Found { value: *v, at });
            }
            from = at + w.len();
        }
    }
    out.sort_by_key(|f| f.at);
    out
}

/// Lists of numbers the text writes out (`[3, 4, 5]`, `12, 24 and 36`): runs of at least
/// two numbers separated only by commas, spaces or "and"; brackets end a run.
pub fn number_lists(text: &str) -> Vec<Vec<f64>> {
    let Some(re) = number_re() else { return Vec::new() };
    let mut out = Vec::new();
    let mut run: Vec<f64> = Vec::new();
    let mut last_end: Option<usize> = None;
    for c in re.captures_iter(text) {
        let Some(m) = c.get(1) else { continue };
        let Ok(v) = m.as_str().replace(',', "").parse::<f64>() else {
            continue;
        };
        let joined = last_end.is_some_and(|e| {
            let gap = text[e..m.start()].trim().trim_start_matches(',').trim();
            gap.is_empty() || gap.eq_ignore_ascii_case("and")
        });
        if !joined {
            if run.len() >= 2 {
                out.push(std::mem::take(&mut run));
            }
            run.clear();
        }
        run.push(v);
        last_end = Some(m.end());
    }
    if run.len() >= 2 {
        out.push(run);
    }
    out
}

/// A number as JSON text: integers without a fraction, others as short as they round-trip.
pub fn number_text(v: f64, integer: bool) -> Option<String> {
    if !v.is_finite() {
        return None;
    }
    if integer {
        if v.fract() != 0.0 || v.abs() > 9e15 {
            return None;
        }
        return Some(format!("{}", v as i64));
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return Some(format!("{}", v as i64));
    }
    let s = format!("{v}");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(t: &str) -> Vec<f64> {
        numbers(t).into_iter().map(|f| f.value).collect()
    }

    #[test]
    fn finds_digits_words_and_scales() {
        assert_eq!(vals("a base of 10 units and height of 5"), vec![10.0, 5.0]);
        assert_eq!(vals("charges of 1e-9 and 2.5"), vec![1e-9, 2.5]);
        assert_eq!(vals("b = -11, c = -4."), vec![-11.0, -4.0]);
        assert_eq!(vals("213 million people"), vec![213e6]);
        assert_eq!(vals("contributing 40% of it"), vec![40.0, 0.4]);
        assert_eq!(vals("for five years, 1,500 miles"), vec![5.0, 1500.0]);
        assert_eq!(vals("version v2 of someone"), Vec::<f64>::new());
    }

    #[test]
    fn finds_written_lists() {
        assert_eq!(
            number_lists("Group A [3, 4, 5, 6, 4] and Group B [7, 8, 9, 8, 7]"),
            vec![vec![3.0, 4.0, 5.0, 6.0, 4.0], vec![7.0, 8.0, 9.0, 8.0, 7.0]]
        );
        assert_eq!(
            number_lists("values 12, 24 and 36, other 15, 30, 45"),
            vec![vec![12.0, 24.0, 36.0], vec![15.0, 30.0, 45.0]]
        );
        assert_eq!(
            number_lists("table [[10, 20], [30, 40]]"),
            vec![vec![10.0, 20.0], vec![30.0, 40.0]]
        );
        assert!(number_lists("base 10 and height of 5").is_empty());
    }

    #[test]
    fn number_text_keeps_integers_integral() {
        assert_eq!(number_text(10.0, true).as_deref(), Some("10"));
        assert_eq!(number_text(2.5, true), None);
        assert_eq!(number_text(2.5, false).as_deref(), Some("2.5"));
        assert_eq!(number_text(1e-9, false).as_deref(), Some("0.000000001"));
    }
}
