//! The estimate reserved before a call: an upper bound on what a provider can bill for it.
//!
//! Every billable part of a request counts: message text and content-part arrays, `name`, tool
//! calls (names and arguments), tool results, tool and function definitions, `response_format`
//! and every other field sent on. Text is bounded by its UTF-8 length: every tokenizer the
//! configured backends use (byte-level BPE such as OpenAI's `cl100k`/`o200k` and GPT-OSS's
//! `o200k_harmony`, Llama 3 and Mistral's Tekken; SentencePiece with byte fallback) turns a text
//! of `b` bytes into at most `b` tokens, plus one for SentencePiece's leading space. So the bound
//! holds for every backend whatever its tokenizer, CJK and emoji included (3 and 4 bytes a
//! character). It over-counts English about fourfold; settlement charges what the provider
//! reports, so the excess is only held while the call runs.
//!
//! Images are priced per image at the backend's `image_tokens`; audio and file parts cannot be
//! bounded before the call, and are refused.

use serde_json::{Map, Value};

use super::chat::{ChatMessage, ChatRequest};

/// Tokens a chat format adds around each message (role markers, separators): OpenAI documents 3
/// or 4, the harmony and Llama 3 formats 4 to 5.
pub const MESSAGE_OVERHEAD: u64 = 8;
/// Tokens a chat format adds once per request (the reply's priming).
pub const REQUEST_OVERHEAD: u64 = 8;
/// Tokens a provider adds around each tool definition and tool call, beyond its own text.
pub const TOOL_OVERHEAD: u64 = 16;
/// The image price assumed where a backend sets none: above the high-detail price of OpenAI's
/// GPT-4o (1,445 tokens for the largest image) and of the patch-priced GPT-4.1 and o-series
/// models (at most 1,536 patches times their multiplier, under 3,800).
pub const DEFAULT_IMAGE_TOKENS: u64 = 4_000;
/// The most choices (`n`) a request may ask for where the configuration sets no other maximum.
pub const DEFAULT_MAX_CHOICES: u64 = 8;

/// Why a request cannot be estimated, and so cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EstimateError {
    /// `n` is not a whole number between 1 and the maximum.
    #[error("`n` must be a whole number from 1 to {max}; got {found}")]
    BadChoices {
        /// What the request held.
        found: String,
        /// The most allowed.
        max: u64,
    },
    /// A content part whose cost cannot be bounded before the call (audio, files, or a type
    /// this gateway does not know).
    #[error("content parts of type `{kind}` cannot be priced before the call and are refused")]
    UnpricedPart {
        /// The part's `type`.
        kind: String,
    },
    /// A request field that makes a provider bill beyond tokens (audio output, predicted
    /// outputs, web searches).
    #[error("the field `{field}` makes a provider bill beyond tokens and is refused")]
    UnpricedField {
        /// The field.
        field: String,
    },
    /// A message's content is neither text, a list of parts nor absent.
    #[error("message {index} has content that is neither text nor a list of content parts")]
    BadContent {
        /// The message's position, from 0.
        index: usize,
    },
}

/// The input side of an estimate: text tokens (the same on every backend) and images (priced
/// per backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputEstimate {
    /// An upper bound on the tokens of everything but images.
    pub text_tokens: u64,
    /// The images in the request.
    pub images: u64,
}

impl InputEstimate {
    /// The input tokens on a backend that prices an image at `image_tokens`.
    pub fn tokens(&self, image_tokens: u64) -> u64 {
        self.text_tokens
            .saturating_add(self.images.saturating_mul(image_tokens))
    }
}

