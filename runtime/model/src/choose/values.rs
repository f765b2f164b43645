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

/// How a number was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// As is (digits or a number word, with any scale word applied).
    Plain,
    /// The number before a `%` or "percent", as written.
    Percent,
    /// The same percentage as a fraction (40% → 0.4).
    Fraction,
}

/// A number found in text.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub value: f64,
    /// Byte offset in the text.
    pub at: usize,
    pub written: Written,
}

/// Every number the text mentions, in order, with the variants a unit word implies
/// ("5 million" gives 5 and 5000000, "40%" gives 40 and 0.4).
pub fn numbers(text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    let Some(re) = number_re() else { return out };
    let bracketed = bracket_lists(text);
    for (_, items) in &bracketed {
        for &(value, at) in items {
            out.push(Found {
                value,
                at,
                written: Written::Plain,
            });
        }
    }
    for c in re.captures_iter(text) {
        let Some(m) = c.get(1) else { continue };
        if bracketed.iter().any(|(r, _)| r.contains(&m.start())) {
            continue;
        }
        let raw = m.as_str().replace(',', "");
        let Ok(v) = raw.parse::<f64>() else { continue };
        let unit = c.get(2).map(|u| u.as_str().trim().to_ascii_lowercase());
        let scale = match unit.as_deref() {
            Some("thousand" | "k") => 1e3,
            Some("million") => 1e6,
            Some("billion") => 1e9,
            _ => 1.0,
        };
        // "5 million" is 5000000; "40%" may be meant as 40 or as 0.4; "300K" may be
        // thousands or kelvins: both readings are offered.
        if scale == 1e3 && unit.as_deref() == Some("k") {
            out.push(Found {
                value: v,
                at: m.start(),
                written: Written::Plain,
            });
        }
        let percent = matches!(unit.as_deref(), Some("%" | "percent"));
        out.push(Found {
            value: v * scale,
            at: m.start(),
            written: if percent { Written::Percent } else { Written::Plain },
        });
        if percent {
            out.push(Found {
                value: v / 100.0,
                at: m.start(),
                written: Written::Fraction,
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
                out.push(Found {
                    value: *v,
                    at,
                    written: Written::Plain,
                });
            }
            from = at + w.len();
        }
    }
    out.sort_by_key(|f| f.at);
    out
}

/// Bracketed lists of plain numbers (`[200,300,400,500]`, `(1, 2)`), whose commas separate
/// items rather than thousands: the byte range inside the brackets and each item with its
/// offset.
type BracketList = (std::ops::Range<usize>, Vec<(f64, usize)>);

fn bracket_lists(text: &str) -> Vec<BracketList> {
    let mut out = Vec::new();
    let mut open: Option<usize> = None;
    for (i, c) in text.char_indices() {
        match c {
            '[' | '(' => open = Some(i + 1),
            ']' | ')' => {
                if let Some(start) = open.take() {
                    let inner = &text[start..i];
                    let mut items = Vec::new();
                    let mut at = start;
                    for part in inner.split(',') {
                        let lead = part.len() - part.trim_start().len();
                        match part.trim().parse::<f64>() {
                            Ok(v) if part.trim().chars().all(|c| c.is_ascii_digit() || "-+.eE".contains(c)) => {
                                items.push((v, at + lead))
                            }
                            _ => {
                                items.clear();
                                break;
                            }
                        }
                        at += part.len() + 1;
                    }
                    if items.len() >= 2 {
                        out.push((start..i, items));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Lists of numbers the text writes out (`[3, 4, 5]`, `12, 24 and 36`): runs of at least
/// two numbers separated only by commas, spaces or "and"; brackets end a run.
pub fn number_lists(text: &str) -> Vec<Vec<f64>> {
    let Some(re) = number_re() else { return Vec::new() };
    let bracketed = bracket_lists(text);
    let mut out: Vec<Vec<f64>> = bracketed
        .iter()
        .map(|(_, items)| items.iter().map(|(v, _)| *v).collect())
        .collect();
    let mut run: Vec<f64> = Vec::new();
    let mut last_end: Option<usize> = None;
    for c in re.captures_iter(text) {
        let Some(m) = c.get(1) else { continue };
        if bracketed.iter().any(|(r, _)| r.contains(&m.start())) {
            if run.len() >= 2 {
                out.push(std::mem::take(&mut run));
            }
            run.clear();
            last_end = None;
            continue;
        }
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

/// A stretch of the user's text a string argument may copy: a quoted phrase, a run of
/// capitalized words ("San Diego County", "S&P 500", "Mr. X"), or a code-like word
/// ("CA123456", "km/h", "01-01-1980").
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub text: String,
    /// Byte offsets in the text.
    pub start: usize,
    pub end: usize,
}

/// Words that start a sentence or ask a question rather than name something.
const NOT_NAMES: &[&str] = &[
    "i",
    "what",
    "what's",
    "whats",
    "how",
    "who",
    "when",
    "where",
    "which",
    "why",
    "find",
    "get",
    "give",
    "calculate",
    "compute",
    "tell",
    "show",
    "please",
    "can",
    "could",
    "would",
    "is",
    "are",
    "the",
    "a",
    "an",
    "i'm",
    "i'd",
    "my",
    "let's",
    "do",
    "does",
    "list",
    "search",
    "fetch",
    "retrieve",
    "identify",
    "provide",
    "predict",
    "determine",
];

/// A value quoted with `'` or `"` after a space, a bracket or punctuation.
pub(super) fn quoted_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r#"(?:^|[\s(\[,:=])(?:'([^'\n]{1,60})'|"([^"\n]{1,60})")"#).ok())
        .as_ref()
}

/// The spans of `text`, in order of appearance, without repeats.
pub fn spans(text: &str) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    let push = |out: &mut Vec<Span>, start: usize, end: usize| {
        let t = text[start..end].trim();
        if t.is_empty() || t.len() >= text.trim().len() {
            return;
        }
        if !out.iter().any(|s| s.text.eq_ignore_ascii_case(t)) {
            out.push(Span {
                text: t.to_string(),
                start,
                end,
            });
        }
    };
    if let Some(re) = quoted_re() {
        for c in re.captures_iter(text) {
            if let Some(m) = c.get(1).or_else(|| c.get(2)) {
                push(&mut out, m.start(), m.end());
            }
        }
    }
    // Words with their offsets, trailing punctuation cut off (kept on abbreviations).
    let mut words: Vec<(usize, usize, bool)> = Vec::new(); // start, end, ends a phrase
    let mut i = 0;
    for w in text.split_inclusive(char::is_whitespace) {
        let raw = w.trim_end();
        let lead = raw.len() - raw.trim_start_matches(['(', '[', '"', '\'']).len();
        let mut core = &raw[lead..];
        let mut stop = false;
        while let Some(c) = core.chars().last() {
            let abbrev = c == '.' && {
                let b = &core[..core.len() - 1];
                b.contains('.') || (b.len() <= 3 && b.chars().next().is_some_and(char::is_uppercase))
            };
            if matches!(c, ',' | ';' | ':' | '?' | '!' | ')' | ']' | '"' | '\'') || (c == '.' && !abbrev) {
                core = &core[..core.len() - c.len_utf8()];
                stop = true;
            } else {
                break;
            }
        }
        if let Some(b) = core.strip_suffix("'s") {
            core = b;
            stop = true;
        }
        let start = i + lead;
        words.push((start, start + core.len(), stop));
        i += w.len();
    }
    let word = |k: usize| &text[words[k].0..words[k].1];
    let is_cap =
        |w: &str| w.chars().next().is_some_and(char::is_uppercase) && !NOT_NAMES.contains(&w.to_lowercase().as_str());
    let is_num = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit());
    let mut k = 0;
    while k < words.len() {
        if !is_cap(word(k)) {
            k += 1;
            continue;
        }
        let first = k;
        while !words[k].2 && k + 1 < words.len() {
            let next = word(k + 1);
            if is_cap(next) || is_num(next) {
                k += 1;
            } else if next == "of" && k + 2 < words.len() && !words[k + 1].2 && is_cap(word(k + 2)) {
                k += 2;
            } else {
                break;
            }
        }
        // A lone capitalized word opening the text is most often a verb ("Look up …").
        if first > 0 || k > first {
            push(&mut out, words[first].0, words[k].1);
        }
        k += 1;
    }
    // Code-like words: letters with digits, or a slash or dash between parts.
    for &(a, b, _) in &words {
        let w = &text[a..b];
        let digit = w.chars().any(|c| c.is_ascii_digit());
        let alpha = w.chars().any(char::is_alphabetic);
        let inner: Vec<char> = w.chars().collect();
        let joined = inner.len() >= 3 && inner[1..inner.len() - 1].iter().any(|c| matches!(c, '/' | '-' | ':'));
        if (digit && alpha) || (joined && !w.starts_with('-')) {
            push(&mut out, a, b);
        }
    }
    out.sort_by_key(|s| s.start);
    out
}

/// Lists of spans the text writes out (`'Age', 'Income' and 'Education'`, `Apple and
/// Microsoft`, `the S&P 500 and the Dow Jones`), as indices into `spans`.
pub fn span_lists(text: &str, spans: &[Span]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut run: Vec<usize> = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        let joined = run.last().is_some_and(|&p| {
            let prev = &spans[p];
            prev.end <= s.start && {
                let gap = text[prev.end..s.start].trim_matches(|c: char| c.is_whitespace() || c == '\'' || c == '"');
                let gap = gap.trim_start_matches(',').trim();
                let gap = gap.strip_suffix("the").unwrap_or(gap).trim();
                gap.is_empty() || gap == "and" || gap == "or" || gap == "&"
            }
        });
        if !joined {
            if run.len() >= 2 {
                out.push(std::mem::take(&mut run));
            }
            run.clear();
        }
        run.push(i);
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
        assert_eq!(vals("from 300K, a $5k budget"), vec![300.0, 300e3, 5.0, 5e3]);
        assert_eq!(vals("version v2 of someone"), Vec::<f64>::new());
    }

    #[test]
    fn bracketed_commas_separate_items_not_thousands() {
        let t = "given cash_flows=[200,300,400,500], a rate of 10%, and $2,000 up front";
        assert_eq!(number_lists(t), vec![vec![200.0, 300.0, 400.0, 500.0]]);
        assert_eq!(vals(t), vec![200.0, 300.0, 400.0, 500.0, 10.0, 0.1, 2000.0]);
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

    fn span_texts(t: &str) -> Vec<String> {
        spans(t).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn finds_names_quotes_and_codes() {
        assert_eq!(
            span_texts("Look up details of a felony crime record for case number CA123456 in San Diego County"),
            vec!["CA123456", "San Diego County"]
        );
        assert_eq!(
            span_texts("Find the information of criminal cases of Mr. X in New York between 2012 and 2015."),
            vec!["Mr. X", "New York"]
        );
        assert_eq!(
            span_texts("Run a model with predictor variables 'Age', 'Income' and 'Education'."),
            vec!["Age", "Income", "Education"]
        );
        assert_eq!(span_texts("What's the speed in km/h?"), vec!["km/h"]);
        assert_eq!(span_texts("a volume of 5 m³ or 2 m/s²"), vec!["m/s²"]);
        assert_eq!(
            span_texts("Give me the details of Criminal Law Amendment Act of 2013."),
            vec!["Criminal Law Amendment Act"]
        );
        assert_eq!(span_texts("Bank of America's profit"), vec!["Bank of America"]);
    }

    #[test]
    fn finds_written_span_lists() {
        let t = "the market performance of the S&P 500 and the Dow Jones over 5 days";
        let s = spans(t);
        assert_eq!(span_texts(t), vec!["S&P 500", "Dow Jones"]);
        assert_eq!(span_lists(t, &s), vec![vec![0, 1]]);
        let t = "predictors 'Age', 'Income' and 'Education' and a target 'Purchase_Amount' (in USD)";
        let s = spans(t);
        assert_eq!(span_lists(t, &s), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn number_text_keeps_integers_integral() {
        assert_eq!(number_text(10.0, true).as_deref(), Some("10"));
        assert_eq!(number_text(2.5, true), None);
        assert_eq!(number_text(2.5, false).as_deref(), Some("2.5"));
        assert_eq!(number_text(1e-9, false).as_deref(), Some("0.000000001"));
    }
}
