//! Shared core types of agent-orchestrator.
//!
//! This crate is the bottom of the workspace: every other crate depends on it, and it depends on
//! nothing of ours. It holds the vocabulary the layers above share:
//!
//! - [`BackendProvider`]: which kind of AI backend serves a request.
//! - [`TokenUsage`]: the tokens a backend reports for one call.
//! - [`Msats`] and the checked money helpers: costs are exact integers, never floats.
//! - [`Clock`], [`SystemClock`] and [`TestClock`]: every rule that depends on time reads it through a
//!   clock, so midnight and expiry are tested rather than hoped for.
//! - [`AgentName`]: a validated agent name, so the checks live in one place.
//! - [`Report`]: an error and its causes on one line, for whoever shows an error to a person.
//!
//! What it is **not** for: I/O, cryptography, persistence or policy. Nothing here talks to a network,
//! a disk or a key; the rules that use these types (budgets, routing, approvals) live in their own
//! crates.
//!
//! # Error conventions
//!
//! Every crate of the workspace follows the same conventions, which this crate's own errors show:
//! one `thiserror` enum per crate or operation, `#[non_exhaustive]`, every variant documented;
//! messages lowercase without a trailing period that say what the user can do; errors are
//! `Send + Sync + 'static`; and when a check cannot be made the answer is a refusal, never "allowed".
//!
//! A message states its own context only and never repeats its cause: the cause is a `#[source]`,
//! typed, never flattened into a `String`. So `error.to_string()` is not the whole story, and
//! whoever shows an error to a person prints the chain with [`Report`], each cause once.

#![forbid(unsafe_code)]

mod agent;
mod clock;
mod error;
mod money;
mod provider;
mod usage;

pub use agent::{AgentName, AgentNameError};
pub use clock::{
    Clock, ClockError, SECONDS_PER_DAY, SharedClock, SystemClock, TestClock, utc_day_end,
    utc_day_start,
};
pub use error::Report;
pub use money::{MSATS_PER_SAT, Msats, cost_msats};
pub use provider::{BackendProvider, ParseProviderError};
pub use usage::TokenUsage;

#[cfg(test)]
mod tests;
