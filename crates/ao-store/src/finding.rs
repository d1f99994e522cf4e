//! What `verify` finds wrong (`verify.rs`), and the rows it is about.

use std::fmt;

use ao_audit::{BrokenLink, CheckpointError, CheckpointMismatch};

/// A row an audit entry vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditedRow {
    /// A cost record, by its row id (`cost_records.seq`).
    CostRecord(i64),
    /// An API key, by its id.
    ApiKey(String),
    /// A stored checkpoint, by its event id.
    Checkpoint(String),
}

impl fmt::Display for AuditedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditedRow::CostRecord(seq) => write!(f, "cost record {seq}"),
            AuditedRow::ApiKey(id) => write!(f, "API key `{id}`"),
            AuditedRow::Checkpoint(id) => {
                write!(f, "checkpoint `{}`", id.get(..16).unwrap_or(id))
            }
        }
    }
}

/// Something [`crate::Store::audit_report`] found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Finding {
    /// The chain itself is broken: an entry was edited, removed or reordered.
    #[error(transparent)]
    Chain(BrokenLink),
    /// An entry vouches for a row that is gone.
    #[error("{row} was deleted: entry {entry} recorded it and the row is gone")]
    Deleted {
        /// The row.
        row: AuditedRow,
        /// The entry that recorded it.
        entry: u64,
    },
    /// A row differs from what its entry recorded.
    #[error("{row} was edited: its {field} is {in_table} in the table, {in_log} in entry {entry}")]
    Edited {
        /// The row.
        row: AuditedRow,
        /// The entry that recorded it.
        entry: u64,
        /// The first column that differs.
        field: &'static str,
        /// Its value in the table.
        in_table: String,
        /// Its value in the entry.
        in_log: String,
    },
    /// A row no entry vouches for: it was written behind the store's back.
    #[error("{row} has no audit entry: it was written behind the store's back")]
    Unrecorded {
        /// The row.
        row: AuditedRow,
    },
    /// Two entries vouch for one row id: the first row was deleted and its id given to another.
    #[error(
        "{row} is recorded by entries {first} and {second}: the first row was deleted and its id reused"
    )]
    Reused {
        /// The row.
        row: AuditedRow,
        /// The earlier entry.
        first: u64,
        /// The later entry, which the row now matches or not.
        second: u64,
    },
    /// An entry of a row's kind that does not make sense.
    #[error("entry {entry} {problem}")]
    BadEntry {
        /// The entry.
        entry: u64,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A stored checkpoint that is not a validly signed checkpoint event.
    #[error("{row} is not a valid checkpoint: {error}")]
    CheckpointInvalid {
        /// The checkpoint's row.
        row: AuditedRow,
        /// What is wrong with it.
        error: CheckpointError,
    },
    /// A stored checkpoint that does not match the chain.
    #[error("{row}, of entry {seq}, does not match the log: {mismatch}")]
    CheckpointMismatch {
        /// The checkpoint's row.
        row: AuditedRow,
        /// The entry it signed.
        seq: u64,
        /// How it does not match.
        mismatch: CheckpointMismatch,
    },
}

impl Finding {
    /// The entry at which it was found, if it concerns one.
    pub fn entry(&self) -> Option<u64> {
        match self {
            Finding::Chain(link) => Some(link.seq),
            Finding::Deleted { entry, .. }
            | Finding::Edited { entry, .. }
            | Finding::BadEntry { entry, .. } => Some(*entry),
            Finding::Reused { first, .. } => Some(*first),
            Finding::Unrecorded { .. }
            | Finding::CheckpointInvalid { .. }
            | Finding::CheckpointMismatch { .. } => None,
        }
    }
}
