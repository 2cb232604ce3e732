//! A tokenizer built from a GGUF file's `tokenizer.*` metadata that gives the same token
//! ids as llama.cpp's `llama_tokenize`, so that a model run in process sees exactly the
//! prompt a llama.cpp server would.
//!
//! Two tokenizer models are supported: `gpt2` (byte-level BPE over a named
//! pre-tokenizer, [`bpe`] and [`pretokenize`]) and `llama` (SentencePiece-style BPE by
//! token score with byte fallback, [`sentencepiece`]). Both first cut the text at special
//! tokens ([`special`]). What llama.cpp derives from the metadata beyond the token lists
//! is derived here the same way: which tokens are control tokens, which end generation,
//! whether a BOS token is added.
//!
//! Not reproduced: the other tokenizer models (WordPiece, Unigram, RWKV, ...), the
//! pre-tokenizers other than the GPT-2, StarCoder/SmolLM and Qwen2 families (refused by
//! name), and the per-model strip attributes of special tokens (see [`special`]).

mod bpe;
mod pretokenize;
mod sentencepiece;
mod special;

use std::collections::{BTreeSet, HashMap};

use candle_core::quantized::gguf_file::{self, Value};

use bpe::BytePairEncoder;
use pretokenize::{PRE_TOKENIZER_NAMES, PreTokenizer};
use special::{Fragment, SpecialTokens};

/// Why a GGUF file's metadata cannot make a tokenizer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenizerError {
    #[error("the GGUF metadata has no `{key}`")]
    MissingKey { key: &'static str },
    #[error("GGUF metadata `{key}` is {found}, expected {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error(
        "unsupported tokenizer model `{model}` in `tokenizer.ggml.model` (supported: gpt2, llama)"
    )]
    UnsupportedModel { model: String },
    #[error(
        "unsupported pre-tokenizer `{pre}` in `tokenizer.ggml.pre` for a gpt2 tokenizer \
         (supported: {supported})"
    )]
    UnsupportedPreTokenizer { pre: String, supported: String },
    #[error("`{key}` has {entries} entries for {tokens} tokens")]
    TooFewEntries {
        key: &'static str,
        entries: usize,
        tokens: usize,
    },
    #[error("token `{text}` appears twice in `tokenizer.ggml.tokens`, as ids {first} and {second}")]
    DuplicateToken {
        text: String,
        first: u32,
        second: u32,
    },
    #[error("`{add_key}` is true but `{id_key}` names no token")]
    MissingSpecialToken {
        add_key: &'static str,
        id_key: &'static str,
    },
}

/// Token attributes, as llama.cpp's `llama_token_attr` bits.
mod attr {
    pub const UNKNOWN: u16 = 1 << 0;
    pub const UNUSED: u16 = 1 << 1;
    pub const NORMAL: u16 = 1 << 2;
    pub const CONTROL: u16 = 1 << 3;
    pub const USER_DEFINED: u16 = 1 << 4;
    pub const BYTE: u16 = 1 << 5;

    /// From a GGUF `tokenizer.ggml.token_type` entry.
    pub fn from_token_type(token_type: i32) -> u16 {
        match token_type {
            1 => NORMAL,
            2 => UNKNOWN,
            3 => CONTROL,
            4 => USER_DEFINED,
            5 => UNUSED,
            6 => BYTE,
            _ => 0,
        }
    }
}

/// The token list with what each token is.
#[derive(Debug)]
pub(crate) struct Vocabulary {
    texts: Vec<String>,
    ids: HashMap<String, u32>,
    scores: Vec<f32>,
    attrs: Vec<u16>,
    /// SentencePiece's byte-fallback token of each byte.
    byte_tokens: [Option<u32>; 256],
}

impl Vocabulary {
    pub(crate) fn len(&self) -> usize {
        self.texts.len()
    }

    pub(crate) fn id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    pub(crate) fn score(&self, id: u32) -> f32 {
        self.scores[id as usize]
    }

    pub(crate) fn byte_token(&self, byte: u8) -> Option<u32> {
        self.byte_tokens[byte as usize]
    }
}

