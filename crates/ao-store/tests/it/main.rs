//! Integration tests of the SQLite store: the ledger conformance suite, the file on disk, and the
//! cost tracker on top of it (restart, lock contention, `kill -9`).

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]
#![allow(missing_docs, reason = "test code")]

mod approvals;
mod audit;
mod ledger;
mod payments;
mod pg;
mod pg_audit;
mod tracker;

use std::path::PathBuf;

use ao_budget::{CostRecord, Hold, Ledger, LedgerError};
use ao_store::SqliteStore;
use tempfile::TempDir;

/// A store in its own temporary directory, removed when dropped.
#[derive(Debug)]
struct TempStore {
    store: SqliteStore,
    dir: TempDir,
}

impl TempStore {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("ao.db")).unwrap();
        Self { store, dir }
    }

    fn db_path(&self) -> PathBuf {
        self.dir.path().join("ao.db")
    }

    /// The store alone, its directory left for the OS to clean: for suites that take a store by
    /// value.
    fn leak(self) -> SqliteStore {
        let _ = self.dir.keep();
        self.store
    }
}

impl Ledger for TempStore {
    fn append(&self, records: &[CostRecord]) -> Result<(), LedgerError> {
        self.store.append(records)
    }

    fn load_range(&self, from: u64, until: u64) -> Result<Vec<CostRecord>, LedgerError> {
        self.store.load_range(from, until)
    }

    fn load_agent_range(
        &self,
        agent: &str,
        from: u64,
        until: u64,
    ) -> Result<Vec<CostRecord>, LedgerError> {
        self.store.load_agent_range(agent, from, until)
    }

    fn health_check(&self) -> Result<(), LedgerError> {
        self.store.health_check()
    }

    fn hold(&self, hold: &Hold) -> Result<(), LedgerError> {
        self.store.hold(hold)
    }

    fn settle_holds(&self, ids: &[String], records: &[CostRecord]) -> Result<(), LedgerError> {
        self.store.settle_holds(ids, records)
    }

    fn holds(&self) -> Result<Vec<Hold>, LedgerError> {
        self.store.holds()
    }
}
