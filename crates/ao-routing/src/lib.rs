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
//! What it is **not** for: sending requests, or deciding whether a call may be paid for. This crate
//! is the pure routing table and price list; talking to backends and enforcing budgets are the jobs
//! of other layers. It does no I/O.

#![forbid(unsafe_code)]

mod backend;
mod router;

pub use ao_types::BackendProvider;
pub use backend::BackendConfig;
pub use router::{MultiBackendRouter, RoutingError};

#[cfg(test)]
mod tests;