#[derive(Debug)]
enum Model {
    /// `gpt2`: byte-level BPE.
    BytePair {
        pre: PreTokenizer,
        encoder: Box<BytePairEncoder>,
    },
    /// `llama`: SentencePiece-style BPE by score.
    SentencePiece { add_space_prefix: bool },
}

/// Text to token ids and back, for one GGUF model, as llama.cpp does it.
pub struct Tokenizer {
    vocabulary: Vocabulary,
    model: Model,
    specials: SpecialTokens,
    /// What each token decodes to, control tokens empty.
    pieces: Vec<Vec<u8>>,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    end_of_generation: BTreeSet<u32>,
    chat_template: Option<String>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("model", &self.model_name())
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes.
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Tokenizer, TokenizerError> {
        let metadata = Metadata(&content.metadata);
        let model_name =
            metadata
                .string("tokenizer.ggml.model")?
                .ok_or(TokenizerError::MissingKey {
                    key: "tokenizer.ggml.model",
                })?;
        let is_sentencepiece = match model_name {
            "llama" => true,
            "gpt2" => false,
            other => {
                return Err(TokenizerError::UnsupportedModel {
                    model: other.to_owned(),
                });
            }
        };
        let pre = if is_sentencepiece {
            None
        } else {
            let name = metadata.string("tokenizer.ggml.pre")?.unwrap_or("default");
            Some(PreTokenizer::named(name).ok_or_else(|| {
                TokenizerError::UnsupportedPreTokenizer {
                    pre: name.to_owned(),
                    supported: PRE_TOKENIZER_NAMES
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?)
        };

        let mut vocabulary = read_vocabulary(&metadata)?;
        let ids = SpecialIds::read(&metadata, is_sentencepiece, vocabulary.len())?;
        let end_of_generation = mark_control_tokens(&mut vocabulary, &ids);

        let add_bos = metadata
            .bool("tokenizer.ggml.add_bos_token")?
            .unwrap_or(is_sentencepiece);
        let add_eos = metadata
            .bool("tokenizer.ggml.add_eos_token")?
            .unwrap_or(false);
        let add_space_prefix = metadata
            .bool("tokenizer.ggml.add_space_prefix")?
            .unwrap_or(is_sentencepiece);
        for (adds, id, add_key, id_key) in [
            (
                add_bos,
                ids.bos,
                "tokenizer.ggml.add_bos_token",
                "tokenizer.ggml.bos_token_id",
            ),
            (
                add_eos,
                ids.eos,
                "tokenizer.ggml.add_eos_token",
                "tokenizer.ggml.eos_token_id",
            ),
        ] {
            if adds && id.is_none() {
                return Err(TokenizerError::MissingSpecialToken { add_key, id_key });
            }
        }

        let model = match pre {
            None => Model::SentencePiece { add_space_prefix },
            Some(pre) => {
                let merges = metadata.strings("tokenizer.ggml.merges")?.ok_or(
                    TokenizerError::MissingKey {
                        key: "tokenizer.ggml.merges",
                    },
                )?;
                Model::BytePair {
                    pre,
                    encoder: Box::new(BytePairEncoder::new(&vocabulary, &merges)),
                }
            }
        };
        let specials = SpecialTokens::new((0..vocabulary.len() as u32).filter_map(|id| {
            let attrs = vocabulary.attrs[id as usize];
            (attrs & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0).then(|| {
                let only_when_parsing_special = attrs & (attr::CONTROL | attr::UNKNOWN) != 0;
                (
                    id,
                    vocabulary.texts[id as usize].clone(),
                    only_when_parsing_special,
                )
            })
        }));
        let pieces = (0..vocabulary.len())
            .map(|id| piece(&vocabulary, id, is_sentencepiece))
            .collect();
        Ok(Tokenizer {
            vocabulary,
            model,
            specials,
            pieces,
            bos: ids.bos,
            eos: ids.eos,
            add_bos,
            add_eos,
            end_of_generation,
            chat_template: metadata
                .string("tokenizer.chat_template")?
                .map(str::to_owned),
        })
    }

    /// The token ids of `text`, as llama.cpp's `llama_tokenize(text, add_special,
    /// parse_special)`: BOS (and EOS) only where the model's metadata asks for them and
    /// `add_special` allows; control tokens written in the text are recognised only with
    /// `parse_special`, user-defined ones always.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        let fragments = self.specials.partition(text, parse_special);
        match &self.model {
            Model::BytePair { pre, encoder } => {
                for fragment in fragments {
                    match fragment {
                        Fragment::Token(id) => out.push(id),
                        Fragment::Text(range) => pre.split(&text[range], |word| {
                            encoder.encode_word(&self.vocabulary, word, &mut out)
                        }),
                    }
                }
            }
            Model::SentencePiece { add_space_prefix } => {
                // llama.cpp puts the space prefix before text that opens the input or
                // follows a special token.
                let mut after_special = true;
                for fragment in fragments {
                    match fragment {
                        Fragment::Token(id) => {
                            out.push(id);
                            after_special = true;
                        }
                        Fragment::Text(range) => {
                            let mut escaped = String::with_capacity(range.len() + 4);
                            if *add_space_prefix && after_special {
                                escaped.push('▁');
                            }
                            escaped.extend(
                                text[range].chars().map(|c| if c == ' ' { '▁' } else { c }),
                            );
                            sentencepiece::encode(&self.vocabulary, &escaped, &mut out);
                            after_special = false;
                        }
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    /// The bytes token `id` stands for, as llama.cpp's `llama_token_to_piece` without
    /// `special`: control and unknown tokens are empty, as is any id outside the
    /// vocabulary. A token can hold part of a UTF-8 character.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.pieces.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// The text of `ids`: their bytes joined, invalid UTF-8 replaced.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&id| self.token_bytes(id))
            .copied()
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The id of the token whose vocabulary text is exactly `piece`.
    pub fn token_id(&self, piece: &str) -> Option<u32> {
        self.vocabulary.id(piece)
    }

    pub fn vocab_size(&self) -> usize {
        self.vocabulary.len()
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether generation stops at `id`, as llama.cpp's `llama_vocab_is_eog`: EOS, the
    /// end-of-turn tokens (`<|im_end|>`, `<end_of_turn>`, `<|endoftext|>`, ...) and the
    /// fill-in-the-middle padding and separators.
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.end_of_generation.contains(&id)
    }

    /// The Jinja chat template of `tokenizer.chat_template`, if the file has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    fn model_name(&self) -> &'static str {
        match self.model {
            Model::BytePair { .. } => "gpt2",
            Model::SentencePiece { .. } => "llama",
        }
    }
}

fn read_vocabulary(metadata: &Metadata) -> Result<Vocabulary, TokenizerError> {
    let tokens = metadata
        .strings("tokenizer.ggml.tokens")?
        .ok_or(TokenizerError::MissingKey {
            key: "tokenizer.ggml.tokens",
        })?;
    let n = tokens.len();
    let scores = metadata.numbers("tokenizer.ggml.scores", n)?;
    let token_types = metadata.numbers("tokenizer.ggml.token_type", n)?;
    let mut texts = Vec::with_capacity(n);
    let mut ids = HashMap::with_capacity(n);
    for (id, text) in tokens.iter().enumerate() {
        // As llama.cpp, which cannot look up an empty token.
        let text = if text.is_empty() {
            format!("[EMPTY_{id}]")
        } else {
            (*text).to_owned()
        };
        if let Some(&first) = ids.get(&text) {
            return Err(TokenizerError::DuplicateToken {
                text,
                first,
                second: id as u32,
            });
        }
        ids.insert(text.clone(), id as u32);
        texts.push(text);
    }
    let byte_tokens = std::array::from_fn(|byte| {
        ids.get(&format!("<0x{byte:02X}>"))
            .or_else(|| {
                ids.get(&(byte as u8 as char).to_string())
                    .filter(|_| byte < 0x80)
            })
            .copied()
    });
    Ok(Vocabulary {
        texts,
        ids,
        scores: scores.map_or_else(
            || vec![0.0; n],
            |scores| scores.iter().map(|&s| s as f32).collect(),
        ),
        attrs: token_types.map_or_else(
            || vec![attr::NORMAL; n],
            |types| {
                types
                    .iter()
                    .map(|&t| attr::from_token_type(t as i32))
                    .collect()
            },
        ),
        byte_tokens,
    })
}

/// The special token ids llama.cpp keeps, from the metadata or its defaults.
#[derive(Debug)]
struct SpecialIds {
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    eom: Option<u32>,
    fim_pre: Option<u32>,
    fim_suf: Option<u32>,
    fim_mid: Option<u32>,
    fim_pad: Option<u32>,
    fim_rep: Option<u32>,
    fim_sep: Option<u32>,
}

impl SpecialIds {
    fn read(
        metadata: &Metadata,
        is_sentencepiece: bool,
        n_tokens: usize,
    ) -> Result<SpecialIds, TokenizerError> {
        // An id outside the vocabulary is ignored, as llama.cpp ignores it.
        let read =
            |key: &'static str, default: Option<u32>| -> Result<Option<u32>, TokenizerError> {
                let in_range = |id: &u32| (*id as usize) < n_tokens;
                Ok(metadata
                    .u32(key)?
                    .filter(in_range)
                    .or(default.filter(in_range)))
            };
        // llama.cpp's defaults when the metadata is silent: LLaMA's 1 and 2 for
        // SentencePiece, GPT-2's 11 for byte-level BPE.
        let (bos, eos) = if is_sentencepiece { (1, 2) } else { (11, 11) };
        let fim_pre = read("tokenizer.ggml.fim_pre_token_id", None)?;
        let fim_suf = read("tokenizer.ggml.fim_suf_token_id", None)?;
        let fim_mid = read("tokenizer.ggml.fim_mid_token_id", None)?;
        let ids = SpecialIds {
            bos: read("tokenizer.ggml.bos_token_id", Some(bos))?,
            eos: read("tokenizer.ggml.eos_token_id", Some(eos))?,
            eot: read("tokenizer.ggml.eot_token_id", None)?,
            eom: read("tokenizer.ggml.eom_token_id", None)?,
            // The older names of these three win, as llama.cpp reads them last.
            fim_pre: read("tokenizer.ggml.prefix_token_id", fim_pre)?,
            fim_suf: read("tokenizer.ggml.suffix_token_id", fim_suf)?,
            fim_mid: read("tokenizer.ggml.middle_token_id", fim_mid)?,
            fim_pad: read("tokenizer.ggml.fim_pad_token_id", None)?,
            fim_rep: read("tokenizer.ggml.fim_rep_token_id", None)?,
            fim_sep: read("tokenizer.ggml.fim_sep_token_id", None)?,
        };
        Ok(ids)
    }
}

/// Texts that llama.cpp takes for end-of-turn tokens when the metadata names none.
const END_OF_TURN_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const END_OF_MESSAGE_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PREFIX_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUFFIX_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MIDDLE_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REPO_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEPARATOR_TEXTS: &[&str] = &["<|file_sep|>"];
/// Texts of tokens that end generation whatever the metadata says.
const END_OF_GENERATION_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// What llama.cpp does to the token attributes after loading them: tokens that look like
/// end-of-turn, fill-in-the-middle or end-of-generation tokens become control tokens
/// (which changes how they are encoded and decoded). Returns the end-of-generation set.
fn mark_control_tokens(vocabulary: &mut Vocabulary, ids: &SpecialIds) -> BTreeSet<u32> {
    let set_control =
        |vocabulary: &mut Vocabulary, id: u32| vocabulary.attrs[id as usize] |= attr::CONTROL;
    // The first token with one of the texts, where the metadata named none. llama.cpp
    // walks a hash map, so with two candidates in one vocabulary its pick is arbitrary;
    // the lowest id is taken here.
    let detect = |vocabulary: &mut Vocabulary, named: Option<u32>, texts: &[&str]| {
        named.or_else(|| {
            let found = texts.iter().filter_map(|text| vocabulary.id(text)).min()?;
            set_control(vocabulary, found);
            Some(found)
        })
    };
    let eot = detect(vocabulary, ids.eot, END_OF_TURN_TEXTS);
    let eom = detect(vocabulary, ids.eom, END_OF_MESSAGE_TEXTS);
    detect(vocabulary, ids.fim_pre, FIM_PREFIX_TEXTS);
    detect(vocabulary, ids.fim_suf, FIM_SUFFIX_TEXTS);
    detect(vocabulary, ids.fim_mid, FIM_MIDDLE_TEXTS);
    let fim_pad = detect(vocabulary, ids.fim_pad, FIM_PAD_TEXTS);
    let fim_rep = detect(vocabulary, ids.fim_rep, FIM_REPO_TEXTS);
    let fim_sep = detect(vocabulary, ids.fim_sep, FIM_SEPARATOR_TEXTS);

    let mut end_of_generation: BTreeSet<u32> =
        [fim_pad, fim_rep, fim_sep].into_iter().flatten().collect();
    for text in END_OF_GENERATION_TEXTS {
        if let Some(id) = vocabulary.id(text) {
            end_of_generation.insert(id);
            set_control(vocabulary, id);
        }
    }
    // gpt-oss's message framing tokens are always written out.
    for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
        if let Some(id) = vocabulary.id(text) {
            vocabulary.attrs[id as usize] = attr::USER_DEFINED;
        }
    }
    end_of_generation.extend([ids.eos, eot, eom].into_iter().flatten());

    let with_text = |text: &str| {
        let texts = &vocabulary.texts;
        end_of_generation
            .iter()
            .copied()
            .find(|&id| texts[id as usize] == text)
    };
    // Where `<|return|>` and `<|call|>` (or `<|calls|>` and `<|flush|>`) end turns,
    // `<|end|>` only ends a message.
    let calls = with_text("<|call|>").or(with_text("<|calls|>"));
    let returns = with_text("<|return|>").or(with_text("<|flush|>"));
    let message_end = with_text("<|end|>").filter(|_| calls.is_some() && returns.is_some());
    // Where `<|tool_response>` ends generation, `</s>` is an ordinary token.
    let plain_s = with_text("</s>").filter(|_| with_text("<|tool_response>").is_some());
    if let Some(end) = message_end {
        end_of_generation.remove(&end);
        vocabulary.attrs[end as usize] = attr::USER_DEFINED;
    }
    if let Some(s) = plain_s {
        end_of_generation.remove(&s);
        vocabulary.attrs[s as usize] = attr::NORMAL;
    }
    end_of_generation
}

/// The bytes of one token, as llama.cpp's `token_to_piece` without `special`.
fn piece(vocabulary: &Vocabulary, id: usize, is_sentencepiece: bool) -> Vec<u8> {
    let attrs = vocabulary.attrs[id];
    let text = &vocabulary.texts[id];
    if attrs & (attr::UNKNOWN | attr::CONTROL) != 0 {
        Vec::new()
    } else if attrs & attr::USER_DEFINED != 0 {
        text.as_bytes().to_vec()
    } else if attrs & attr::NORMAL != 0 {
        if is_sentencepiece {
            text.replace('▁', " ").into_bytes()
        } else {
            unmap_bytes(text)
        }
    } else if attrs & attr::BYTE != 0 {
        // `<0xXX>`
        let byte = text
            .get(3..5)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        byte.into_iter().collect()
    } else {
        Vec::new()
    }
}

/// GPT-2's byte-level text back to bytes; a character that stands for no byte is
/// written out as llama.cpp writes it.
fn unmap_bytes(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    for c in text.chars() {
        match bpe::char_to_byte(c) {
            Some(byte) => bytes.push(byte),
            None => {
                bytes.extend_from_slice(b"[UNK_BYTE_0x");
                let mut utf8 = [0; 4];
                for byte in c.encode_utf8(&mut utf8).bytes() {
                    bytes.extend_from_slice(format!("{byte:02x}").as_bytes());
                }
                bytes.extend_from_slice(text.as_bytes());
                bytes.push(b']');
            }
        }
    }
    bytes
}

/// Typed reads of GGUF metadata.
struct Metadata<'c>(&'c HashMap<String, Value>);

impl Metadata<'_> {
    fn wrong_type(key: &'static str, expected: &'static str, value: &Value) -> TokenizerError {
        TokenizerError::WrongType {
            key,
            expected,
            found: format!("{:?}", value.value_type()),
        }
    }

    fn string(&self, key: &'static str) -> Result<Option<&str>, TokenizerError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(Self::wrong_type(key, "a string", other)),
        }
    }

    fn bool(&self, key: &'static str) -> Result<Option<bool>, TokenizerError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(*value)),
            Some(other) => Err(Self::wrong_type(key, "a bool", other)),
        }
    }

