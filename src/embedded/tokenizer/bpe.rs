//! Byte-level BPE (the `gpt2` tokenizer model): each byte of a word becomes one of 256
//! printable characters, then the pair with the lowest merge rank is merged until none
//! is left, as llama.cpp's `llm_tokenizer_bpe_session` does.
//!
//! Symbols are interned strings rather than strings, so that a merge is a hash lookup on
//! two integers. Vocabulary tokens keep their own ids; merge parts and results that are
//! not in the vocabulary get ids past its end, so merging goes on through them exactly
//! as it does on strings in llama.cpp.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::Vocabulary;

/// Beyond this many cached words the cache starts again, so that memory stays bounded
/// on endless streams of new text.
const WORD_CACHE_LIMIT: usize = 1 << 17;

/// Merge ranks over interned symbols, and a cache of finished words.
#[derive(Debug)]
pub(crate) struct BytePairEncoder {
    /// The symbol of each byte's printable stand-in.
    byte_symbols: [u32; 256],
    /// `(left, right)` → (rank, merged symbol).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Texts of the symbols that are not vocabulary tokens, from `first_extra` on.
    extra_texts: Vec<String>,
    first_extra: u32,
    /// Token ids of the words seen so far, by their raw bytes.
    cache: Mutex<WordCache>,
}

/// Token ids by a word's raw bytes.
type WordCache = HashMap<Box<[u8]>, Box<[u32]>>;

