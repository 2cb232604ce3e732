//! Pre-tokenizers: the regexes that cut text into words before byte-level BPE, written
//! out by hand because they need a lookahead (`\s+(?!\S)`) that the `regex` crate lacks.
//!
//! Each splitter reproduces what llama.cpp does, which is not always what the regex says:
//! llama.cpp runs the GPT-2 pattern through a hand-written matcher with its own edge
//! cases, and every other pattern through `std::regex` on a text where each non-ASCII
//! character stands for its Unicode category. Both are mirrored here, and the comments on
//! each branch say which regex alternative it is.
//!
//! Characters are classed as llama.cpp's tables class them: letter (`\p{L}`), number
//! (`\p{N}`), whitespace (the Unicode `White_Space` property) or other. The tables come
//! from `regex-syntax`, whose Unicode version may be newer than llama.cpp's; the two
//! differ only on characters assigned in between.

use std::ops::Range;
use std::sync::OnceLock;

/// The pre-tokenizers we reproduce, by the pattern they apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PreTokenizer {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
    Gpt2,
    /// `\p{N}` first (every digit alone), then the GPT-2 pattern within what is left.
    DigitsThenGpt2,
    /// `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    Qwen2,
}

/// llama.cpp's `tokenizer.ggml.pre` names that select each pre-tokenizer. A name
/// missing here is refused rather than approximated.
pub(crate) const PRE_TOKENIZER_NAMES: &[(&str, PreTokenizer)] = &[
    ("gpt-2", PreTokenizer::Gpt2),
    ("phi-2", PreTokenizer::Gpt2),
    ("mpt", PreTokenizer::Gpt2),
    ("olmo", PreTokenizer::Gpt2),
    ("jais", PreTokenizer::Gpt2),
    ("starcoder", PreTokenizer::DigitsThenGpt2),
    ("refact", PreTokenizer::DigitsThenGpt2),
    ("command-r", PreTokenizer::DigitsThenGpt2),
    ("smollm", PreTokenizer::DigitsThenGpt2),
    ("codeshell", PreTokenizer::DigitsThenGpt2),
    ("exaone", PreTokenizer::DigitsThenGpt2),
    ("minerva-7b", PreTokenizer::DigitsThenGpt2),
    ("qwen2", PreTokenizer::Qwen2),
    ("deepseek-r1-qwen", PreTokenizer::Qwen2),
    ("stablelm2", PreTokenizer::Qwen2),
    ("megrez", PreTokenizer::Qwen2),
];

impl PreTokenizer {
    /// The pre-tokenizer llama.cpp picks for a `tokenizer.ggml.pre` value.
    pub(crate) fn named(name: &str) -> Option<PreTokenizer> {
        PRE_TOKENIZER_NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, pre)| *pre)
    }

    /// Cuts `text` into words, calling `word` on each in order. The words cover the
    /// text exactly.
    pub(crate) fn split<'t>(self, text: &'t str, mut word: impl FnMut(&'t str)) {
        let chars = Chars::of(text);
        let mut ends = Vec::new();
        match self {
            PreTokenizer::Gpt2 => split_gpt2(&chars, 0..chars.len(), &mut ends),
            PreTokenizer::DigitsThenGpt2 => {
                for chunk in isolate_numbers(&chars) {
                    split_gpt2(&chars, chunk, &mut ends);
                }
            }
            PreTokenizer::Qwen2 => split_qwen2(&chars, &mut ends),
        }
        let mut start = 0;
        for end in ends {
            word(&text[chars.byte_offset(start)..chars.byte_offset(end)]);
            start = end;
        }
    }
}

/// How the pre-tokenizer patterns see a character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CharClass {
    Letter,
    Number,
    Whitespace,
    Other,
}

