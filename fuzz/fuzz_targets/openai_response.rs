//! The reading of OpenAI-compatible response bodies, as the `openai` backend reads them:
//! scoring with log-probabilities (completions and chat shapes), parsed-mode votes,
//! generations, `/models` listings, error bodies and the retry headers.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use rlaif::backend::Scored;
use rlaif::backend::openai;
use rlaif::backend::retry;

fuzz_target!(|data: &[u8]| {
    // Error bodies are read as text whatever they hold.
    let text = String::from_utf8_lossy(data);
    let message = openai::truncate(&openai::error_message(&text), 300);
    assert!(message.chars().count() <= 301, "truncate keeps the limit");
    let _ = retry::retryable_status(429, &text);
    let _ = retry::is_insufficient_quota(&text);
    let _ = retry::parse_retry_after(
        &text,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    );
    let _ = retry::parse_retry_after_ms(&text);

    let Ok(response) = openai::parse_body(data) else {
        return;
    };
    if let Ok(scoring) = openai::read_logprobs(&response) {
        let Scored::Logprobs { top } = scoring.scored else {
            panic!("log-prob scoring gave votes");
        };
        assert!(!top.is_empty(), "scoring has alternatives");
        assert!(
            top.windows(2)
                .all(|pair| pair[0].1.total_cmp(&pair[1].1).is_ge()),
            "alternatives are most probable first"
        );
    }
    for n in [1, 3, u32::MAX] {
        if let Ok((votes, _usage)) = openai::read_votes(&response, n) {
            assert!(votes.total() <= n, "no more votes than asked for");
        }
    }
    let _ = openai::read_generation(&response);
    let _ = openai::served_models(&response);
});