    fn u32(&self, key: &'static str) -> Result<Option<u32>, TokenizerError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(value) => integer(value)
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| Self::wrong_type(key, "an unsigned 32-bit integer", value)),
        }
    }

    fn strings(&self, key: &'static str) -> Result<Option<Vec<&str>>, TokenizerError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text.as_str()),
                    other => Err(Self::wrong_type(key, "an array of strings", other)),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(other) => Err(Self::wrong_type(key, "an array of strings", other)),
        }
    }

    /// A numeric array with at least one entry per token.
    fn numbers(
        &self,
        key: &'static str,
        tokens: usize,
    ) -> Result<Option<Vec<f64>>, TokenizerError> {
        let Some(value) = self.0.get(key) else {
            return Ok(None);
        };
        let Value::Array(items) = value else {
            return Err(Self::wrong_type(key, "a numeric array", value));
        };
        if items.len() < tokens {
            return Err(TokenizerError::TooFewEntries {
                key,
                entries: items.len(),
                tokens,
            });
        }
        items
            .iter()
            .map(|item| match item {
                Value::F32(x) => Ok(f64::from(*x)),
                Value::F64(x) => Ok(*x),
                other => integer(other)
                    .map(|n| n as f64)
                    .ok_or_else(|| Self::wrong_type(key, "a numeric array", other)),
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

fn integer(value: &Value) -> Option<i64> {
    Some(match value {
        Value::U8(n) => i64::from(*n),
        Value::I8(n) => i64::from(*n),
        Value::U16(n) => i64::from(*n),
        Value::I16(n) => i64::from(*n),
        Value::U32(n) => i64::from(*n),
        Value::I32(n) => i64::from(*n),
        Value::U64(n) => i64::try_from(*n).ok()?,
        Value::I64(n) => *n,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gguf_file::{Content, VersionedMagic};

    fn content(entries: Vec<(&str, Value)>) -> Content {
        Content {
            magic: VersionedMagic::GgufV3,
            metadata: entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            tensor_infos: HashMap::new(),
            tensor_data_offset: 0,
        }
    }

    fn strings(items: &[&str]) -> Value {
        Value::Array(
            items
                .iter()
                .map(|s| Value::String((*s).to_owned()))
                .collect(),
        )
    }

    /// A byte-level vocabulary: the 256 byte characters, then merge results and two
    /// special tokens.
    fn gpt2(pre: &str, merges: &[&str], extra: &[&str]) -> Result<Tokenizer, TokenizerError> {
        let bytes: Vec<String> = (0..=255u8)
            .map(|b| bpe::byte_to_char(b).to_string())
            .collect();
        let mut tokens: Vec<&str> = bytes.iter().map(String::as_str).collect();
        tokens.extend(extra);
        tokens.extend(["<|end|>", "<tool>"]);
        let mut types = vec![Value::I32(1); tokens.len()];
        types[tokens.len() - 2] = Value::I32(3);
        types[tokens.len() - 1] = Value::I32(4);
        Tokenizer::from_gguf(&content(vec![
            ("tokenizer.ggml.model", Value::String("gpt2".to_owned())),
            ("tokenizer.ggml.pre", Value::String(pre.to_owned())),
            ("tokenizer.ggml.tokens", strings(&tokens)),
            ("tokenizer.ggml.token_type", Value::Array(types)),
            ("tokenizer.ggml.merges", strings(merges)),
            (
                "tokenizer.ggml.eos_token_id",
                Value::U32(tokens.len() as u32 - 2),
            ),
            ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
        ]))
    }

    fn id(tokenizer: &Tokenizer, text: &str) -> u32 {
        tokenizer
            .token_id(text)
            .unwrap_or_else(|| panic!("{text:?} is a token"))
    }

    #[test]
    fn byte_level_bpe_merges_by_rank() {
        let merges = ["h e", "l l", "he ll", "hell o", "Ġ w"];
        let tokenizer = gpt2("gpt-2", &merges, &["he", "ll", "hell", "hello", "Ġw"]).unwrap();
        assert_eq!(
            tokenizer.encode("hello", false, false),
            [id(&tokenizer, "hello")]
        );
        let ids = tokenizer.encode("hello wow", false, false);
        assert_eq!(ids[..2], [id(&tokenizer, "hello"), id(&tokenizer, "Ġw")]);
        assert_eq!(tokenizer.decode(&ids), "hello wow");
        assert_eq!(tokenizer.token_bytes(id(&tokenizer, "Ġw")), b" w");
        // The same word again comes from the cache.
        assert_eq!(
            tokenizer.encode("hello", false, false),
            [id(&tokenizer, "hello")]
        );
    }

    #[test]
    fn merges_go_on_through_results_missing_from_the_vocabulary() {
        // "xy" is no token, yet "xy z" still merges into "xyz", as llama.cpp merges
        // strings; left alone, "xy" falls back to its single bytes.
        let tokenizer = gpt2("gpt-2", &["x y", "xy z"], &["xyz"]).unwrap();
        assert_eq!(
            tokenizer.encode("xyz", false, false),
            [id(&tokenizer, "xyz")]
        );
        assert_eq!(
            tokenizer.encode("xy", false, false),
            [id(&tokenizer, "x"), id(&tokenizer, "y")]
        );
    }

    #[test]
    fn control_tokens_are_parsed_on_request_and_user_defined_ones_always() {
        let tokenizer = gpt2("gpt-2", &[], &[]).unwrap();
        let end = id(&tokenizer, "<|end|>");
        let tool = id(&tokenizer, "<tool>");
        assert_eq!(tokenizer.encode("<|end|>", false, true), [end]);
        assert_ne!(tokenizer.encode("<|end|>", false, false), [end]);
        assert_eq!(tokenizer.encode("<tool>", false, false), [tool]);
        assert!(tokenizer.token_bytes(end).is_empty());
        assert_eq!(tokenizer.token_bytes(tool), b"<tool>");
        // `<|end|>` ends generation by its text, and is the EOS here too.
        assert!(tokenizer.is_end_of_generation(end));
        assert_eq!(tokenizer.eos(), Some(end));
        // gpt2 models default to llama.cpp's BOS 11 but do not add it unless told to.
        assert_eq!(tokenizer.bos(), Some(11));
        assert_eq!(
            tokenizer.encode("x", true, false),
            tokenizer.encode("x", false, false)
        );
    }

    #[test]
    fn an_unknown_pre_tokenizer_is_refused_by_name() {
        let error = gpt2("llama3", &[], &[]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`llama3`"), "{message}");
        assert!(
            message.contains("qwen2") && message.contains("smollm"),
            "{message}"
        );
        let error = gpt2("default", &[], &[]).unwrap_err();
        assert!(matches!(
            error,
            TokenizerError::UnsupportedPreTokenizer { .. }
        ));
    }

    #[test]
    fn an_unknown_model_is_refused() {
        let error = Tokenizer::from_gguf(&content(vec![(
            "tokenizer.ggml.model",
            Value::String("bert".to_owned()),
        )]))
        .unwrap_err();
        assert_eq!(
            error,
            TokenizerError::UnsupportedModel {
                model: "bert".to_owned()
            }
        );
        let error = Tokenizer::from_gguf(&content(vec![])).unwrap_err();
        assert_eq!(
            error,
            TokenizerError::MissingKey {
                key: "tokenizer.ggml.model"
            }
        );
    }

    fn sentencepiece(extra: Vec<(&str, Value)>) -> Result<Tokenizer, TokenizerError> {
        let bytes: Vec<String> = (0..=255).map(|b| format!("<0x{b:02X}>")).collect();
        let mut tokens = vec!["<unk>", "<s>", "</s>"];
        let mut types = vec![2, 3, 3];
        tokens.extend(bytes.iter().map(String::as_str));
        types.extend([6; 256]);
        let words = ["▁", "a", "b", "▁a", "ab", "▁ab"];
        tokens.extend(words);
        types.extend([1; 6]);
        let mut scores = vec![0.0f32; tokens.len() - words.len()];
        scores.extend([-1.0, -1.0, -1.0, -2.0, -3.0, -1.5]);
        let mut entries = vec![
            ("tokenizer.ggml.model", Value::String("llama".to_owned())),
            ("tokenizer.ggml.tokens", strings(&tokens)),
            (
                "tokenizer.ggml.token_type",
                Value::Array(types.into_iter().map(Value::I32).collect()),
            ),
            (
                "tokenizer.ggml.scores",
                Value::Array(scores.into_iter().map(Value::F32).collect()),
            ),
        ];
        entries.extend(extra);
        Tokenizer::from_gguf(&content(entries))
    }

    #[test]
    fn sentencepiece_merges_by_score_and_falls_back_to_bytes() {
        let tokenizer = sentencepiece(vec![]).unwrap();
        // BOS added by default, and a space prefix before the text.
        assert_eq!(
            tokenizer.encode("ab", true, false),
            [1, id(&tokenizer, "▁ab")]
        );
        assert_eq!(
            tokenizer.encode("é", false, false),
            [
                id(&tokenizer, "▁"),
                id(&tokenizer, "<0xC3>"),
                id(&tokenizer, "<0xA9>")
            ]
        );
        assert_eq!(tokenizer.decode(&tokenizer.encode("é", false, false)), " é");
        assert_eq!(tokenizer.token_bytes(id(&tokenizer, "▁ab")), b" ab");
        assert!(tokenizer.token_bytes(1).is_empty());
        assert!(tokenizer.is_end_of_generation(2));
    }

    #[test]
    fn sentencepiece_space_prefix_follows_the_metadata() {
        let tokenizer = sentencepiece(vec![(
            "tokenizer.ggml.add_space_prefix",
            Value::Bool(false),
        )])
        .unwrap();
        assert_eq!(tokenizer.encode("ab", false, false), [id(&tokenizer, "ab")]);
    }

    #[test]
    fn adding_a_bos_needs_one() {
        let error = sentencepiece(vec![("tokenizer.ggml.bos_token_id", Value::U32(1 << 20))]);
        // An out-of-range id is ignored and the default (1) stays.
        assert_eq!(error.unwrap().bos(), Some(1));
        let error = Tokenizer::from_gguf(&content(vec![
            ("tokenizer.ggml.model", Value::String("llama".to_owned())),
            ("tokenizer.ggml.tokens", strings(&["<unk>"])),
        ]))
        .unwrap_err();
        assert_eq!(
            error,
            TokenizerError::MissingSpecialToken {
                add_key: "tokenizer.ggml.add_bos_token",
                id_key: "tokenizer.ggml.bos_token_id"
            }
        );
    }

    #[test]
    fn wrong_metadata_types_name_the_key() {
        let error =
            sentencepiece(vec![("tokenizer.ggml.add_bos_token", Value::U32(1))]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "GGUF metadata `tokenizer.ggml.add_bos_token` is U32, expected a bool"
        );
    }
}
