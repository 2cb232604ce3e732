//! Special-token partitioning, as llama.cpp's `tokenizer_st_partition`: before any
//! pre-tokenization, the text is cut at every occurrence of a special token's text.
//!
//! llama.cpp takes the special tokens longest first and, for each, cuts every text
//! fragment left over at each of its non-overlapping occurrences, left to right. That
//! is not leftmost-longest matching ("abcd" with tokens "bcd" and "ab" gives "a", "bcd"),
//! so it is reproduced as is. An Aho-Corasick pass first finds which special tokens occur
//! in the text at all, so that the thousands that do not cost nothing.
//!
//! The per-token strip attributes (`lstrip`/`rstrip`), which llama.cpp sets only for a
//! few models by name, are not reproduced.

use std::ops::Range;

use aho_corasick::AhoCorasick;

/// A piece of the text to encode: raw text, or a special token found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fragment {
    Text(Range<usize>),
    Token(u32),
}

/// The special tokens in llama.cpp's matching order, with a matcher over all of them.
#[derive(Debug)]
pub(crate) struct SpecialTokens {
    /// Longest text first; ties by id (llama.cpp's sort is not stable, so its order of
    /// equal lengths is unspecified; it matters only where two such tokens overlap).
    tokens: Vec<SpecialToken>,
    matcher: AhoCorasick,
}

#[derive(Debug)]
struct SpecialToken {
    id: u32,
    text: String,
    /// Control and unknown tokens are recognised only when the caller asks; user-defined
    /// ones always are.
    only_when_parsing_special: bool,
}

impl SpecialTokens {
    /// `tokens` are `(id, text, only_when_parsing_special)`.
    pub(crate) fn new(tokens: impl IntoIterator<Item = (u32, String, bool)>) -> SpecialTokens {
        let mut tokens: Vec<SpecialToken> = tokens
            .into_iter()
            .map(|(id, text, only_when_parsing_special)| SpecialToken {
                id,
                text,
                only_when_parsing_special,
            })
            .collect();
        tokens.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then(a.id.cmp(&b.id)));
        let matcher = AhoCorasick::new(tokens.iter().map(|token| &token.text))
            .expect("special token texts fit an Aho-Corasick automaton");
        SpecialTokens { tokens, matcher }
    }

    /// Cuts `text` into raw fragments and special tokens.
    pub(crate) fn partition(&self, text: &str, parse_special: bool) -> Vec<Fragment> {
        if text.is_empty() {
            return Vec::new();
        }
        let mut present = vec![false; self.tokens.len()];
        for found in self.matcher.find_overlapping_iter(text) {
            present[found.pattern().as_usize()] = true;
        }
        let mut fragments = vec![Fragment::Text(0..text.len())];
        for (token, _) in self.tokens.iter().zip(present).filter(|(token, present)| {
            *present && (parse_special || !token.only_when_parsing_special)
        }) {
            fragments = fragments
                .into_iter()
                .flat_map(|fragment| match fragment {
                    Fragment::Text(range) => cut(text, range, token),
                    token @ Fragment::Token(_) => vec![token],
                })
                .collect();
        }
        fragments
    }
}

/// One raw fragment cut at each occurrence of `token`, left to right.
fn cut(text: &str, range: Range<usize>, token: &SpecialToken) -> Vec<Fragment> {
    let mut pieces = Vec::new();
    let mut start = range.start;
    for (offset, _) in text[range.clone()].match_indices(token.text.as_str()) {
        let found = range.start + offset;
        if start < found {
            pieces.push(Fragment::Text(start..found));
        }
        pieces.push(Fragment::Token(token.id));
        start = found + token.text.len();
    }
    if start < range.end {
        pieces.push(Fragment::Text(start..range.end));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specials() -> SpecialTokens {
        SpecialTokens::new([
            (1, "<ctl>".to_owned(), true),
            (2, "bcd".to_owned(), false),
            (3, "ab".to_owned(), false),
            (4, "\n".to_owned(), false),
            (5, "\n\n".to_owned(), false),
        ])
    }

    #[test]
    fn longer_tokens_claim_their_text_first() {
        let parts = specials().partition("abcd", false);
        assert_eq!(parts, [Fragment::Text(0..1), Fragment::Token(2)]);
        let parts = specials().partition("x\n\n\ny", false);
        assert_eq!(
            parts,
            [
                Fragment::Text(0..1),
                Fragment::Token(5),
                Fragment::Token(4),
                Fragment::Text(4..5)
            ]
        );
    }

    #[test]
    fn control_tokens_need_parse_special() {
        assert_eq!(specials().partition("<ctl>", false), [Fragment::Text(0..5)]);
        assert_eq!(specials().partition("<ctl>", true), [Fragment::Token(1)]);
        assert_eq!(
            specials().partition("a<ctl><ctl>", true),
            [Fragment::Text(0..1), Fragment::Token(1), Fragment::Token(1)]
        );
        assert!(specials().partition("", true).is_empty());
    }
}
