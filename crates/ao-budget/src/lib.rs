//! Budgets: what each agent has spent, and whether it may spend more.
//!
//! This crate holds the cost tracker, its budget rules (UTC days, sessions, `>=` means exceeded,
//! 0 admits nothing) and the `Ledger` trait that makes spend durable.
//!
//! What it is **not** for: prices (see `ao-routing`) or storage engines (see `ao-store`, which
//! implements the ledger on SQLite). It does no I/O of its own.

#![forbid(unsafe_code)]
