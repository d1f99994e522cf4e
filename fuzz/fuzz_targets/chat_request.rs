//! A chat request from the agent, as the gateway parses and estimates it: never a panic, and the
//! estimate never below the bytes of the text it carries.
#![no_main]

use ao_routing::http::{ChatRequest, choices, estimate_input};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ChatRequest>(data) else {
        return;
    };
    let _ = choices(&request, 8);
    let Ok(estimate) = estimate_input(&request) else {
        return;
    };
    let text: usize = request
        .messages
        .iter()
        .map(|m| match &m.content {
            Value::String(s) => s.len(),
            _ => 0,
        })
        .sum();
    assert!(
        estimate.tokens(0) >= text as u64,
        "estimate below the text's bytes"
    );
});
