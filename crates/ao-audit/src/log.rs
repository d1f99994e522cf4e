use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::entry::{AuditEntry, AuditEvent, BrokenLink, verify_chain};

/// The audit log could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The entry could not be written; the log is unchanged.
    #[error("the audit log cannot be written; the log is unchanged")]
    Write {
        /// What the storage said.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
    /// The log could not be read.
    #[error("the audit log cannot be read")]
    Read {
        /// What the storage said.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
}

impl AuditError {
    /// A write failure caused by `source`.
    pub fn write(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        AuditError::Write {
            source: source.into(),
        }
    }

    /// A read failure caused by `source`.
    pub fn read(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        AuditError::Read {
            source: source.into(),
        }
    }
}

/// An append-only, hash-chained log.
pub trait AuditLog: Send + Sync + fmt::Debug {
    /// Appends `event` after the last entry and returns the new entry. Appends are serialized:
    /// each links to the entry that was last when it was written.
    fn append(&self, event: AuditEvent) -> Result<AuditEntry, AuditError>;

    /// Up to `limit` entries with `seq >= from_seq`, in order.
    fn entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditEntry>, AuditError>;

    /// Checks the whole chain. `Ok(Ok(n))` is a sound chain of `n` entries; `Ok(Err(link))` names
    /// the first broken link.
    fn verify(&self) -> Result<Result<u64, BrokenLink>, AuditError> {
        let entries = self.entries(1, usize::MAX)?;
        Ok(verify_chain(&entries))
    }
}

impl<L: AuditLog + ?Sized> AuditLog for Arc<L> {
    fn append(&self, event: AuditEvent) -> Result<AuditEntry, AuditError> {
        (**self).append(event)
    }

    fn entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditEntry>, AuditError> {
        (**self).entries(from_seq, limit)
    }

    fn verify(&self) -> Result<Result<u64, BrokenLink>, AuditError> {
        (**self).verify()
    }
}

/// An audit log in memory, lost when the process ends. Clones share the same entries.
#[derive(Debug, Clone, Default)]
pub struct MemoryAuditLog {
    entries: Arc<Mutex<Vec<AuditEntry>>>,
}

impl MemoryAuditLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces entry `seq` with `entry` without relinking: a tamperer's edit, for tests that
    /// show the verifier catches it.
    pub fn tamper(&self, seq: u64, entry: AuditEntry) -> Result<(), AuditError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| AuditError::write("the in-memory audit log was poisoned by a panic"))?;
        let slot = usize::try_from(seq)
            .ok()
            .and_then(|s| s.checked_sub(1))
            .and_then(|i| entries.get_mut(i))
            .ok_or_else(|| AuditError::write(format!("no entry {seq}")))?;
        *slot = entry;
        Ok(())
    }
}

impl AuditLog for MemoryAuditLog {
    fn append(&self, event: AuditEvent) -> Result<AuditEntry, AuditError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| AuditError::write("the in-memory audit log was poisoned by a panic"))?;
        let entry = AuditEntry::next(entries.last(), event);
        entries.push(entry.clone());
        Ok(entry)
    }

    fn entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditEntry>, AuditError> {
        let entries = self
            .entries
            .lock()
            .map_err(|_| AuditError::read("the in-memory audit log was poisoned by a panic"))?;
        Ok(entries
            .iter()
            .filter(|e| e.seq >= from_seq)
            .take(limit)
            .cloned()
            .collect())
    }
}