/// The class of a character, as llama.cpp's Unicode tables give it.
pub(crate) fn class_of(c: char) -> CharClass {
    let tables = class_tables();
    let code = c as usize;
    if code < tables.bmp.len() {
        return tables.bmp[code];
    }
    let found = tables
        .astral
        .binary_search_by(|&(start, end, _)| {
            if end < c {
                std::cmp::Ordering::Less
            } else if start > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .ok();
    found.map_or(CharClass::Other, |index| tables.astral[index].2)
}

struct ClassTables {
    /// One entry per character of the Basic Multilingual Plane, where nearly all text is.
    bmp: Vec<CharClass>,
    /// Sorted, non-overlapping ranges above it; characters in none are `Other`.
    astral: Vec<(char, char, CharClass)>,
}

fn class_tables() -> &'static ClassTables {
    static TABLES: OnceLock<ClassTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut bmp = vec![CharClass::Other; 0x10000];
        let mut astral = Vec::new();
        // The three properties are disjoint, so the order of filling does not matter.
        for (property, class) in [
            (r"\p{L}", CharClass::Letter),
            (r"\p{N}", CharClass::Number),
            (r"\p{White_Space}", CharClass::Whitespace),
        ] {
            for (start, end) in unicode_ranges(property) {
                let bmp_end = (end as usize).min(0xFFFF);
                if (start as usize) <= bmp_end {
                    bmp[start as usize..=bmp_end].fill(class);
                }
                if end as usize > 0xFFFF {
                    let start = start.max('\u{10000}');
                    astral.push((start, end, class));
                }
            }
        }
        astral.sort_by_key(|&(start, _, _)| start);
        ClassTables { bmp, astral }
    })
}

/// The character ranges of a Unicode property class such as `\p{L}`.
fn unicode_ranges(property: &str) -> Vec<(char, char)> {
    use regex_syntax::hir::{Class, HirKind};
    let hir = regex_syntax::Parser::new()
        .parse(property)
        .expect("a Unicode property class that regex-syntax knows");
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => class
            .ranges()
            .iter()
            .map(|range| (range.start(), range.end()))
            .collect(),
        other => unreachable!("{property} parsed to {other:?}, not a Unicode class"),
    }
}

/// A text as the splitters index it: by character, with each character's class.
struct Chars {
    chars: Vec<char>,
    classes: Vec<CharClass>,
    /// Byte offset of each character, plus the text's length at the end.
    offsets: Vec<usize>,
}

impl Chars {
    fn of(text: &str) -> Chars {
        let mut chars = Vec::with_capacity(text.len());
        let mut classes = Vec::with_capacity(text.len());
        let mut offsets = Vec::with_capacity(text.len() + 1);
        for (offset, c) in text.char_indices() {
            chars.push(c);
            classes.push(class_of(c));
            offsets.push(offset);
        }
        offsets.push(text.len());
        Chars {
            chars,
            classes,
            offsets,
        }
    }

    fn len(&self) -> usize {
        self.chars.len()
    }

    fn byte_offset(&self, index: usize) -> usize {
        self.offsets[index]
    }
}

/// A splitter's view of one chunk: lookups past its end see nothing, as a regex run on
/// the chunk alone would.
struct Chunk<'c> {
    chars: &'c [char],
    classes: &'c [CharClass],
    end: usize,
}

impl Chunk<'_> {
    fn char_at(&self, index: usize) -> Option<char> {
        (index < self.end).then(|| self.chars[index])
    }

    fn class_at(&self, index: usize) -> Option<CharClass> {
        (index < self.end).then(|| self.classes[index])
    }

    /// The first index at or after `from` whose class is not `class`.
    fn skip(&self, from: usize, class: CharClass) -> usize {
        let mut index = from;
        while self.class_at(index) == Some(class) {
            index += 1;
        }
        index
    }

    /// The length of a contraction (`'s`, `'ll`, ...) starting at `index`, if one does.
    fn contraction_at(&self, index: usize, fold_case: bool) -> Option<usize> {
        if self.char_at(index) != Some('\'') {
            return None;
        }
        let fold = |c: char| if fold_case { c.to_ascii_lowercase() } else { c };
        let first = fold(self.char_at(index + 1)?);
        if matches!(first, 's' | 't' | 'm' | 'd') {
            return Some(2);
        }
        let second = fold(self.char_at(index + 2)?);
        matches!((first, second), ('r', 'e') | ('v', 'e') | ('l', 'l')).then_some(3)
    }
}

/// Chunks that hold either one number character or a run without any, in order: the
/// `\p{N}` pre-pass of the StarCoder family, which is why "2023" becomes four words and
/// a space before a digit stays a word of its own.
fn isolate_numbers(chars: &Chars) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for (index, class) in chars.classes.iter().enumerate() {
        if *class == CharClass::Number {
            if start < index {
                chunks.push(start..index);
            }
            chunks.push(index..index + 1);
            start = index + 1;
        }
    }
    if start < chars.len() {
        chunks.push(start..chars.len());
    }
    chunks
}

