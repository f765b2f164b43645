//! Words for keyword recall, cut the way the `mem_fts` table's tokenizer
//! (`porter unicode61 remove_diacritics 2`) cuts them: letters and digits make words,
//! everything else separates them; words are lowercased, stripped of diacritics and stemmed.
//!
//! The stemmer is Snowball English (Porter2, `rust-stemmers`), a revision of the Porter
//! algorithm FTS5 uses; the two agree on common English suffixes (`-s`, `-ing`, `-ed`,
//! `-ation`, …) and differ on a few rare ones.

use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::FxHashMap;
use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// Words too common to help BM25 (they would also make every query match most chunks).
/// They are counted in a chunk's length, as FTS5 counts them, but never indexed.
pub const STOPWORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "did", "do", "does", "for", "from",
    "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "our", "so",
    "that", "the", "their", "them", "there", "these", "they", "this", "to", "was", "we", "were", "what", "when",
    "where", "which", "who", "why", "will", "with", "you", "your",
];

/// Call `f` with each word of `text`: lowercased, diacritics removed, not yet stemmed.
pub fn words(text: &str, mut f: impl FnMut(&str)) {
    let mut w = String::new();
    let push = |c: char, w: &mut String| {
        if c.is_ascii() {
            w.push(c.to_ascii_lowercase());
        } else if !is_combining_mark(c) {
            w.extend(c.to_lowercase());
        }
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            w.push(c.to_ascii_lowercase());
        } else if c.is_ascii() {
            if !w.is_empty() {
                f(&w);
                w.clear();
            }
        } else if is_combining_mark(c) {
            // A diacritic written as its own character: dropped, the word goes on.
        } else if c.is_alphanumeric() {
            // `é` → `e` + U+0301 → `e`.
            decompose_canonical(c, |d| push(d, &mut w));
        } else if !w.is_empty() {
            f(&w);
            w.clear();
        }
    }
    if !w.is_empty() {
        f(&w);
    }
}

fn is_stopword(w: &str) -> bool {
    STOPWORDS.binary_search(&w).is_ok()
}

fn stemmer() -> Stemmer {
    Stemmer::create(Algorithm::English)
}

/// A query's search terms: stemmed words, stopwords and repeats removed, in query order.
pub fn query_terms(text: &str) -> Vec<String> {
    let st = stemmer();
    let mut out: Vec<String> = Vec::new();
    words(text, |w| {
        if is_stopword(w) {
            return;
        }
        let t = st.stem(w);
        if !out.iter().any(|o| *o == t) {
            out.push(t.into_owned());
        }
    });
    out
}

/// A chunk as the index holds it: its length in words (stopwords included, as FTS5 counts)
/// and each distinct indexed term with its count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analyzed {
    pub len: u32,
    pub terms: Vec<(String, u32)>,
}

/// Cut, normalize and stem a chunk's text.
pub fn analyze(text: &str) -> Analyzed {
    let mut an = Analyzer::default();
    let (len, ids) = an.analyze(text);
    let mut terms: Vec<(String, u32)> = ids.into_iter().map(|(i, n)| (an.stem(i).to_string(), n)).collect();
    terms.sort_unstable();
    Analyzed { len, terms }
}

/// [`analyze`] for many chunks: remembers each word's stem, and names stems by small
/// numbers (equal stems, equal numbers) so an index resolves each distinct stem once.
#[derive(Default)]
pub struct Analyzer {
    stemmer: Option<Stemmer>,
    /// Word → stem number, or [`STOP`].
    seen: FxHashMap<String, u32>,
    /// Stem → stem number.
    numbers: FxHashMap<String, u32>,
    stems: Vec<String>,
}

/// The stem number of a stopword.
const STOP: u32 = u32::MAX;

