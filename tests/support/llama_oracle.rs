//! llama.cpp's own tokenizer as the reference: `llama_oracle.py` beside this file, run
//! with llama-cpp-python on one model's vocabulary and asked over JSON lines.
//!
//! llama-cpp-python is installed on first use as the llama.cpp server tests install it;
//! an oracle that cannot start fails the test with its reason.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

/// llama.cpp's two CPU attention kernels. Its answers differ between them (f16
/// accumulation in the flash kernel, f16 attention weights in the default one) by up to
/// about 0.3 nats on ~600-token prompts for the small models here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attention {
    /// What llama-cpp-python's `Llama` uses unless told otherwise.
    Default,
    Flash,
}

/// llama.cpp's log-probability of one token with each of its attention kernels.
#[derive(Clone, Copy, Debug)]
pub struct KernelAnswers {
    pub default: f64,
    pub flash: f64,
}

impl KernelAnswers {
    /// How far `ours` is from the nearer of llama.cpp's two answers.
    pub fn gap(&self, ours: f64) -> f64 {
        (ours - self.default).abs().min((ours - self.flash).abs())
    }

    pub fn disagreement(&self) -> f64 {
        (self.default - self.flash).abs()
    }
}

/// A running oracle for one model; stopped when dropped.
#[derive(Debug)]
pub struct LlamaOracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl LlamaOracle {
    /// Installs llama-cpp-python if needed and starts the oracle on `model`.
    pub fn start(model: &Path) -> LlamaOracle {
        crate::llama_server::ensure_llama_cpp_python(model);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/llama_oracle.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(model)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start python3 {}: {error}", script.display()));
        let stdin = child.stdin.take().expect("the oracle's stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("the oracle's stdout is piped"));
        LlamaOracle {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends one request and returns its answer; panics on an `error` answer.
    pub fn ask(&mut self, request: &Value) -> Value {
        writeln!(self.stdin, "{request}").expect("the oracle reads its requests");
        self.stdin.flush().expect("the oracle reads its requests");
        let mut line = String::new();
        let read = self
            .stdout
            .read_line(&mut line)
            .expect("the oracle answers");
        assert!(read > 0, "the oracle exited before answering {request}");
        let answer: Value = serde_json::from_str(&line).expect("the oracle answers JSON");
        if let Some(error) = answer.get("error") {
            panic!("the oracle failed on {request}: {error}");
        }
        answer
    }

    /// llama.cpp's `llama_tokenize(text, add_special, parse_special)`.
    pub fn tokenize(&mut self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let answer = self.ask(&json!({
            "op": "tokenize", "text": text, "add_bos": add_special, "special": parse_special,
        }));
        serde_json::from_value(answer["tokens"].clone()).expect("token ids")
    }

    /// Natural-log probabilities of `ids` as the token after `tokens`.
    /// One user message as llama-cpp-python's chat completions see it: the text the
    /// GGUF's chat template renders, and its tokens.
    pub fn chat(&mut self, content: &str) -> (String, Vec<u32>) {
        let answer = self.ask(&json!({ "op": "chat", "content": content }));
        let text = answer["text"].as_str().expect("rendered text").to_owned();
        let tokens = serde_json::from_value(answer["tokens"].clone()).expect("token ids");
        (text, tokens)
    }

    /// Log-probabilities of `ids` after `tokens`, with each attention kernel.
    pub fn logprobs_by_kernel(&mut self, tokens: &[u32], ids: &[u32]) -> Vec<KernelAnswers> {
        let default = self.logprobs(tokens, ids, Attention::Default);
        let flash = self.logprobs(tokens, ids, Attention::Flash);
        default
            .into_iter()
            .zip(flash)
            .map(|(default, flash)| KernelAnswers { default, flash })
            .collect()
    }

    /// Log-probabilities of `ids` after `tokens`, from the model run with `kernel`.
    pub fn logprobs(&mut self, tokens: &[u32], ids: &[u32], kernel: Attention) -> Vec<f64> {
        let flash_attn = kernel == Attention::Flash;
        let answer = self.ask(
            &json!({"op": "logprobs", "tokens": tokens, "ids": ids, "flash_attn": flash_attn}),
        );
        answer["logprobs"]
            .as_array()
            .expect("logprobs is an array")
            .iter()
            .map(|value| value.as_f64().expect("a number"))
            .collect()
    }

    /// llama.cpp's `llama_detokenize` without special tokens, as bytes.
    pub fn detokenize(&mut self, tokens: &[u32]) -> Vec<u8> {
        let answer = self.ask(&json!({ "op": "detokenize", "tokens": tokens }));
        hex(answer["hex"].as_str().expect("hex bytes"))
    }

    /// The bytes of every token of the vocabulary, without special tokens.
    pub fn pieces(&mut self) -> Vec<Vec<u8>> {
        let answer = self.ask(&json!({ "op": "pieces" }));
        let pieces = answer["hex"].as_array().expect("one piece per token");
        pieces
            .iter()
            .map(|piece| hex(piece.as_str().expect("hex bytes")))
            .collect()
    }

    /// Every token at which llama.cpp ends generation.
    pub fn end_of_generation(&mut self) -> Vec<u32> {
        let answer = self.ask(&json!({ "op": "end_of_generation" }));
        serde_json::from_value(answer["tokens"].clone()).expect("token ids")
    }
}

impl Drop for LlamaOracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}
