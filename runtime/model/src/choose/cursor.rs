//! A write head on one cached sequence: forced text is buffered and evaluated in one batch
//! right before the model has to decide something; decisions are made by scoring the
//! alternatives together, or token by token under a filter.

use llama_cpp_2::token::LlamaToken;

use crate::error::{ModelError, Result};
use crate::llama::SeqId;
use crate::llama::{Logits, Session};

/// Write head on a sequence.
pub struct Cursor<'a, 'm> {
    pub s: &'a mut Session<'m>,
    pub seq: SeqId,
    pending: String,
    logits: Option<Logits>,
    /// Text written so far after the prompt (forced and chosen), for diagnostics.
    pub text: String,
}

/// The outcome of a choice: which alternative won, and every alternative's score.
#[derive(Debug, Clone)]
pub struct Choice {
    pub best: usize,
    /// Sum of token log-probabilities of each alternative.
    pub scores: Vec<f32>,
    /// Token count of each alternative.
    pub lens: Vec<usize>,
}

/// A saved position of a cursor, to come back to with [`Cursor::rollback`].
pub struct Mark {
    len: usize,
    pending: String,
    logits: Option<Logits>,
    text_len: usize,
}

impl<'a, 'm> Cursor<'a, 'm> {
    /// The current position.
    pub fn mark(&self) -> Mark {
        Mark {
            len: self.s.len(self.seq),
            pending: self.pending.clone(),
            logits: self.logits.clone(),
            text_len: self.text.len(),
        }
    }

    /// Forget everything written since `m`.
    pub fn rollback(&mut self, m: Mark) -> Result<()> {
        if self.s.len(self.seq) != m.len {
            self.s.truncate(self.seq, m.len)?;
        }
        self.pending = m.pending;
        self.logits = m.logits;
        self.text.truncate(m.text_len);
        Ok(())
    }

    /// A head at the end of `seq`, whose next-token scores are `logits`.
    pub fn new(s: &'a mut Session<'m>, seq: SeqId, logits: Logits) -> Self {
        Cursor {
            s,
            seq,
            pending: String::new(),
            logits: Some(logits),
            text: String::new(),
        }
    }

    /// Append text the model does not choose.
    pub fn force(&mut self, text: &str) {
        self.pending.push_str(text);
        self.text.push_str(text);
    }

    /// Evaluate pending text; returns the scores for the next token.
    pub fn flush(&mut self) -> Result<&Logits> {
        if !self.pending.is_empty() {
            let toks = self.s.m.tokenize(&self.pending);
            self.pending.clear();
            self.s.extend(self.seq, &toks)?;
            self.logits = Some(self.s.last_logits()?);
        }
        self.logits
            .as_ref()
            .ok_or_else(|| ModelError::Inference("cursor has no logits".into()))
    }

    /// Score alternatives continuing the current text, pick the likeliest (by total
    /// log-probability plus `bonus[i]`), and write it. Alternatives are tokenized together
    /// with pending forced text, so each is scored in its natural tokenization.
    pub fn choose(&mut self, alts: &[String], bonus: Option<&[f32]>) -> Result<Choice> {
        let (ch, consumed) = self.score_inner(alts)?;
        let mut best = 0;
        let mut best_s = f32::NEG_INFINITY;
        for (i, s) in ch.scores.iter().enumerate() {
            let v = s + bonus.and_then(|b| b.get(i)).copied().unwrap_or(0.0);
            if v > best_s {
                best_s = v;
                best = i;
            }
        }
        let alt = &alts[best];
        let cut = consumed.min(alt.len());
        if alt.is_char_boundary(cut) {
            self.text.push_str(&alt[..cut]);
            self.write_scored(best, &alt[cut..])?;
        } else {
            self.force(alt);
        }
        Ok(Choice { best, ..ch })
    }

    /// Write `text`, which candidate `cand` of the session's last scoring batch began with:
    /// the tokens evaluated there join the sequence as they are, the rest is forced.
    pub fn write_scored(&mut self, cand: usize, text: &str) -> Result<()> {
        if !self.pending.is_empty() {
            self.force(text);
            return Ok(());
        }
        let Some((n, logits)) = self.s.adopt(self.seq, cand)? else {
            self.force(text);
            return Ok(());
        };
        let len = self.s.len(self.seq) - n;
        let bytes = self.s.m.bytes(&self.s.tokens(self.seq)[len..]);
        if text.as_bytes().starts_with(&bytes) && text.is_char_boundary(bytes.len()) {
            self.text.push_str(&text[..bytes.len()]);
            self.logits = Some(logits);
            self.force(&text[bytes.len()..]);
        } else {
            // Not the text's own tokens: take them back.
            self.s.truncate(self.seq, len)?;
            self.force(text);
        }
        Ok(())
    }

