//! The HH-RLHF loader on arbitrary bytes: gzip input (by its magic bytes) is loaded as a
//! `.jsonl.gz` file, anything else as plain `.jsonl`, and both names are tried on gzip so
//! that plain reading of binary bytes is covered too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rlaif::data::DataFormat;

mod common;

fuzz_target!(|data: &[u8]| {
    if data.starts_with(&[0x1f, 0x8b]) {
        common::load(DataFormat::HhRlhf, "fuzz.jsonl.gz", data);
    }
    common::load(DataFormat::HhRlhf, "fuzz.jsonl", data);
});
