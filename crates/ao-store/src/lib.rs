//! Persistence: the one crate that speaks SQL.
//!
//! This crate holds the SQLite database file behind the durable parts of agent-orchestrator: the
//! cost ledger, approvals and the audit log.
//!
//! What it is **not** for: rules. It stores and loads what the domain crates decide; it never
//! decides whether something is allowed.

#![forbid(unsafe_code)]