    /// Score alternatives without writing any of them. Forced text evaluated on the way is
    /// kept (all of it but the token that reaches into the alternatives' shared start).
    pub fn score(&mut self, alts: &[String]) -> Result<Choice> {
        let len = self.s.len(self.seq);
        let pending = self.pending.clone();
        let logits = self.logits.clone();
        let (choice, consumed) = match self.score_inner(alts) {
            Ok(r) => r,
            Err(e) => {
                self.rollback_to(len, pending, logits)?;
                return Err(e);
            }
        };
        if consumed == 0 {
            return Ok(choice);
        }
        // Keep the evaluated tokens that lie within the forced text, less one whose scores
        // were not kept: it is evaluated again with what comes next.
        let mut keep = 0;
        let mut bytes = 0;
        for &t in &self.s.tokens(self.seq)[len..] {
            let n = self.s.m.piece(t).len();
            if bytes + n >= pending.len() {
                break;
            }
            bytes += n;
            keep += 1;
        }
        if keep == 0 || !pending.is_char_boundary(bytes) {
            self.rollback_to(len, pending, logits)?;
        } else {
            self.s.truncate(self.seq, len + keep)?;
            self.pending = pending[bytes..].to_string();
            self.logits = None;
        }
        Ok(choice)
    }

    fn rollback_to(&mut self, len: usize, pending: String, logits: Option<Logits>) -> Result<()> {
        if self.s.len(self.seq) != len {
            self.s.truncate(self.seq, len)?;
        }
        self.pending = pending;
        self.logits = logits;
        Ok(())
    }

    /// Returns the choice and how many bytes of the alternatives were evaluated as shared.
    fn score_inner(&mut self, alts: &[String]) -> Result<(Choice, usize)> {
        if alts.is_empty() {
            return Err(ModelError::Inference("nothing to choose from".into()));
        }
        let full: Vec<Vec<LlamaToken>> = alts
            .iter()
            .map(|a| self.s.m.tokenize(&format!("{}{a}", self.pending)))
            .collect();
        // Shared leading tokens are forced text: evaluate them once.
        let mut common = full[0].len();
        for f in &full[1..] {
            common = common.min(f.iter().zip(&full[0]).take_while(|(a, b)| a == b).count());
        }
        let min_len = full.iter().map(Vec::len).min().unwrap_or(0);
        if common >= min_len {
            common = min_len.saturating_sub(1);
        }
        let shared = self.s.m.bytes(&full[0][..common]);
        let mut consumed = 0;
        let mut prefix: &[LlamaToken] = &[];
        let tails: Vec<Vec<LlamaToken>> =
            if shared.len() >= self.pending.len() && shared.starts_with(self.pending.as_bytes()) {
                // The shared tokens are evaluated in the same batch as the alternatives.
                prefix = &full[0][..common];
                consumed = shared.len() - self.pending.len();
                self.pending.clear();
                full.iter().map(|f| f[common..].to_vec()).collect()
            } else {
                self.flush()?;
                alts.iter().map(|a| self.s.m.tokenize(a)).collect()
            };
        let (after, lps) = self.s.score_after(self.seq, self.logits.as_ref(), prefix, &tails)?;
        self.logits = Some(after);
        let scores: Vec<f32> = lps.iter().map(|l| l.iter().sum()).collect();
        Ok((
            Choice {
                best: 0,
                scores,
                lens: tails.iter().map(Vec::len).collect(),
            },
            consumed,
        ))
    }

    /// Generate one token chosen by `pick` from the current scores; the token is written.
    pub fn step(&mut self, pick: &mut dyn FnMut(&Logits) -> Option<LlamaToken>) -> Result<Option<LlamaToken>> {
        let lg = self.flush()?;
        let Some(t) = pick(lg) else { return Ok(None) };
        self.s.extend(self.seq, &[t])?;
        self.logits = Some(self.s.last_logits()?);
        self.text.push_str(&String::from_utf8_lossy(self.s.m.piece(t)));
        Ok(Some(t))
    }

    /// Write `tokens` in one batch (pending text first) and return the scores after each of
    /// them: a guessed continuation is checked in one pass, then cut back with
    /// [`Cursor::retract`] where the model would have written something else.
    pub fn extend_scored(&mut self, tokens: &[LlamaToken]) -> Result<Vec<Logits>> {
        self.flush()?;
        let lgs = self.s.extend_scored(self.seq, tokens)?;
        for &t in tokens {
            self.text.push_str(&String::from_utf8_lossy(self.s.m.piece(t)));
        }
        self.logits = lgs.last().cloned().or(self.logits.take());
        Ok(lgs)
    }

    /// Take back the last `n` evaluated tokens; `logits` are the scores after the ones kept.
    pub fn retract(&mut self, n: usize, logits: Logits) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let len = self.s.len(self.seq);
        let from = len.saturating_sub(n);
        let cut: usize = self.s.tokens(self.seq)[from..]
            .iter()
            .map(|&t| String::from_utf8_lossy(self.s.m.piece(t)).len())
            .sum();
        self.s.truncate(self.seq, from)?;
        self.text.truncate(self.text.len().saturating_sub(cut));
        self.logits = Some(logits);
        Ok(())
    }

    /// The pending (not yet evaluated) text.
    pub fn pending(&self) -> &str {
        &self.pending
    }
}