impl Analyzer {
    /// A chunk's length in words and its distinct stems (by number) with their counts,
    /// in stem number order.
    pub fn analyze(&mut self, text: &str) -> (u32, Vec<(u32, u32)>) {
        let mut len = 0u32;
        let mut ids: Vec<u32> = Vec::new();
        let Analyzer {
            stemmer,
            seen,
            numbers,
            stems,
        } = self;
        let stemmer = stemmer.get_or_insert_with(self::stemmer);
        words(text, |w| {
            len = len.saturating_add(1);
            let id = match seen.get(w) {
                Some(&id) => id,
                None => {
                    let id = if is_stopword(w) {
                        STOP
                    } else {
                        let st = stemmer.stem(w);
                        match numbers.get(st.as_ref()) {
                            Some(&id) => id,
                            None => {
                                let id = stems.len() as u32;
                                numbers.insert(st.to_string(), id);
                                stems.push(st.into_owned());
                                id
                            }
                        }
                    };
                    seen.insert(w.to_string(), id);
                    id
                }
            };
            if id != STOP {
                ids.push(id);
            }
        });
        ids.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::new();
        for id in ids {
            match out.last_mut() {
                Some((last, n)) if *last == id => *n = n.saturating_add(1),
                _ => out.push((id, 1)),
            }
        }
        (len, out)
    }

    /// The stem numbered `id`.
    pub fn stem(&self, id: u32) -> &str {
        &self.stems[id as usize]
    }

    /// Stems numbered so far.
    pub fn stems(&self) -> usize {
        self.stems.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<String> {
        let mut v = Vec::new();
        words(text, |w| v.push(w.to_string()));
        v
    }

    #[test]
    fn stopwords_are_sorted_for_binary_search() {
        assert!(STOPWORDS.windows(2).all(|p| p[0] < p[1]));
    }

    #[test]
    fn words_split_on_non_alphanumerics_and_lowercase() {
        assert_eq!(
            all("What is my home-airport? NEAR(x) \"AND\" m³ 42km"),
            ["what", "is", "my", "home", "airport", "near", "x", "and", "m³", "42km"]
        );
        assert_eq!(all(""), Vec::<String>::new());
        assert_eq!(all("  ...  "), Vec::<String>::new());
    }

    #[test]
    fn diacritics_are_removed_precomposed_or_combining() {
        assert_eq!(all("Zürich Café São Paulo"), ["zurich", "cafe", "sao", "paulo"]);
        assert_eq!(all("Cafe\u{301} Zu\u{308}rich"), ["cafe", "zurich"]);
        assert_eq!(all("ÉCOLE naïve"), ["ecole", "naive"]);
        // Letters without a decomposition stay; CJK is alphanumeric.
        assert_eq!(all("Øl 東京"), ["øl", "東京"]);
    }

    #[test]
    fn query_terms_stem_drop_stopwords_and_repeats() {
        assert_eq!(
            query_terms("What is my home-airport? NEAR(x) \"AND\""),
            ["home", "airport", "near", "x"]
        );
        assert_eq!(query_terms("the of and"), Vec::<String>::new());
        assert_eq!(query_terms("Zürich zürich ZURICH"), ["zurich"]);
        assert_eq!(query_terms("running runs runner"), ["run", "runner"]);
        assert_eq!(query_terms("connected connections"), ["connect"]);
        assert_eq!(query_terms("flights booking"), ["flight", "book"]);
    }

    #[test]
    fn analyze_counts_every_word_and_indexes_stemmed_non_stopwords() {
        let a = analyze("The runner runs; the dogs ran to the dog park.");
        assert_eq!(a.len, 10);
        assert_eq!(
            a.terms,
            [
                ("dog".to_string(), 2),
                ("park".to_string(), 1),
                ("ran".to_string(), 1),
                ("run".to_string(), 1),
                ("runner".to_string(), 1)
            ]
        );
        assert_eq!(analyze("to be or not").terms, [("not".to_string(), 1)]);
        // A reused analyzer (its word cache warm) gives the same answers.
        let mut an = Analyzer::default();
        for t in [
            "The runner runs; the dogs ran to the dog park.",
            "Zürich runs running",
            "the dogs",
        ] {
            for _ in 0..2 {
                let (len, ids) = an.analyze(t);
                let mut terms: Vec<(String, u32)> = ids.iter().map(|&(i, n)| (an.stem(i).to_string(), n)).collect();
                terms.sort_unstable();
                assert_eq!(Analyzed { len, terms }, analyze(t));
            }
        }
        // `runs` and `running`: one stem, one number.
        assert_eq!(an.analyze("runs running").1, [(an.analyze("run").1[0].0, 2)]);
    }
}
