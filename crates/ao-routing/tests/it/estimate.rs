//! The estimate is an upper bound on billed input: checked against real tokenizers (OpenAI's
//! `cl100k_base` and `o200k_base`, from the tables tiktoken ships) with OpenAI's documented chat
//! overhead, over random message shapes with ASCII, CJK, emoji and combining text.

use std::sync::LazyLock;

use ao_routing::http::{
    ChatMessage, ChatRequest, EstimateError, choices, estimate_input, text_bound,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use tiktoken_rs::CoreBPE;

static TOKENIZERS: LazyLock<[CoreBPE; 2]> = LazyLock::new(|| {
    [
        tiktoken_rs::cl100k_base().unwrap(),
        tiktoken_rs::o200k_base().unwrap(),
    ]
});

/// What OpenAI bills for the text of `request` under `bpe`: every string the model sees,
/// tokenized, plus the cookbook's overhead (3 per message, 1 per name, 3 to prime the reply).
fn reference_count(bpe: &CoreBPE, request: &ChatRequest) -> u64 {
    let count = |text: &str| bpe.encode_with_special_tokens(text).len() as u64;
    let mut total = 3;
    for message in &request.messages {
        total += 3 + count(&message.role);
        match &message.content {
            Value::String(text) => total += count(text),
            Value::Array(parts) => {
                for part in parts {
                    total += count(part["text"].as_str().unwrap_or_default());
                }
            }
            _ => {}
        }
        if let Some(name) = message.extra.get("name").and_then(Value::as_str) {
            total += 1 + count(name);
        }
        if let Some(calls) = message.extra.get("tool_calls").and_then(Value::as_array) {
            for call in calls {
                total += count(call["function"]["name"].as_str().unwrap_or_default());
                total += count(call["function"]["arguments"].as_str().unwrap_or_default());
                total += 6;
            }
        }
    }
    for key in ["tools", "response_format"] {
        if let Some(value) = request.extra.get(key) {
            // OpenAI renders definitions into a compact text; the JSON holds every word of it.
            total += count(&value.to_string());
        }
    }
    total
}

/// Text with what tokenizers find hardest: CJK, emoji (with joiners and skin tones), combining
/// marks, digits and punctuation, beside plain ASCII.
fn text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "hello ",
        "the quick brown fox ",
        "注意",
        "予算を守る",
        "인공지능",
        "👩‍👩‍👧‍👦",
        "👍🏽",
        "🏳️‍🌈",
        "e\u{301}\u{302}",
        "12345678901234567890",
        "{\"a\": [1, 2, 3]}",
        "\n\t  ",
        "ـــــ",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "<|endoftext|>",
    ]);
    (
        prop::collection::vec(pieces, 0..40),
        "[ -~]{0,40}",
        "\\PC{0,20}",
    )
        .prop_map(|(pieces, ascii, any)| format!("{}{ascii}{any}", pieces.concat()))
}

