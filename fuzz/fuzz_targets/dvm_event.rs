//! What a data vending machine sends over the relays: job feedback (kind 7000), results (kind
//! 6050) and the BOLT11 invoice of a payment request, read strictly — an answer or an error, never
//! a panic. Events arrive as JSON (mostly stopped at the signature check), and the input is also
//! read as `[kind, tags, content]` signed by a fixed key, so the fuzzer reaches the tag parsing.
#![no_main]

use std::sync::OnceLock;

use ao_dvm::decode_invoice;
use ao_dvm::nip90::{Feedback, JobRequest, JobResult};
use libfuzzer_sys::fuzz_target;
use nostr::{Event, EventBuilder, EventId, JsonUtil, Keys, Kind, Tag};

/// The job every answer is read against: the one named by an all-zero id.
fn job() -> EventId {
    EventId::all_zeros()
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        Keys::parse("0000000000000000000000000000000000000000000000000000000000000001")
            .expect("a valid secret key")
    })
}

fn read(event: &Event) {
    let _ = JobRequest::from_event(event);
    let _ = Feedback::from_event(event, &job());
    let _ = JobResult::from_event(event, &job(), 6050);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(event) = Event::from_json(text) {
        read(&event);
    }
    if let Ok((kind, tags, content)) = serde_json::from_str::<(u16, Vec<Vec<String>>, String)>(text)
    {
        let tags = tags.into_iter().filter_map(|t| Tag::parse(t).ok());
        if let Ok(event) = EventBuilder::new(Kind::Custom(kind), content)
            .tags(tags)
            .sign_with_keys(keys())
        {
            read(&event);
        }
    }
    let _ = decode_invoice(text);
});
