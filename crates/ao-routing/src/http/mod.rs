//! Real backends over HTTP: one OpenAI-compatible client for every provider that speaks the
//! OpenAI chat completions API, and a pool that falls back along an agent's chain.

mod chat;
mod client;
mod error;
mod estimate;
mod pool;
pub mod sse;

pub use chat::{ChatMessage, ChatRequest, ChatResponse, ChatStream, StreamChunk, estimate_tokens};
pub use client::{Backend, ClientOptions, OpenAiBackend, RetryPolicy, SecretString};
pub use error::BackendError;
pub use estimate::{
    DEFAULT_IMAGE_TOKENS, DEFAULT_MAX_CHOICES, EstimateError, InputEstimate, MESSAGE_OVERHEAD,
    REQUEST_OVERHEAD, TOOL_OVERHEAD, choices, estimate_input, text_bound,
};
pub use pool::{Answered, Attempt, AttemptGate, BackendPool, FallbackError, Ungated};
