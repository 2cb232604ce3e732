//! SentencePiece-style BPE (the `llama` tokenizer model) as llama.cpp's
//! `llm_tokenizer_spm_session` runs it: one symbol per character, then the adjacent pair
//! whose joined text is the vocabulary token with the highest score is merged, again and
//! again; what never became a token falls back to `<0xXX>` byte tokens.
//!
//! There is no pre-tokenization: a whole text fragment is one merge problem, with spaces
//! already written as `▁`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::Vocabulary;

/// Appends the tokens of `text` (spaces already escaped).
pub(crate) fn encode(vocabulary: &Vocabulary, text: &str, out: &mut Vec<u32>) {
    let mut symbols: Vec<Symbol> = text
        .char_indices()
        .map(|(start, c)| Symbol {
            start,
            len: c.len_utf8(),
            prev: None,
            next: None,
        })
        .collect();
    for index in 0..symbols.len() {
        symbols[index].prev = index.checked_sub(1);
        symbols[index].next = (index + 1 < symbols.len()).then_some(index + 1);
    }
    let mut queue = BinaryHeap::new();
    let bigram = |symbols: &[Symbol], left: usize, right: usize| {
        let joined = &text[symbols[left].start..symbols[right].start + symbols[right].len];
        vocabulary.id(joined).map(|id| Bigram {
            score: vocabulary.score(id),
            left,
            right,
            len: joined.len(),
        })
    };
    for right in 1..symbols.len() {
        queue.extend(bigram(&symbols, right - 1, right));
    }
    while let Some(best) = queue.pop() {
        let (left, right) = (symbols[best.left], symbols[best.right]);
        // Stale: a side has merged since. Symbols only grow, so the joined length tells.
        if left.len == 0 || right.len == 0 || left.len + right.len != best.len {
            continue;
        }
        symbols[best.left].len += right.len;
        symbols[best.left].next = right.next;
        symbols[best.right].len = 0;
        if let Some(after) = right.next {
            symbols[after].prev = Some(best.left);
        }
        if let Some(before) = left.prev {
            queue.extend(bigram(&symbols, before, best.left));
        }
        if let Some(after) = right.next {
            queue.extend(bigram(&symbols, best.left, after));
        }
    }
    let mut index = (!symbols.is_empty()).then_some(0);
    while let Some(current) = index {
        let symbol = symbols[current];
        let piece = &text[symbol.start..symbol.start + symbol.len];
        // llama.cpp would resegment a symbol through its merge history here, but only
        // merges into vocabulary tokens are ever made, so a symbol that is not a token
        // is a single character: its bytes go out one by one.
        match vocabulary.id(piece) {
            Some(id) => out.push(id),
            None => out.extend(piece.bytes().filter_map(|byte| vocabulary.byte_token(byte))),
        }
        index = symbol.next;
    }
}

#[derive(Debug, Clone, Copy)]
struct Symbol {
    start: usize,
    /// Bytes; 0 once merged into the symbol on its left.
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A mergeable pair; the queue pops the highest score, then the leftmost.
#[derive(Debug)]
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        // Compared as C++ compares floats (-0.0 == 0.0); scores are never NaN.
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Bigram {}