/// llama.cpp's hand-written GPT-2 matcher over one chunk, pushing word ends to `ends`.
fn split_gpt2(chars: &Chars, range: Range<usize>, ends: &mut Vec<usize>) {
    let chunk = Chunk {
        chars: &chars.chars,
        classes: &chars.classes,
        end: range.end,
    };
    let mut pos = range.start;
    while pos < range.end {
        // 's|'t|'re|'ve|'m|'ll|'d
        if let Some(length) = chunk.contraction_at(pos, false) {
            pos += length;
            ends.push(pos);
            continue;
        }
        let c = chunk.chars[pos];
        // The optional leading space of the next three alternatives: what follows it
        // decides which one matches.
        let space = usize::from(c == ' ');
        let led = if c == ' ' {
            chunk.class_at(pos + 1)
        } else {
            Some(chunk.classes[pos])
        };
        match led {
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
            Some(class @ (CharClass::Letter | CharClass::Number | CharClass::Other)) => {
                pos = chunk.skip(pos + space, class);
                ends.push(pos);
            }
            _ => {
                let run = chunk.skip(pos, CharClass::Whitespace) - pos;
                if run > 1 && pos + run < range.end {
                    // `\s+(?!\S)`: leave the last space to lead the next word.
                    pos += run - 1;
                } else {
                    // `\s+`, which llama.cpp's matcher takes even though the GPT-2
                    // pattern does not spell it out.
                    pos += run.max(1);
                }
                ends.push(pos);
            }
        }
    }
}

