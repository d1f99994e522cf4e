//! Persistence: the one crate that speaks SQL.
//!
//! [`SqliteStore`] is one SQLite database file (WAL mode, schema migrations versioned in the file)
//! behind the durable parts of agent-orchestrator. It implements `ao_budget::Ledger` (the cost ledger),
//! `ao_approvals::ApprovalStore` (approval requests and decisions) and `ao_audit::AuditLog` (the
//! hash-chained audit log), so the parts given one store keep everything across restarts and
//! crashes, in one file. It also implements `ao_dvm::PaymentLedger` (as [`PgStore`] does): each
//! Lightning payment to a data vending machine is written down by its payment hash before the
//! wallet is asked, so that none is paid twice.
//!
//! Every row that restrains an agent is in the audit log's hash chain: each cost record, API key
//! creation and revocation, approval decision and stored checkpoint is committed with its audit
//! entry, in one transaction. [`SqliteStore::audit_report`] (and `AuditLog::verify`) checks the
//! chain and that the tables hold exactly what it recorded, so a row an agent deleted, edited or
//! inserted in the file is found. Checkpoints (`ao_audit::Checkpoint`, signed heads) catch what
//! the chain alone cannot: entries cut from its end, or a chain rewritten whole.
//!
//! Writes go through one writer thread that commits concurrent writes together (group commit): a
//! write returns only once its transaction is committed with the configured durability
//! ([`Durability::Full`] by default, an `fsync` per commit), and many callers share each commit.
//! Reads use their own connection and never wait for a write to be flushed.
//!
//! What it is **not** for: rules. It stores and loads what the domain crates decide; it never
//! decides whether something is allowed. SQLite is bundled, so a fresh machine needs nothing.

#![forbid(unsafe_code)]

mod any;
mod api_keys;
mod approvals;
mod audit;
mod checkpoints;
mod error;
mod finding;
mod ledger;
mod payments;
pub mod pg;
mod rows;
mod schema;
mod store;
mod verify;

pub use any::Store;
pub use api_keys::ApiKeyRow;
pub use error::StoreError;
pub use finding::{AuditedRow, Finding};
pub use pg::{PgError, PgOptions, PgStore};
pub use store::{Durability, SqliteStore, StoreOptions};
pub use verify::AuditReport;

#[cfg(test)]
mod tests;
