//! Multi-backend routing: which AI backend serves which agent, and what a call costs there.
//!
//! - [`BackendConfig`] is one backend: its provider, model, endpoint, prices in sats per 1,000
//!   tokens, and whether it is enabled. [`BackendConfig::calculate_cost`] prices a call, rounding
//!   **up** to whole sats so that no non-zero usage is ever free; [`BackendConfig::calculate_cost_msats`]
//!   gives the exact figure.
//! - [`MultiBackendRouter`] maps agents to providers, with a default provider for unmapped agents,
//!   and gives each agent its backend ([`MultiBackendRouter::get_backend`]) and the ordered list of
//!   backends to try when one fails ([`MultiBackendRouter::fallback_chain`]).
//!
// Plain names, not links, for what is behind `http`: the docs must build without the feature.
//! With the feature `http` (off by default), the `http` module talks to the backends: the
//! `http::Backend` trait, one OpenAI-compatible client (`http::OpenAiBackend`) for the OpenAI,
//! Codex, GPT-OSS and Local (Ollama) providers with timeouts, retries, `Retry-After`, cooldown and
//! streaming, and `http::BackendPool`, which walks an agent's fallback chain. Without the feature
//! the crate is the pure routing table and price list, with no I/O and few dependencies.
//!
//! What it is **not** for: deciding whether a call may be paid for. Budgets and approvals are the
//! jobs of other layers.

#![forbid(unsafe_code)]

mod backend;
#[cfg(feature = "http")]
pub mod http;
mod router;

pub use ao_types::BackendProvider;
pub use backend::BackendConfig;
pub use router::{MultiBackendRouter, RoutingError};

#[cfg(test)]
mod tests;
