//! Real backends over HTTP: one OpenAI-compatible client for every provider that speaks the
//! OpenAI chat completions API, and a pool that falls back along an agent's chain.

mod chat;
mod client;
mod error;
mod pool;
mod sse;

pub use chat::{ChatMessage, ChatRequest, ChatResponse, ChatStream, StreamChunk, estimate_tokens};
pub use client::{Backend, ClientOptions, OpenAiBackend, SecretString};
pub use error::BackendError;
pub use pool::{Attempt, BackendPool, FallbackError};
