//! The runtime: one call from an agent's request to a settled cost.
//!
//! [`Orchestrator`] ties the parts together. For a chat completion ([`Orchestrator::complete`])
//! it routes the agent, estimates the cost from the request's token limit at the dearest backend
//! it may fall back to, reserves it against the agent's budgets, asks for approval where the
//! agent's autonomy requires it, calls the backends along the fallback chain, settles the real
//! cost from the usage the answering backend reported (at that backend's prices), and writes the
//! audit log. Every failure path releases or settles the reservation; a dropped call releases it.
//! [`Orchestrator::run_tool`] gives tool calls the same discipline through the hooks.
//!
//! [`Config`] reads the whole setup from a TOML file: backends with prices and endpoints, agent
//! routes, budgets, autonomy and approval thresholds, and the database path.
//!
//! What it is **not** for: HTTP serving (that is `ao serve`, in the CLI) or new rules: every rule
//! applied here lives in the crate that owns it.

#![forbid(unsafe_code)]

mod config;
mod error;
mod runtime;

pub use config::{
    AgentEntry, ApprovalsSection, BackendEntry, BudgetEntry, Config, ConfigError, ServerSection,
};
pub use error::OrchestratorError;
pub use runtime::{
    AgentRuntime, CallOptions, Completion, CompletionStream, Orchestrator, OrchestratorParts,
    StreamEvent,
};
