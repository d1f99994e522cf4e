//! A backend's server-sent events, split however the network splits them: the parser yields
//! events or refuses an endless one, never panics, and never holds more than its limit.
#![no_main]

use ao_routing::http::sse::{MAX_EVENT_BYTES, SseParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut parser = SseParser::default();
    for chunk in rest.chunks(usize::from(split).max(1)) {
        if parser.feed(chunk).is_err() {
            return;
        }
        assert!(parser.pending_bytes() <= MAX_EVENT_BYTES);
    }
});
