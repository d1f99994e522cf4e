use std::fmt;
use std::sync::{Arc, Mutex};

use std::collections::BTreeMap;

use crate::error::LedgerError;
use crate::record::{CostRecord, Hold};

/// Durable storage of cost records.
///
/// A ledger only appends and reads; it never decides anything. [`CostTracker`](crate::CostTracker)
/// appends every settled record and reads recent history back when it starts.
///
/// Implementations must be safe to call from many threads at once. `ao-store`'s `SqliteStore` is
/// the durable one; [`MemoryLedger`] keeps records in memory (for tests, and for processes that do
/// not need to survive a restart). Every implementation should pass the suite in
/// `ao_budget::conformance` (feature `conformance`).
pub trait Ledger: Send + Sync + fmt::Debug {
    /// Appends `records`, in order. When this returns `Ok`, the records are durable (they survive
    /// the process being killed); when it returns `Err`, none of them was written.
    fn append(&self, records: &[CostRecord]) -> Result<(), LedgerError>;

    /// Every record with `from <= timestamp < until`, of every agent, ordered by timestamp and then
    /// by the order they were appended.
    fn load_range(&self, from: u64, until: u64) -> Result<Vec<CostRecord>, LedgerError>;

    /// Every record of `agent` with `from <= timestamp < until`, in the same order.
    fn load_agent_range(
        &self,
        agent: &str,
        from: u64,
        until: u64,
    ) -> Result<Vec<CostRecord>, LedgerError> {
        let mut records = self.load_range(from, until)?;
        records.retain(|r| r.agent_name == agent);
        Ok(records)
    }

    /// Checks that the ledger can be written now, without writing a record. The tracker asks this
    /// before it admits new spend after a failed write.
    fn health_check(&self) -> Result<(), LedgerError> {
        Ok(())
    }

    /// Writes down `hold` before its call is dispatched. When this returns `Ok`, it is durable.
    fn hold(&self, hold: &Hold) -> Result<(), LedgerError>;

    /// Removes the holds `ids` (absent ones are ignored) and appends `records`, in one durable
    /// step: a crash leaves either all of it or none of it.
    fn settle_holds(&self, ids: &[String], records: &[CostRecord]) -> Result<(), LedgerError>;

    /// Every hold not yet removed, oldest first.
    fn holds(&self) -> Result<Vec<Hold>, LedgerError>;
}

impl<L: Ledger + ?Sized> Ledger for Arc<L> {
    fn append(&self, records: &[CostRecord]) -> Result<(), LedgerError> {
        (**self).append(records)
    }

    fn load_range(&self, from: u64, until: u64) -> Result<Vec<CostRecord>, LedgerError> {
        (**self).load_range(from, until)
    }

    fn load_agent_range(
        &self,
        agent: &str,
        from: u64,
        until: u64,
    ) -> Result<Vec<CostRecord>, LedgerError> {
        (**self).load_agent_range(agent, from, until)
    }

    fn health_check(&self) -> Result<(), LedgerError> {
        (**self).health_check()
    }

    fn hold(&self, hold: &Hold) -> Result<(), LedgerError> {
        (**self).hold(hold)
    }

    fn settle_holds(&self, ids: &[String], records: &[CostRecord]) -> Result<(), LedgerError> {
        (**self).settle_holds(ids, records)
    }

    fn holds(&self) -> Result<Vec<Hold>, LedgerError> {
        (**self).holds()
    }
}

/// A ledger in memory: every record in one list, lost when the process ends.
///
/// Clones share the same records, so a test can keep a handle to what a tracker wrote and give it
/// to a second tracker to simulate a restart.
#[derive(Debug, Clone, Default)]
pub struct MemoryLedger {
    records: Arc<Mutex<Vec<CostRecord>>>,
    holds: Arc<Mutex<BTreeMap<String, Hold>>>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records the ledger holds.
    pub fn len(&self) -> Result<usize, LedgerError> {
        Ok(self.lock()?.len())
    }

    /// Whether the ledger holds no record.
    pub fn is_empty(&self) -> Result<bool, LedgerError> {
        Ok(self.lock()?.is_empty())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Vec<CostRecord>>, LedgerError> {
        self.records
            .lock()
            .map_err(|_| LedgerError::read("the in-memory ledger was poisoned by a panic"))
    }
}

impl Ledger for MemoryLedger {
    fn append(&self, records: &[CostRecord]) -> Result<(), LedgerError> {
        self.records
            .lock()
            .map_err(|_| LedgerError::write("the in-memory ledger was poisoned by a panic"))?
            .extend_from_slice(records);
        Ok(())
    }

    fn load_range(&self, from: u64, until: u64) -> Result<Vec<CostRecord>, LedgerError> {
        let mut found: Vec<CostRecord> = self
            .lock()?
            .iter()
            .filter(|r| r.timestamp >= from && r.timestamp < until)
            .cloned()
            .collect();
        // A stable sort keeps the append order among equal timestamps.
        found.sort_by_key(|r| r.timestamp);
        Ok(found)
    }

    fn hold(&self, hold: &Hold) -> Result<(), LedgerError> {
        self.holds
            .lock()
            .map_err(|_| LedgerError::write("the in-memory ledger was poisoned by a panic"))?
            .insert(hold.id.clone(), hold.clone());
        Ok(())
    }

    fn settle_holds(&self, ids: &[String], records: &[CostRecord]) -> Result<(), LedgerError> {
        let poisoned = || LedgerError::write("the in-memory ledger was poisoned by a panic");
        let mut holds = self.holds.lock().map_err(|_| poisoned())?;
        let mut all = self.records.lock().map_err(|_| poisoned())?;
        for id in ids {
            holds.remove(id);
        }
        all.extend_from_slice(records);
        Ok(())
    }

    fn holds(&self) -> Result<Vec<Hold>, LedgerError> {
        let mut holds: Vec<Hold> = self
            .holds
            .lock()
            .map_err(|_| LedgerError::read("the in-memory ledger was poisoned by a panic"))?
            .values()
            .cloned()
            .collect();
        holds.sort_by_key(|h| h.created_at);
        Ok(holds)
    }
}
