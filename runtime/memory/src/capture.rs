//! Rule-based capture of what a user says about themselves, so a small chat model does not
//! have to decide what to remember.
//!
//! Only plain first-person statements are captured; questions, requests and anything else
//! are left alone (the model can still call `memory.remember`). A message is cut into
//! sentences, and a sentence into clauses at `,`, `;`, `and` or `but` when the next word
//! starts a new first-person clause (`I`, `I'm`, `my`). Each clause is matched against:
//!
//! | clause | stored as |
//! |---|---|
//! | `my name is Ada`, `I am called Ada`, `call me Ada` | fact `user.name = Ada` |
//! | `my home airport is AMS` (1–3 words before `is`/`are`) | fact `user.home_airport = AMS` |
//! | `I am vegetarian`, `I'm from Oslo` | note `The user is vegetarian.` |
//! | `I [always/usually/often/never/really/…] prefer/like/take/live/… X` | note `The user always takes X.` |
//!
//! Notes are rewritten in the third person (`my` → `their`) so they read as facts in a
//! system prompt. A clause that mentions `you` is a request to the assistant, not a fact.

use crate::error::Result;
use crate::memory::Memory;
use crate::types::{NewFact, NewNote, Provenance, Remembered};

/// Something a user said about themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Captured {
    /// `user.<key> = <value>`; a later value for the key replaces it.
    Fact { key: String, value: String },
    /// A statement in the third person (`The user always takes a window seat.`).
    Note(String),
}

/// Adverbs allowed between `I` and the verb.
const ADVERBS: &[&str] = &[
    "always",
    "usually",
    "often",
    "never",
    "really",
    "mostly",
    "generally",
    "normally",
    "also",
    "rarely",
    "sometimes",
];

/// Verbs whose first-person statements describe the user (habits, preferences, life).
const VERBS: &[&str] = &[
    "prefer", "like", "love", "enjoy", "hate", "dislike", "avoid", "live", "work", "take", "eat", "drink", "speak",
    "use", "own", "have", "drive", "fly", "sit", "play", "study", "wear", "choose", "book", "travel",
];

/// `I am …` continuations that are moods or tasks, not facts.
const NOT_FACTS: &[&str] = &[
    "sure",
    "not",
    "sorry",
    "here",
    "back",
    "done",
    "fine",
    "ok",
    "okay",
    "good",
    "glad",
    "happy",
    "going",
    "trying",
    "just",
    "about",
    "wondering",
    "looking",
    "asking",
    "curious",
    "confused",
    "ready",
];

/// Capture what `text` says about the user and store it in `namespace`: facts about subject
/// `user`, notes with subject `user` (a note already stored word for word is not stored
/// again). Returns what was captured and how it was stored.
pub async fn remember(
    memory: &Memory,
    namespace: &str,
    text: &str,
    provenance: Provenance,
) -> Result<Vec<(Captured, Remembered)>> {
    let found = capture(text);
    let mut out = Vec::new();
    if found.is_empty() {
        return Ok(out);
    }
    let known: Vec<String> = if found.iter().any(|c| matches!(c, Captured::Note(_))) {
        memory
            .notes(Some(namespace.to_string()), Some("user".into()), 10_000)
            .await?
            .into_iter()
            .map(|n| n.text)
            .collect()
    } else {
        Vec::new()
    };
    for c in found {
        let r = match &c {
            Captured::Fact { key, value } => {
                memory
                    .remember_fact(NewFact {
                        namespace: namespace.to_string(),
                        subject: "user".into(),
                        key: key.clone(),
                        value: value.clone(),
                        provenance: provenance.clone(),
                        ttl_seconds: None,
                    })
                    .await?
            }
            Captured::Note(t) if known.contains(t) => continue,
            Captured::Note(t) => {
                memory
                    .remember_note(NewNote {
                        namespace: namespace.to_string(),
                        subject: Some("user".into()),
                        text: t.clone(),
                        source: Some("chat.capture".into()),
                        provenance: provenance.clone(),
                        ..Default::default()
                    })
                    .await?
            }
        };
        out.push((c, r));
    }
    Ok(out)
}

/// What `text` says about the user, in order.
pub fn capture(text: &str) -> Vec<Captured> {
    let mut out = Vec::new();
    for sentence in sentences(text) {
        for clause in clauses(&sentence) {
            if let Some(c) = clause_fact(&clause)
                && !out.contains(&c)
            {
                out.push(c);
            }
        }
    }
    out
}

/// Sentences that are statements (questions are dropped), without their final mark.
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in text.chars() {
        match ch {
            '.' | '!' | '\n' | ';' => {
                out.push(std::mem::take(&mut cur));
            }
            '?' => cur.clear(),
            _ => cur.push(ch),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn starts_first_person(word: &str) -> bool {
    matches!(norm(word).as_str(), "i" | "i'm" | "im" | "i've" | "my")
}

/// A word lowercased, without surrounding punctuation, `’` as `'`.
fn norm(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '’')
        .replace('’', "'")
        .to_lowercase()
}

/// Clauses of a sentence, split where a new first-person clause begins.
fn clauses(sentence: &str) -> Vec<Vec<String>> {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    let mut out: Vec<Vec<String>> = vec![Vec::new()];
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let next_fp = words.get(i + 1).is_some_and(|n| starts_first_person(n));
        let conj = matches!(norm(w).as_str(), "and" | "but" | "so" | "also");
        if conj && next_fp {
            out.push(Vec::new());
            i += 1;
            continue;
        }
        let trimmed = w.trim_end_matches(',');
        if let Some(cur) = out.last_mut() {
            cur.push(trimmed.to_string());
        }
        if w.ends_with(',') && next_fp {
            out.push(Vec::new());
        }
        i += 1;
    }
    out.into_iter().filter(|c| !c.is_empty()).collect()
}