/// The upper bound on tokens of `text`: its UTF-8 length, plus one.
pub fn text_bound(text: &str) -> u64 {
    u64::try_from(text.len())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// The choices (`n`) `request` asks for: 1 when absent, an error unless it is a whole number
/// from 1 to `max`.
pub fn choices(request: &ChatRequest, max: u64) -> Result<u64, EstimateError> {
    match request.extra.get("n") {
        None | Some(Value::Null) => Ok(1),
        Some(value) => match value.as_u64() {
            Some(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(EstimateError::BadChoices {
                found: value.to_string(),
                max,
            }),
        },
    }
}

/// An upper bound on the input tokens of `request`.
pub fn estimate_input(request: &ChatRequest) -> Result<InputEstimate, EstimateError> {
    let mut estimate = InputEstimate {
        text_tokens: REQUEST_OVERHEAD,
        images: 0,
    };
    for (index, message) in request.messages.iter().enumerate() {
        add_message(&mut estimate, index, message)?;
    }
    add_fields(&mut estimate, &request.extra)?;
    Ok(estimate)
}

fn add(estimate: &mut InputEstimate, tokens: u64) {
    estimate.text_tokens = estimate.text_tokens.saturating_add(tokens);
}

fn add_message(
    estimate: &mut InputEstimate,
    index: usize,
    message: &ChatMessage,
) -> Result<(), EstimateError> {
    add(estimate, MESSAGE_OVERHEAD);
    add(estimate, text_bound(&message.role));
    match &message.content {
        Value::Null => {}
        Value::String(text) => add(estimate, text_bound(text)),
        Value::Array(parts) => {
            for part in parts {
                add_part(estimate, part)?;
            }
        }
        _ => return Err(EstimateError::BadContent { index }),
    }
    // `name`, `tool_calls` (names and arguments), `tool_call_id`, `function_call`, and anything
    // else on the message: all of it reaches the model.
    for (key, value) in &message.extra {
        if key == "tool_calls"
            && let Value::Array(calls) = value
        {
            add(
                estimate,
                TOOL_OVERHEAD.saturating_mul(u64::try_from(calls.len()).unwrap_or(u64::MAX)),
            );
        }
        add(estimate, text_bound(key));
        add(estimate, json_bound(value));
    }
    Ok(())
}

/// One content part: text by its length, an image at the backend's price, anything that cannot
/// be bounded refused.
fn add_part(estimate: &mut InputEstimate, part: &Value) -> Result<(), EstimateError> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "text" | "refusal" => {
            add(estimate, MESSAGE_OVERHEAD);
            add(estimate, json_bound(part));
        }
        "image_url" | "image" => {
            estimate.images = estimate.images.saturating_add(1);
            add(estimate, MESSAGE_OVERHEAD);
        }
        other => {
            return Err(EstimateError::UnpricedPart {
                kind: if other.is_empty() {
                    "(none)".to_owned()
                } else {
                    other.to_owned()
                },
            });
        }
    }
    Ok(())
}

/// Request fields that make a provider bill beyond the input and output tokens (audio output,
/// predicted outputs, web searches), which cannot be bounded here.
const UNPRICED_FIELDS: [&str; 4] = ["audio", "modalities", "prediction", "web_search_options"];

/// The request's other fields: tools, functions, `response_format`, and everything else sent on,
/// by the length of their JSON, with an overhead per tool.
fn add_fields(
    estimate: &mut InputEstimate,
    extra: &Map<String, Value>,
) -> Result<(), EstimateError> {
    for (key, value) in extra {
        if UNPRICED_FIELDS.contains(&key.as_str()) && !value.is_null() {
            // `modalities: ["text"]` asks for nothing extra.
            let text_only = key == "modalities"
                && value
                    .as_array()
                    .is_some_and(|m| m.iter().all(|x| x.as_str() == Some("text")));
            if !text_only {
                return Err(EstimateError::UnpricedField { field: key.clone() });
            }
        }
        if matches!(
            key.as_str(),
            "n" | "stream_options" | "temperature" | "top_p" | "seed"
        ) {
            continue;
        }
        if matches!(key.as_str(), "tools" | "functions")
            && let Value::Array(tools) = value
        {
            add(
                estimate,
                TOOL_OVERHEAD.saturating_mul(u64::try_from(tools.len()).unwrap_or(u64::MAX)),
            );
        }
        add(estimate, text_bound(key));
        add(estimate, json_bound(value));
    }
    Ok(())
}

/// The bound on a JSON value's tokens: the length of its serialization (which holds every
/// string it contains, escaped, so never shorter than them), counted without building it.
fn json_bound(value: &Value) -> u64 {
    match value {
        Value::String(text) => text_bound(text),
        other => {
            let mut counter = ByteCounter(0);
            // Writing to a counter cannot fail; a value that could not be written counts as
            // its debug form instead, never as nothing.
            if serde_json::to_writer(&mut counter, other).is_err() {
                return text_bound(&format!("{other:?}"));
            }
            counter.0.saturating_add(1)
        }
    }
}

/// Counts the bytes written to it, keeping none.
struct ByteCounter(u64);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self
            .0
            .saturating_add(u64::try_from(buf.len()).unwrap_or(u64::MAX));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
