//! Persistence: the one crate that speaks SQL.
//!
//! [`SqliteStore`] is one SQLite database file (WAL mode, schema migrations versioned in the file)
//! behind the durable parts of agent-orchestrator. It implements `ao_budget::Ledger`, so a
//! `CostTracker` given a store keeps every settled cost across restarts and crashes.
//!
//! Writes go through one writer thread that commits concurrent writes together (group commit): a
//! write returns only once its transaction is committed with the configured durability
//! ([`Durability::Full`] by default, an `fsync` per commit), and many callers share each commit.
//! Reads use their own connection and never wait for a write to be flushed.
//!
//! What it is **not** for: rules. It stores and loads what the domain crates decide; it never
//! decides whether something is allowed. SQLite is bundled, so a fresh machine needs nothing.

#![forbid(unsafe_code)]

mod error;
mod ledger;
mod schema;
mod store;

pub use error::StoreError;
pub use store::{Durability, SqliteStore, StoreOptions};

#[cfg(test)]
mod tests;
