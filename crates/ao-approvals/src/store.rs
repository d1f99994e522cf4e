use std::sync::{Arc, Mutex};

use ao_audit::{AuditEntry, AuditError, AuditEvent, AuditLog, MemoryAuditLog};

use crate::error::ApprovalStoreError;
use crate::record::ApprovalRecord;

/// Durable storage of approval requests, with the audit log of every change to them.
///
/// [`save`](ApprovalStore::save) writes a request and its audit entry as one atomic step, so the
/// log never misses a change and never records one that did not happen. `ao-store`'s `SqliteStore`
/// is the durable implementation; [`MemoryApprovalStore`] keeps everything in memory.
pub trait ApprovalStore: AuditLog {
    /// Inserts or replaces `record` and appends `audit`, atomically. Returns the audit entry.
    ///
    /// Compare-and-swap: a record replaces the stored one only if the stored one is at
    /// `record.version - 1` (records written before versions existed count as version 0);
    /// otherwise nothing is written and the answer is [`ApprovalStoreError::Conflict`].
    fn save(
        &self,
        record: &ApprovalRecord,
        audit: AuditEvent,
    ) -> Result<AuditEntry, ApprovalStoreError>;

    /// The request with this id, if any.
    fn load(&self, request_id: &str) -> Result<Option<ApprovalRecord>, ApprovalStoreError>;

    /// Every request of `agent`, oldest first (by filing time, then filing order).
    fn load_agent(&self, agent: &str) -> Result<Vec<ApprovalRecord>, ApprovalStoreError>;

    /// Every request of every agent, oldest first.
    fn load_all(&self) -> Result<Vec<ApprovalRecord>, ApprovalStoreError>;
}

impl<S: ApprovalStore + ?Sized> ApprovalStore for Arc<S> {
    fn save(
        &self,
        record: &ApprovalRecord,
        audit: AuditEvent,
    ) -> Result<AuditEntry, ApprovalStoreError> {
        (**self).save(record, audit)
    }

    fn load(&self, request_id: &str) -> Result<Option<ApprovalRecord>, ApprovalStoreError> {
        (**self).load(request_id)
    }

    fn load_agent(&self, agent: &str) -> Result<Vec<ApprovalRecord>, ApprovalStoreError> {
        (**self).load_agent(agent)
    }

    fn load_all(&self) -> Result<Vec<ApprovalRecord>, ApprovalStoreError> {
        (**self).load_all()
    }
}

/// Approval requests and their audit log in memory, lost when the process ends. Clones share the
/// same contents.
#[derive(Debug, Clone, Default)]
pub struct MemoryApprovalStore {
    records: Arc<Mutex<Vec<ApprovalRecord>>>,
    audit: MemoryAuditLog,
}

impl MemoryApprovalStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The audit log, for tests that tamper with it.
    pub fn audit_log(&self) -> &MemoryAuditLog {
        &self.audit
    }
}

fn poisoned() -> ApprovalStoreError {
    ApprovalStoreError::read("the in-memory approval store was poisoned by a panic")
}

impl AuditLog for MemoryApprovalStore {
    fn append(&self, event: AuditEvent) -> Result<AuditEntry, AuditError> {
        // Appends share the records' lock, so they interleave correctly with `save`.
        let _records = self.records.lock().map_err(|_| {
            AuditError::write("the in-memory approval store was poisoned by a panic")
        })?;
        self.audit.append(event)
    }

    fn entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditEntry>, AuditError> {
        self.audit.entries(from_seq, limit)
    }
}

impl ApprovalStore for MemoryApprovalStore {
    fn save(
        &self,
        record: &ApprovalRecord,
        audit: AuditEvent,
    ) -> Result<AuditEntry, ApprovalStoreError> {
        let mut records = self.records.lock().map_err(|_| poisoned())?;
        let existing = records.iter().position(|r| r.id() == record.id());
        // Compare-and-swap: the stored record must still be at the version this one was made from.
        if let Some(i) = existing
            && records[i].version != record.version.saturating_sub(1)
        {
            return Err(ApprovalStoreError::Conflict {
                request_id: record.id().to_owned(),
            });
        }
        let entry = self
            .audit
            .append(audit)
            .map_err(ApprovalStoreError::write)?;
        match existing {
            Some(i) => records[i] = record.clone(),
            None => records.push(record.clone()),
        }
        Ok(entry)
    }

    fn load(&self, request_id: &str) -> Result<Option<ApprovalRecord>, ApprovalStoreError> {
        let records = self.records.lock().map_err(|_| poisoned())?;
        Ok(records.iter().find(|r| r.id() == request_id).cloned())
    }

    fn load_agent(&self, agent: &str) -> Result<Vec<ApprovalRecord>, ApprovalStoreError> {
        let records = self.records.lock().map_err(|_| poisoned())?;
        let mut found: Vec<ApprovalRecord> = records
            .iter()
            .filter(|r| r.agent == agent)
            .cloned()
            .collect();
        found.sort_by_key(|r| r.request.created_at);
        Ok(found)
    }

    fn load_all(&self) -> Result<Vec<ApprovalRecord>, ApprovalStoreError> {
        let records = self.records.lock().map_err(|_| poisoned())?;
        let mut found = records.clone();
        found.sort_by_key(|r| r.request.created_at);
        Ok(found)
    }
}
