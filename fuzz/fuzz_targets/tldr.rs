//! The tldr loader on arbitrary bytes (as a plain `.jsonl` file).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rlaif::data::DataFormat;

mod common;

fuzz_target!(|data: &[u8]| {
    common::load(DataFormat::Tldr, "fuzz.jsonl", data);
});
