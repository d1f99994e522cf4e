//! [`Store`]: whichever database the operator chose, behind one type. The gateway, the CLI and
//! the orchestrator hold a `Store`, so every part works the same on a SQLite file (one gateway)
//! and on PostgreSQL (any number of gateways).

use ao_approvals::{ApprovalRecord, ApprovalStore, ApprovalStoreError};
use ao_audit::{
    AuditEntry, AuditError, AuditEvent, AuditLog, BrokenLink, ChainHead, Checkpoint,
    CheckpointMismatch,
};
use ao_budget::{CostRecord, Hold, Ledger, LedgerError};

use crate::api_keys::ApiKeyRow;
use crate::error::StoreError;
use crate::pg::PgStore;
use crate::store::SqliteStore;
use crate::verify::AuditReport;

/// The durable state of agent-orchestrator: the ledger, holds, approvals, the audit log, API keys
/// and checkpoints, in a SQLite file or in PostgreSQL. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Store {
    /// One SQLite file: one gateway.
    Sqlite(SqliteStore),
    /// One PostgreSQL database: any number of gateways.
    Postgres(PgStore),
}

impl From<SqliteStore> for Store {
    fn from(store: SqliteStore) -> Self {
        Store::Sqlite(store)
    }
}

impl From<PgStore> for Store {
    fn from(store: PgStore) -> Self {
        Store::Postgres(store)
    }
}

/// Runs the same call on whichever store it is, with its error as a [`StoreError`].
macro_rules! either {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call.map_err(StoreError::from),
        }
    };
}

impl Store {
    /// The SQLite store, when it is one.
    pub fn sqlite(&self) -> Option<&SqliteStore> {
        match self {
            Store::Sqlite(store) => Some(store),
            Store::Postgres(_) => None,
        }
    }

    /// The PostgreSQL store, when it is one.
    pub fn postgres(&self) -> Option<&PgStore> {
        match self {
            Store::Postgres(store) => Some(store),
            Store::Sqlite(_) => None,
        }
    }

    /// Stores a new key's hash, with its audit entry.
    pub fn add_api_key(&self, row: &ApiKeyRow) -> Result<(), StoreError> {
        either!(self, s => s.add_api_key(row))
    }

    /// Revokes key `id` at `now`, with its audit entry; whether a live key was revoked.
    pub fn revoke_api_key(&self, id: &str, now: u64) -> Result<bool, StoreError> {
        either!(self, s => s.revoke_api_key(id, now))
    }

    /// Every key, oldest first.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        either!(self, s => s.api_keys())
    }

    /// What kind of log this is (`AOS1`), as a checkpoint names it.
    pub fn application_id(&self) -> Result<u32, StoreError> {
        match self {
            Store::Sqlite(s) => s.application_id(),
            Store::Postgres(s) => Ok(s.application_id()),
        }
    }

    /// The head of the audit log, or `None` while it is empty.
    pub fn head(&self) -> Result<Option<ChainHead>, StoreError> {
        either!(self, s => s.head())
    }

    /// Checks `checkpoint` against the log (not who signed it).
    pub fn check_checkpoint(
        &self,
        checkpoint: &Checkpoint,
    ) -> Result<Result<(), CheckpointMismatch>, StoreError> {
        either!(self, s => s.check_checkpoint(checkpoint))
    }

    /// Stores `checkpoint` with its audit entry once it matches the log; `false` when it was
    /// stored already.
    pub fn add_checkpoint(&self, checkpoint: &Checkpoint) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.add_checkpoint(checkpoint),
            Store::Postgres(s) => s.add_checkpoint(checkpoint).map_err(|e| match e {
                crate::PgError::Checkpoint(mismatch) => StoreError::Checkpoint(mismatch),
                other => StoreError::from(other),
            }),
        }
    }

    /// Checks the audit log and every row it vouches for, from one snapshot.
    pub fn audit_report(&self) -> Result<AuditReport, StoreError> {
        either!(self, s => s.audit_report())
    }
}

impl Ledger for Store {
    fn append(&self, records: &[CostRecord]) -> Result<(), LedgerError> {
        match self {
            Store::Sqlite(s) => Ledger::append(s, records),
            Store::Postgres(s) => Ledger::append(s, records),
        }
    }

    fn load_range(&self, from: u64, until: u64) -> Result<Vec<CostRecord>, LedgerError> {
        match self {
            Store::Sqlite(s) => s.load_range(from, until),
            Store::Postgres(s) => s.load_range(from, until),
        }
    }

    fn load_agent_range(
        &self,
        agent: &str,
        from: u64,
        until: u64,
    ) -> Result<Vec<CostRecord>, LedgerError> {
        match self {
            Store::Sqlite(s) => s.load_agent_range(agent, from, until),
            Store::Postgres(s) => s.load_agent_range(agent, from, until),
        }
    }

    fn health_check(&self) -> Result<(), LedgerError> {
        match self {
            Store::Sqlite(s) => s.health_check(),
            Store::Postgres(s) => s.health_check(),
        }
    }

    fn hold(&self, hold: &Hold) -> Result<(), LedgerError> {
        match self {
            Store::Sqlite(s) => s.hold(hold),
            Store::Postgres(s) => s.hold(hold),
        }
    }

    fn settle_holds(&self, ids: &[String], records: &[CostRecord]) -> Result<(), LedgerError> {
        match self {
            Store::Sqlite(s) => s.settle_holds(ids, records),
            Store::Postgres(s) => s.settle_holds(ids, records),
        }
    }

    fn holds(&self) -> Result<Vec<Hold>, LedgerError> {
        match self {
            Store::Sqlite(s) => s.holds(),
            Store::Postgres(s) => s.holds(),
        }
    }
}

impl ApprovalStore for Store {
    fn save(
        &self,
        record: &ApprovalRecord,
        audit: AuditEvent,
    ) -> Result<AuditEntry, ApprovalStoreError> {
        match self {
            Store::Sqlite(s) => s.save(record, audit),
            Store::Postgres(s) => s.save(record, audit),
        }
    }

    fn load(&self, request_id: &str) -> Result<Option<ApprovalRecord>, ApprovalStoreError> {
        match self {
            Store::Sqlite(s) => ApprovalStore::load(s, request_id),
            Store::Postgres(s) => ApprovalStore::load(s, request_id),
        }
    }

    fn load_agent(&self, agent: &str) -> Result<Vec<ApprovalRecord>, ApprovalStoreError> {
        match self {
            Store::Sqlite(s) => s.load_agent(agent),
            Store::Postgres(s) => s.load_agent(agent),
        }
    }

    fn load_all(&self) -> Result<Vec<ApprovalRecord>, ApprovalStoreError> {
        match self {
            Store::Sqlite(s) => s.load_all(),
            Store::Postgres(s) => s.load_all(),
        }
    }
}

impl AuditLog for Store {
    fn append(&self, event: AuditEvent) -> Result<AuditEntry, AuditError> {
        match self {
            Store::Sqlite(s) => AuditLog::append(s, event),
            Store::Postgres(s) => AuditLog::append(s, event),
        }
    }

    fn entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditEntry>, AuditError> {
        match self {
            Store::Sqlite(s) => s.entries(from_seq, limit),
            Store::Postgres(s) => s.entries(from_seq, limit),
        }
    }

    fn verify(&self) -> Result<Result<u64, BrokenLink>, AuditError> {
        match self {
            Store::Sqlite(s) => s.verify(),
            Store::Postgres(s) => s.verify(),
        }
    }
}
