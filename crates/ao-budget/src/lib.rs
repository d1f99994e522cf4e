//! Budgets: what each agent has spent, and whether it may spend more.
//!
//! [`CostTracker`] is the spec's cost tracker, made to hold under concurrency and restarts:
//!
//! - **Reservations are the enforcement path.** [`CostTracker::reserve`] admits an estimate only if
//!   settled spend, outstanding reservations and the estimate together stay within both the session
//!   and the daily limit, atomically per agent; [`CostTracker::settle`] replaces the reservation with
//!   the real cost, and [`CostTracker::release`] drops it. A reservation that is never settled
//!   expires after a lease, so a crashed caller cannot lock a budget forever.
//! - **Spend is durable.** With a [`Ledger`] ([`CostTracker::with_ledger`]) every settled record is
//!   written before it is acknowledged, and a restarted tracker reads today's and every recent
//!   session's spend back: a restart is never a reset. If the ledger cannot be written, the call
//!   says so and new reservations are refused until it recovers.
//! - **Checks do not grow with history.** Totals are kept per agent, per UTC day and per session;
//!   no check scans past records.
//!
//! The rules are those of `docs/DECISIONS.md` (Budgets; Time, days and sessions): days are UTC
//! calendar days, a session is every record with `timestamp >= session_start`, a limit is reached
//! when `spent >= limit`, a limit of 0 admits nothing, `DailyExceeded` wins over `SessionExceeded`,
//! and percentages are rounded down and capped at 100.
//!
//! What it is **not** for: prices (see `ao-routing`) or storage engines (`ao-store` implements
//! [`Ledger`] on SQLite). The tracker does no I/O of its own beyond calling its ledger.

#![forbid(unsafe_code)]

mod config;
mod error;
mod ledger;
mod rate;
mod record;
mod state;
mod tracker;

// Compiled for the crate's own unit tests too, so its memory backend always runs the suite.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use config::{BudgetConfig, BudgetStatus, Limits, status_of};
pub use error::{BudgetError, LedgerError};
pub use ledger::{Ledger, MemoryLedger};
pub use rate::{RateError, RateLimiter, RateLimits, RatePermit};
pub use record::{CostRecord, Hold, MAX_STORED_AMOUNT};
pub use tracker::{CostTracker, DEFAULT_LEASE, DEFAULT_SESSION_HORIZON, ReservationId, Unwritten};

#[cfg(test)]
mod tests;