impl BytePairEncoder {
    /// Interns every merge of `tokenizer.ggml.merges`; earlier entries rank first.
    pub(crate) fn new(vocabulary: &Vocabulary, merge_rules: &[&str]) -> BytePairEncoder {
        let mut interner = Interner {
            vocabulary,
            extra: HashMap::new(),
            extra_texts: Vec::new(),
        };
        let byte_symbols = std::array::from_fn(|byte| {
            interner.intern(byte_to_char(byte as u8).to_string().as_str())
        });
        let mut merges = HashMap::with_capacity(merge_rules.len());
        for (rank, rule) in merge_rules.iter().enumerate() {
            // As llama.cpp: split at the first space after the first byte; a rule with
            // none is an empty pair that never matches.
            let Some(space) = rule.as_bytes().iter().skip(1).position(|&b| b == b' ') else {
                continue;
            };
            let (left, right) = (&rule[..space + 1], &rule[space + 2..]);
            let pair = (interner.intern(left), interner.intern(right));
            let merged = interner.intern(&format!("{left}{right}"));
            // The first rule for a pair wins, as with llama.cpp's `emplace`.
            merges.entry(pair).or_insert((rank as u32, merged));
        }
        BytePairEncoder {
            byte_symbols,
            merges,
            first_extra: vocabulary.len() as u32,
            extra_texts: interner.extra_texts,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Appends the tokens of one pre-tokenized word.
    pub(crate) fn encode_word(&self, vocabulary: &Vocabulary, word: &str, out: &mut Vec<u32>) {
        if let Some(tokens) = self.cache().get(word.as_bytes()) {
            out.extend_from_slice(tokens);
            return;
        }
        let start = out.len();
        for symbol in self.merge(word.as_bytes()) {
            self.push_symbol(vocabulary, symbol, out);
        }
        let mut cache = self.cache();
        if cache.len() >= WORD_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(word.as_bytes().into(), out[start..].into());
    }

    /// The word cache; a panic elsewhere cannot leave it half-written, so a poisoned
    /// lock is taken as it is.
    fn cache(&self) -> MutexGuard<'_, WordCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The symbols a word ends as once no ranked pair is left.
    fn merge(&self, word: &[u8]) -> Vec<u32> {
        let mut symbols: Vec<Symbol> = word
            .iter()
            .enumerate()
            .map(|(index, &byte)| Symbol {
                id: self.byte_symbols[byte as usize],
                prev: index.checked_sub(1),
                next: (index + 1 < word.len()).then_some(index + 1),
            })
            .collect();
        // Lowest rank first, then leftmost, as llama.cpp's queue orders its bigrams.
        let mut queue = BinaryHeap::new();
        let candidate = |symbols: &[Symbol], left: usize, right: usize| {
            let pair = (symbols[left].id, symbols[right].id);
            self.merges.get(&pair).map(|&(rank, merged)| {
                Reverse(Candidate {
                    rank,
                    left,
                    right,
                    pair,
                    merged,
                })
            })
        };
        for left in 1..symbols.len() {
            queue.extend(candidate(&symbols, left - 1, left));
        }
        while let Some(Reverse(bigram)) = queue.pop() {
            let (left, right) = (&symbols[bigram.left], &symbols[bigram.right]);
            // Stale: one side has merged since, so the pair is no longer what was queued.
            if left.id == DEAD || right.id == DEAD || (left.id, right.id) != bigram.pair {
                continue;
            }
            let after = right.next;
            symbols[bigram.left].id = bigram.merged;
            symbols[bigram.left].next = after;
            symbols[bigram.right].id = DEAD;
            if let Some(after) = after {
                symbols[after].prev = Some(bigram.left);
            }
            if let Some(before) = symbols[bigram.left].prev {
                queue.extend(candidate(&symbols, before, bigram.left));
            }
            if let Some(after) = after {
                queue.extend(candidate(&symbols, bigram.left, after));
            }
        }
        symbols
            .into_iter()
            .map(|symbol| symbol.id)
            .filter(|&id| id != DEAD)
            .collect()
    }

    /// A finished symbol as tokens: itself if it is in the vocabulary, else, as
    /// llama.cpp does, whichever of its single bytes are tokens.
    fn push_symbol(&self, vocabulary: &Vocabulary, symbol: u32, out: &mut Vec<u32>) {
        if symbol < self.first_extra {
            out.push(symbol);
            return;
        }
        let text = &self.extra_texts[(symbol - self.first_extra) as usize];
        for byte in text.bytes() {
            if let Some(id) = byte
                .is_ascii()
                .then(|| vocabulary.id(&(byte as char).to_string()))
                .flatten()
            {
                out.push(id);
            }
        }
    }
}

/// Marks a symbol merged into its left neighbour.
const DEAD: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Symbol {
    id: u32,
    prev: Option<usize>,
    next: Option<usize>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    rank: u32,
    left: usize,
    right: usize,
    pair: (u32, u32),
    merged: u32,
}

struct Interner<'v> {
    vocabulary: &'v Vocabulary,
    extra: HashMap<String, u32>,
    extra_texts: Vec<String>,
}

impl Interner<'_> {
    fn intern(&mut self, text: &str) -> u32 {
        if let Some(id) = self.vocabulary.id(text) {
            return id;
        }
        if let Some(&id) = self.extra.get(text) {
            return id;
        }
        let id = (self.vocabulary.len() + self.extra_texts.len()) as u32;
        self.extra.insert(text.to_owned(), id);
        self.extra_texts.push(text.to_owned());
        id
    }
}

/// GPT-2's printable stand-in for a byte: printable Latin-1 bytes stand for themselves,
/// the others are moved to U+0100 and up, in byte order.
pub(crate) fn byte_to_char(byte: u8) -> char {
    let stands_for_itself = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if stands_for_itself(byte) {
        return byte as char;
    }
    let moved = (0..byte).filter(|&b| !stands_for_itself(b)).count() as u32;
    char::from_u32(0x100 + moved).expect("U+0100..U+0143 are characters")
}

/// The byte a stand-in character means, if it is one.
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    static TABLE: std::sync::OnceLock<HashMap<char, u8>> = std::sync::OnceLock::new();
    TABLE
        .get_or_init(|| (0..=255u8).map(|byte| (byte_to_char(byte), byte)).collect())
        .get(&c)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_map_is_gpt2s() {
        assert_eq!(byte_to_char(b'a'), 'a');
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'\t'), 'ĉ');
        assert_eq!(byte_to_char(0), 'Ā');
        assert_eq!(byte_to_char(0xAD), 'Ń');
        for byte in 0..=255u8 {
            assert_eq!(char_to_byte(byte_to_char(byte)), Some(byte));
        }
        assert_eq!(char_to_byte('€'), None);
    }
}