/// The Qwen2 pattern with leftmost-first alternation, as `std::regex` runs it in
/// llama.cpp, over the whole text.
fn split_qwen2(chars: &Chars, ends: &mut Vec<usize>) {
    let end = chars.len();
    let chunk = Chunk {
        chars: &chars.chars,
        classes: &chars.classes,
        end,
    };
    let is_newline = |c: Option<char>| matches!(c, Some('\r' | '\n'));
    let mut pos = 0;
    while pos < end {
        let c = chunk.chars[pos];
        let class = chunk.classes[pos];
        // (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])
        if let Some(length) = chunk.contraction_at(pos, true) {
            pos += length;
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        else if class == CharClass::Letter {
            pos = chunk.skip(pos + 1, CharClass::Letter);
        } else if !is_newline(Some(c))
            && class != CharClass::Number
            && chunk.class_at(pos + 1) == Some(CharClass::Letter)
        {
            pos = chunk.skip(pos + 2, CharClass::Letter);
        }
        // \p{N}
        else if class == CharClass::Number {
            pos += 1;
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        else if class == CharClass::Other
            || (c == ' ' && chunk.class_at(pos + 1) == Some(CharClass::Other))
        {
            pos = chunk.skip(pos + usize::from(c == ' '), CharClass::Other);
            while is_newline(chunk.char_at(pos)) {
                pos += 1;
            }
        }
        // Only whitespace is left.
        else {
            let run_end = chunk.skip(pos, CharClass::Whitespace);
            let last_newline = (pos..run_end)
                .rev()
                .find(|&i| is_newline(Some(chunk.chars[i])));
            pos = match last_newline {
                // \s*[\r\n]+: the greedy \s* gives back down to the last line break.
                Some(newline) => newline + 1,
                // \s+(?!\S): all but the space before the next word.
                None if run_end - pos > 1 && run_end < end => run_end - 1,
                // \s+(?!\S) at the end of the text, or \s+ for a single space.
                None => run_end,
            };
        }
        ends.push(pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pre: PreTokenizer, text: &str) -> Vec<&str> {
        let mut words = Vec::new();
        pre.split(text, |word| words.push(word));
        words
    }

    #[test]
    fn classes_follow_unicode_categories() {
        assert_eq!(class_of('a'), CharClass::Letter);
        assert_eq!(class_of('ß'), CharClass::Letter);
        assert_eq!(class_of('中'), CharClass::Letter);
        assert_eq!(class_of('7'), CharClass::Number);
        assert_eq!(class_of('²'), CharClass::Number);
        assert_eq!(class_of('٣'), CharClass::Number);
        assert_eq!(class_of('\u{a0}'), CharClass::Whitespace);
        assert_eq!(class_of('\u{3000}'), CharClass::Whitespace);
        assert_eq!(class_of('\u{85}'), CharClass::Whitespace);
        // Not White_Space, though Python's isspace says so.
        assert_eq!(class_of('\u{1c}'), CharClass::Other);
        // A combining mark is neither a letter nor a number.
        assert_eq!(class_of('\u{301}'), CharClass::Other);
        assert_eq!(class_of('😀'), CharClass::Other);
        assert_eq!(class_of('𝐀'), CharClass::Letter);
        assert_eq!(class_of('𝟙'), CharClass::Number);
    }

    #[test]
    fn gpt2_keeps_one_space_for_the_next_word() {
        let pre = PreTokenizer::Gpt2;
        assert_eq!(words(pre, "Hello  world"), ["Hello", " ", " world"]);
        assert_eq!(words(pre, "a\n\nb"), ["a", "\n", "\n", "b"]);
        assert_eq!(words(pre, "end   "), ["end", "   "]);
        assert_eq!(words(pre, " x"), [" x"]);
        assert_eq!(words(pre, "x "), ["x", " "]);
        assert_eq!(words(pre, "\tx"), ["\t", "x"]);
    }

    #[test]
    fn gpt2_contractions_are_case_sensitive() {
        let pre = PreTokenizer::Gpt2;
        assert_eq!(words(pre, "I'll don't"), ["I", "'ll", " don", "'t"]);
        assert_eq!(words(pre, "I'LL"), ["I", "'", "LL"]);
        assert_eq!(words(pre, "it's'"), ["it", "'s", "'"]);
    }

    #[test]
    fn gpt2_groups_punctuation_and_numbers() {
        let pre = PreTokenizer::Gpt2;
        assert_eq!(words(pre, "1,234.56!"), ["1", ",", "234", ".", "56", "!"]);
        assert_eq!(words(pre, "a ... b"), ["a", " ...", " b"]);
        assert_eq!(words(pre, "x=(y+1);"), ["x", "=(", "y", "+", "1", ");"]);
        assert_eq!(words(pre, "naïve café"), ["naïve", " café"]);
        // A combining mark is not a letter, so it splits the word.
        assert_eq!(words(pre, "cafe\u{301}s"), ["cafe", "\u{301}", "s"]);
    }

    #[test]
    fn smollm_splits_every_digit_and_cuts_chunks_there() {
        let pre = PreTokenizer::DigitsThenGpt2;
        assert_eq!(
            words(pre, "in 2023, 1,234.56"),
            [
                "in", " ", "2", "0", "2", "3", ",", " ", "1", ",", "2", "3", "4", ".", "5", "6"
            ]
        );
        // The chunk ends before the digit, so the two spaces stay together.
        assert_eq!(words(pre, "a  1"), ["a", "  ", "1"]);
        assert_eq!(words(pre, "x²"), ["x", "²"]);
    }

    #[test]
    fn qwen2_attaches_a_leading_mark_to_a_word() {
        let pre = PreTokenizer::Qwen2;
        assert_eq!(words(pre, "Hello world"), ["Hello", " world"]);
        assert_eq!(words(pre, "(hello"), ["(hello"]);
        assert_eq!(words(pre, "\tindent"), ["\tindent"]);
        assert_eq!(words(pre, "\nline"), ["\n", "line"]);
        assert_eq!(words(pre, "x  = 1"), ["x", " ", " =", " ", "1"]);
    }

    #[test]
    fn qwen2_splits_digits_and_keeps_line_breaks_with_punctuation() {
        let pre = PreTokenizer::Qwen2;
        assert_eq!(words(pre, "2023"), ["2", "0", "2", "3"]);
        assert_eq!(words(pre, "a;\n\nb"), ["a", ";\n\n", "b"]);
        assert_eq!(words(pre, "a  \n  b"), ["a", "  \n", " ", " b"]);
        assert_eq!(words(pre, "a \r\n\r\n b"), ["a", " \r\n\r\n", " b"]);
        assert_eq!(words(pre, "end  "), ["end", "  "]);
    }

    #[test]
    fn qwen2_contractions_fold_ascii_case() {
        let pre = PreTokenizer::Qwen2;
        assert_eq!(words(pre, "I'LL don't"), ["I", "'LL", " don", "'t"]);
        assert_eq!(words(pre, "'x"), ["'x"]);
    }

    #[test]
    fn splitters_cover_the_text() {
        let text = "  Mixed:\t日本語 text, 12 émojis 😀😀\r\n\u{a0}end\n";
        for pre in [
            PreTokenizer::Gpt2,
            PreTokenizer::DigitsThenGpt2,
            PreTokenizer::Qwen2,
        ] {
            assert_eq!(words(pre, text).concat(), text, "{pre:?}");
            assert!(words(pre, text).iter().all(|word| !word.is_empty()));
        }
        assert!(words(PreTokenizer::Qwen2, "").is_empty());
    }
}