fn clause_fact(words: &[String]) -> Option<Captured> {
    let low: Vec<String> = words.iter().map(|w| norm(w)).collect();
    if low
        .iter()
        .any(|w| matches!(w.as_str(), "you" | "your" | "you're" | "yours"))
    {
        return None;
    }
    let rest = |from: usize| -> Option<String> {
        let s = words.get(from..)?.join(" ");
        let s = s.trim_matches(|c: char| c.is_whitespace() || matches!(c, ',' | '"' | '\''));
        (!s.is_empty()).then(|| s.to_string())
    };
    let l: Vec<&str> = low.iter().map(String::as_str).collect();
    match l.as_slice() {
        ["my", "name", "is" | "'s", ..] | ["i", "am", "called", ..] | ["i'm" | "im", "called", ..] => {
            let at = if l[0] == "my" {
                3
            } else {
                l.iter().position(|w| *w == "called")? + 1
            };
            return name(&rest(at)?);
        }
        ["call", "me", ..] => return name(&rest(2)?),
        ["my", ..] => {
            let verb = l.iter().take(5).position(|w| matches!(*w, "is" | "are"))?;
            if verb < 2 || l[1..verb].iter().any(|w| !w.chars().all(char::is_alphabetic)) {
                return None;
            }
            let value = rest(verb + 1)?;
            return Some(Captured::Fact {
                key: l[1..verb].join("_"),
                value,
            });
        }
        _ => {}
    }
    // `I am X` / `I'm X`.
    let after_am = match l.as_slice() {
        ["i", "am", ..] => Some(2),
        ["i'm" | "im", ..] => Some(1),
        _ => None,
    };
    if let Some(at) = after_am {
        let first = *l.get(at)?;
        if NOT_FACTS.contains(&first) || first.ends_with("ing") {
            return None;
        }
        return Some(Captured::Note(format!("The user is {}.", third_person(&rest(at)?))));
    }
    // `I [adverb] verb X`.
    if l.first() != Some(&"i") {
        return None;
    }
    let mut at = 1;
    let mut adverb = None;
    if ADVERBS.contains(l.get(at)?) {
        adverb = Some(words[at].to_lowercase());
        at += 1;
    }
    let verb = *l.get(at)?;
    if !VERBS.contains(&verb) {
        return None;
    }
    let object = third_person(&rest(at + 1)?);
    let verb = conjugate(verb);
    Some(Captured::Note(match adverb {
        Some(a) => format!("The user {a} {verb} {object}."),
        None => format!("The user {verb} {object}."),
    }))
}

fn name(value: &str) -> Option<Captured> {
    // A name is a few capitalised words: stop at the first word that is not one.
    let words: Vec<&str> = value
        .split_whitespace()
        .take_while(|w| w.chars().next().is_some_and(char::is_uppercase))
        .take(4)
        .collect();
    (!words.is_empty()).then(|| Captured::Fact {
        key: "name".into(),
        value: words.join(" "),
    })
}

/// `take` → `takes`, `have` → `has`, `fly` → `flies`, `watch` → `watches`.
fn conjugate(verb: &str) -> String {
    if verb == "have" {
        return "has".into();
    }
    if let Some(stem) = verb.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    if verb.ends_with(['s', 'x', 'z', 'o']) || verb.ends_with("sh") || verb.ends_with("ch") {
        return format!("{verb}es");
    }
    format!("{verb}s")
}

/// `my bag` → `their bag`, `me` → `them`, `myself` → `themselves`.
fn third_person(text: &str) -> String {
    text.split_whitespace()
        .map(|w| match norm(w).as_str() {
            "my" => w.replace("My", "Their").replace("my", "their"),
            "me" => w.replace("me", "them"),
            "myself" => w.replace("myself", "themselves"),
            "mine" => w.replace("mine", "theirs"),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(k: &str, v: &str) -> Captured {
        Captured::Fact {
            key: k.into(),
            value: v.into(),
        }
    }
    fn note(t: &str) -> Captured {
        Captured::Note(t.into())
    }

    #[test]
    fn name_and_habit_in_one_sentence() {
        assert_eq!(
            capture("My name is Ada and I always take a window seat."),
            vec![fact("name", "Ada"), note("The user always takes a window seat.")]
        );
    }

    #[test]
    fn keyed_facts_states_and_preferences() {
        assert_eq!(capture("my home airport is AMS"), vec![fact("home_airport", "AMS")]);
        assert_eq!(
            capture("I'm vegetarian, I prefer aisle seats on my flights"),
            vec![
                note("The user is vegetarian."),
                note("The user prefers aisle seats on their flights.")
            ]
        );
        assert_eq!(
            capture("Call me Grace Hopper please"),
            vec![fact("name", "Grace Hopper")]
        );
        assert_eq!(
            capture("I usually fly with KLM."),
            vec![note("The user usually flies with KLM.")]
        );
        assert_eq!(capture("I watch birds"), vec![]);
        assert_eq!(
            capture("I like salt and pepper"),
            vec![note("The user likes salt and pepper.")]
        );
    }

    #[test]
    fn questions_requests_and_moods_are_not_captured() {
        for text in [
            "Which seat do I like?",
            "What is my name?",
            "I want you to book a flight",
            "I'm looking for a hotel in Paris",
            "I am not sure",
            "I like it when you answer briefly",
            "Tell me a joke",
            "",
        ] {
            assert_eq!(capture(text), vec![], "{text}");
        }
        // The statement before the question still counts.
        assert_eq!(
            capture("I live in Oslo. Where should I eat?"),
            vec![note("The user lives in Oslo.")]
        );
    }
}
