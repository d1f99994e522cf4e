use std::pin::Pin;

use ao_types::TokenUsage;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::BackendError;

/// One message of a chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text, or the list of content parts the OpenAI API allows.
    #[serde(default)]
    pub content: Value,
    /// Any other field (`name`, `tool_calls`, ...), passed through untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatMessage {
    /// A message of `role` with text `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: Value::String(content.into()),
            extra: Map::new(),
        }
    }

    /// The message's text: the string content, or the text parts joined.
    pub fn text(&self) -> String {
        match &self.content {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// An OpenAI-compatible chat completion request.
///
/// The fields a gateway must understand are typed; everything else (`tools`, `temperature`,
/// `response_format`, ...) is kept in `extra` and sent on unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model the client asked for. The backend that serves the request replaces it with its
    /// own model.
    #[serde(default)]
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// The most output tokens (`max_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// The most output tokens (`max_completion_tokens`, the newer name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// Whether to stream the reply as server-sent events.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Every other field, passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// A request with `messages` and nothing else.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            model: String::new(),
            messages,
            max_tokens: None,
            max_completion_tokens: None,
            stream: false,
            extra: Map::new(),
        }
    }

    /// Sets `max_tokens`.
    pub fn with_max_tokens(mut self, tokens: u64) -> Self {
        self.max_tokens = Some(tokens);
        self
    }

    /// The request's output token limit, if it has one.
    pub fn output_limit(&self) -> Option<u64> {
        match (self.max_tokens, self.max_completion_tokens) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// An estimate of the prompt's tokens: one per four bytes of text, plus four per message.
    pub fn estimated_input_tokens(&self) -> u64 {
        self.messages
            .iter()
            .map(|m| estimate_tokens(&m.text()).saturating_add(4))
            .fold(0u64, u64::saturating_add)
    }
}

/// An estimate of the tokens in `text`: one per four bytes, rounded up. Used only where a backend
/// reported nothing, so that spent tokens are never recorded as zero.
pub fn estimate_tokens(text: &str) -> u64 {
    u64::try_from(text.len()).unwrap_or(u64::MAX).div_ceil(4)
}

/// A complete reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The reply as the backend sent it (an OpenAI `chat.completion` object).
    pub body: Value,
    /// The assistant's text.
    pub content: String,
    /// The tokens the backend reported.
    pub usage: TokenUsage,
    /// The model that answered.
    pub model: String,
    /// The reply exactly as the backend's bytes carried it, to pass on without writing it again.
    pub raw: bytes::Bytes,
    /// What the backend billed for this reply, in whole sats rounded up, when it bills per call
    /// rather than per token (a data vending machine paid over Lightning): the call is charged
    /// this instead of its tokens at the backend's prices. `None` for backends billed per token.
    pub billed_sats: Option<u64>,
}

impl ChatResponse {
    /// Reads an OpenAI `chat.completion` body. A body without `choices` or `usage` is malformed:
    /// a reply whose cost cannot be read is an error, not a free reply.
    pub(crate) fn from_body(
        raw: bytes::Bytes,
        body: Value,
        provider: &str,
    ) -> Result<Self, BackendError> {
        let malformed = |reason: &str| BackendError::Malformed {
            provider: provider.to_owned(),
            reason: reason.to_owned(),
        };
        let choice = body
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .ok_or_else(|| malformed("the reply has no `choices`"))?;
        let content = choice
            .get("message")
            .and_then(|m| m.get("content"))
            .map(|c| c.as_str().map(str::to_owned).unwrap_or_default())
            .ok_or_else(|| malformed("the first choice has no `message.content`"))?;
        let usage = parse_usage(body.get("usage"))
            .ok_or_else(|| malformed("the reply has no `usage` with token counts"))?;
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            body,
            content,
            usage,
            model,
            raw,
            billed_sats: None,
        })
    }

    /// A reply written here in the OpenAI `chat.completion` shape, for a backend that does not
    /// speak the OpenAI API (a data vending machine): one choice with the assistant's `content`,
    /// `usage` as given, created at `created` (Unix seconds), and `billed_sats` what the call
    /// cost when it is billed per call.
    pub fn assistant(
        id: &str,
        created: u64,
        model: &str,
        content: &str,
        usage: TokenUsage,
        billed_sats: Option<u64>,
    ) -> Self {
        let body = serde_json::json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": content },
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.total(),
            },
        });
        let raw = bytes::Bytes::from(body.to_string());
        Self {
            body,
            content: content.to_owned(),
            usage,
            model: model.to_owned(),
            raw,
            billed_sats,
        }
    }
}

/// Reads an OpenAI `usage` object.
pub(crate) fn parse_usage(usage: Option<&Value>) -> Option<TokenUsage> {
    let usage = usage?;
    let input = usage.get("prompt_tokens")?.as_u64()?;
    let output = usage.get("completion_tokens")?.as_u64()?;
    Some(TokenUsage::new(input, output))
}

/// One event of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamChunk {
    /// The chunk as the backend sent it (an OpenAI `chat.completion.chunk` object).
    pub data: Value,
    /// The text this chunk adds.
    pub delta: String,
    /// The usage, on the final chunk when the backend reports it.
    pub usage: Option<TokenUsage>,
}

/// A streamed reply: chunks until the backend's `[DONE]`. A stream cut off before `[DONE]` ends
/// with [`BackendError::Truncated`].
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<StreamChunk, BackendError>> + Send>>;