fn message() -> impl Strategy<Value = ChatMessage> {
    (
        prop::sample::select(vec!["system", "user", "assistant", "tool"]),
        text(),
        prop::option::of("[a-z_]{1,12}"),
        prop::option::of(prop::collection::vec((text(), text()), 1..3)),
        any::<bool>(),
    )
        .prop_map(|(role, body, name, calls, as_parts)| {
            let mut message = ChatMessage::new(role, body.clone());
            if as_parts {
                message.content = json!([{"type": "text", "text": body}, {"type": "text", "text": "and more"}]);
            }
            if let Some(name) = name {
                message.extra.insert("name".into(), json!(name));
            }
            if let Some(calls) = calls {
                let calls: Vec<Value> = calls
                    .into_iter()
                    .map(|(name, args)| json!({"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}))
                    .collect();
                message.extra.insert("tool_calls".into(), Value::Array(calls));
            }
            message
        })
}

fn request() -> impl Strategy<Value = ChatRequest> {
    (
        prop::collection::vec(message(), 1..6),
        prop::option::of(text()),
        prop::option::of(text()),
    )
        .prop_map(|(messages, tool_description, schema_word)| {
            let mut request = ChatRequest::new(messages);
            if let Some(description) = tool_description {
                request.extra.insert(
                    "tools".into(),
                    json!([{"type": "function", "function": {"name": "lookup", "description": description, "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]),
                );
            }
            if let Some(word) = schema_word {
                request.extra.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object", "description": word}}}),
                );
            }
            request
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_estimate_bounds_what_real_tokenizers_count(request in request()) {
        let estimate = estimate_input(&request).unwrap();
        for bpe in TOKENIZERS.iter() {
            let billed = reference_count(bpe, &request);
            prop_assert!(
                estimate.tokens(0) >= billed,
                "estimated {} < billed {billed}", estimate.tokens(0)
            );
        }
    }

    #[test]
    fn text_is_bounded_by_its_bytes_for_every_tokenizer(text in text()) {
        for bpe in TOKENIZERS.iter() {
            let tokens = bpe.encode_with_special_tokens(&text).len() as u64;
            prop_assert!(text_bound(&text) >= tokens);
        }
    }
}

#[test]
fn cjk_and_emoji_count_more_than_a_quarter_of_their_bytes() {
    // The old rule (a token per four bytes) under-counted these: a CJK character is 3 bytes and
    // often a whole token.
    let text = "予算を守る".repeat(50) + &"👩‍👩‍👧‍👦".repeat(20);
    let request = ChatRequest::new(vec![ChatMessage::new("user", text.clone())]);
    let estimate = estimate_input(&request).unwrap().tokens(0);
    for bpe in TOKENIZERS.iter() {
        let tokens = bpe.encode_with_special_tokens(&text).len() as u64;
        assert!(
            tokens > text.len() as u64 / 4,
            "the old rule would under-count"
        );
        assert!(estimate >= tokens);
    }
}

#[test]
fn tool_call_arguments_count_like_content() {
    let big = "x ".repeat(5_000);
    let mut message = ChatMessage::new("assistant", "");
    message.extra.insert(
        "tool_calls".into(),
        json!([{"id": "c", "type": "function", "function": {"name": "f", "arguments": big}}]),
    );
    let estimate = estimate_input(&ChatRequest::new(vec![message])).unwrap();
    assert!(estimate.tokens(0) >= 10_000);
}

#[test]
fn images_are_priced_per_backend_and_their_bytes_do_not_count() {
    let mut message = ChatMessage::new("user", "");
    let image = format!("data:image/png;base64,{}", "A".repeat(100_000));
    message.content = json!([
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": image}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}},
    ]);
    let estimate = estimate_input(&ChatRequest::new(vec![message])).unwrap();
    assert_eq!(estimate.images, 2);
    assert!(estimate.text_tokens < 200);
    assert_eq!(estimate.tokens(1_000) - estimate.tokens(0), 2_000);
}

#[test]
fn audio_and_file_parts_are_refused() {
    for kind in ["input_audio", "file", "video", ""] {
        let mut message = ChatMessage::new("user", "");
        message.content = json!([{"type": kind, "data": "..."}]);
        let error = estimate_input(&ChatRequest::new(vec![message])).unwrap_err();
        assert!(
            matches!(error, EstimateError::UnpricedPart { .. }),
            "{kind}: {error}"
        );
    }
}

#[test]
fn fields_billed_beyond_tokens_are_refused_but_text_modalities_pass() {
    for (field, value) in [
        ("audio", json!({"voice": "alloy", "format": "wav"})),
        ("modalities", json!(["text", "audio"])),
        ("prediction", json!({"type": "content", "content": "x"})),
        ("web_search_options", json!({})),
    ] {
        let mut request = ChatRequest::new(vec![ChatMessage::new("user", "hi")]);
        request.extra.insert(field.into(), value);
        let error = estimate_input(&request).unwrap_err();
        assert!(
            matches!(error, EstimateError::UnpricedField { .. }),
            "{field}"
        );
    }
    let mut request = ChatRequest::new(vec![ChatMessage::new("user", "hi")]);
    request.extra.insert("modalities".into(), json!(["text"]));
    assert!(estimate_input(&request).is_ok());
}

#[test]
fn n_must_be_a_whole_number_within_the_maximum() {
    let with = |n: Value| {
        let mut request = ChatRequest::new(vec![ChatMessage::new("user", "hi")]);
        request.extra.insert("n".into(), n);
        choices(&request, 8)
    };
    assert_eq!(with(Value::Null), Ok(1));
    assert_eq!(with(json!(3)), Ok(3));
    assert_eq!(with(json!(8)), Ok(8));
    for bad in [
        json!(0),
        json!(9),
        json!(-1),
        json!(2.0),
        json!(2.5),
        json!("2"),
        json!([2]),
        json!(true),
    ] {
        assert!(
            matches!(with(bad.clone()), Err(EstimateError::BadChoices { .. })),
            "{bad}"
        );
    }
    assert_eq!(choices(&ChatRequest::new(vec![]), 8), Ok(1));
}
