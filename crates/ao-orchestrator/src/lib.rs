//! The runtime: one call from an agent's request to a settled cost.
//!
//! [`Orchestrator`] ties the parts together. For a chat completion ([`Orchestrator::complete`])
//! it routes the agent, estimates the cost from the request's token limit at the dearest backend
//! it may fall back to, reserves it against the agent's budgets, asks for approval where the
//! agent's autonomy requires it, calls the backends along the fallback chain, settles the real
//! cost from the usage the answering backend reported (at that backend's prices), and writes the
//! audit log. Every path out of a call settles or releases its reservation: a call dropped before
//! its request left is released; one dropped while a backend was working is charged its
//! estimate, since the backend may have been paid. [`Orchestrator::run_tool`] gives tool calls the
//! same discipline through the hooks, and [`Orchestrator::pay_invoice`] pays a tool's Lightning
//! invoice from the same wallet as the `dvm` backend, within the same budget.
//!
//! [`Config`] reads the whole setup from a TOML file: backends with prices and endpoints, agent
//! routes, budgets, autonomy and approval thresholds, the database path, and the signer nodes
//! that sign the agent's own events ([`AgentSigning`]: its profile, audit checkpoints).
//!
//! The modules follow a call: `assembly` (built from a config), `admission` (estimate, reserve,
//! approve), `orchestrator` (the public API and the dispatch path every completion shares),
//! `settlement` (how a reservation ends, and the background writes), `streaming`; beside them,
//! `signing`, the agent's events signed by its nodes.
//!
//! What it is **not** for: HTTP serving (that is the `ao-gateway` crate) or new rules: every rule
//! applied here lives in the crate that owns it.

#![forbid(unsafe_code)]

mod admission;
mod assembly;
mod budgets;
mod cluster;
mod config;
mod error;
mod orchestrator;
mod payments;
mod settlement;
mod signing;
mod streaming;

pub use admission::RequestRules;
pub use budgets::Spend;
pub use config::{
    AgentEntry, ApprovalsSection, BackendEntry, BudgetEntry, Config, ConfigError, DatabaseEntry,
    DatabaseSection, RequestsSection, ServerSection, SigningSection,
};
pub use error::{OrchestratorError, SetupError};
pub use orchestrator::{CallOptions, Completion, Orchestrator, OrchestratorParts, Payments};
pub use payments::InvoicePaid;
pub use settlement::Metered;
pub use signing::{AgentSigning, SigningError, Unverified};
pub use streaming::{CompletionStream, StreamEvent};
