//! Splitting notes into chunks for recall: sentences packed up to a word budget, so each
//! chunk fits the embedding model's window and stays about one topic.

/// Most words in one chunk (about 130–160 word pieces, under the model's 256).
pub const MAX_WORDS: usize = 110;

/// Split `text` into chunks of at most [`MAX_WORDS`] words, on sentence boundaries where
/// possible. Deterministic: the same text always gives the same chunks.
pub fn chunk(text: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    for sentence in sentences(text) {
        let words: Vec<&str> = sentence.split_whitespace().collect();
        if !cur.is_empty() && cur.len() + words.len() > MAX_WORDS {
            chunks.push(cur.join(" "));
            cur.clear();
        }
        for piece in words.chunks(MAX_WORDS) {
            if !cur.is_empty() && cur.len() + piece.len() > MAX_WORDS {
                chunks.push(cur.join(" "));
                cur.clear();
            }
            cur.extend_from_slice(piece);
        }
    }
    if !cur.is_empty() {
        chunks.push(cur.join(" "));
    }
    chunks
}

/// Sentences and paragraphs: cut after `.`, `!` or `?` followed by whitespace, and at blank
/// lines.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let end_mark = matches!(bytes[i], b'.' | b'!' | b'?') && bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace);
        let blank = bytes[i] == b'\n' && bytes.get(i + 1) == Some(&b'\n');
        if end_mark || blank {
            let s = text[start..=i].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = i + 1;
        }
        i += 1;
    }
    let s = text[start..].trim();
    if !s.is_empty() {
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(
            chunk("  My passport expires in May.  "),
            vec!["My passport expires in May."]
        );
        assert!(chunk("   ").is_empty());
    }

    #[test]
    fn long_text_splits_on_sentences_within_the_budget() {
        let sentence = "word ".repeat(40).trim().to_string() + ".";
        let text = [sentence.as_str(); 6].join(" ");
        let chunks = chunk(&text);
        assert_eq!(chunks.len(), 3, "{chunks:?}");
        for c in &chunks {
            assert!(c.split_whitespace().count() <= MAX_WORDS);
            assert!(c.ends_with('.'));
        }
        let words: usize = chunks.iter().map(|c| c.split_whitespace().count()).sum();
        assert_eq!(words, 240, "no word lost or repeated");
    }

    #[test]
    fn a_sentence_longer_than_the_budget_is_cut_by_words() {
        let text = "x ".repeat(250);
        let chunks = chunk(&text);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.iter().map(|c| c.split_whitespace().count()).sum::<usize>(), 250);
    }
}
