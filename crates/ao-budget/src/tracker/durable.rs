//! Durability: spend is acknowledged once the ledger has it; a record the ledger refused stays
//! counted and pending, and new reservations are refused until it is written.

use std::sync::atomic::Ordering;

use super::CostTracker;
use crate::error::BudgetError;
use crate::record::CostRecord;

/// A settled record that counts in memory but is not yet in the ledger; see
/// [`CostTracker::settle_counted`]. Dropping it loses the record at the next restart.
#[derive(Debug)]
#[must_use = "the record is not durable until it is passed to CostTracker::write"]
pub struct Unwritten {
    record: CostRecord,
}

impl Unwritten {
    pub(super) fn new(record: CostRecord) -> Self {
        Self { record }
    }

    pub(super) fn into_record(self) -> CostRecord {
        self.record
    }

    /// The record.
    pub fn record(&self) -> &CostRecord {
        &self.record
    }
}

impl CostTracker {
    /// Writes records whose ledger write failed earlier. `Ok` once nothing is pending.
    pub fn flush(&self) -> Result<(), BudgetError> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        let mut pending = self.pending.lock().map_err(|_| BudgetError::Poisoned)?;
        let result = if pending.is_empty() {
            ledger.health_check()
        } else {
            ledger.append(&pending)
        };
        match result {
            Ok(()) => {
                pending.clear();
                self.degraded.store(false, Ordering::Release);
                Ok(())
            }
            Err(source) => Err(BudgetError::LedgerUnavailable {
                pending: pending.len(),
                source,
            }),
        }
    }

    /// Records counted in memory whose ledger write has not succeeded yet.
    pub fn pending_records(&self) -> Result<usize, BudgetError> {
        Ok(self
            .pending
            .lock()
            .map_err(|_| BudgetError::Poisoned)?
            .len())
    }

    pub(super) fn ensure_durable(&self) -> Result<(), BudgetError> {
        if self.degraded.load(Ordering::Acquire) {
            self.flush()?;
        }
        Ok(())
    }

    pub(super) fn persist(&self, record: CostRecord) -> Result<(), BudgetError> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        if !self.degraded.load(Ordering::Acquire) {
            match ledger.append(std::slice::from_ref(&record)) {
                Ok(()) => return Ok(()),
                Err(source) => {
                    let mut pending = self.pending.lock().map_err(|_| BudgetError::Poisoned)?;
                    pending.push(record);
                    self.degraded.store(true, Ordering::Release);
                    tracing::error!(error = %ao_types::Report::new(&source), "cost record not durable; refusing new spend until the ledger recovers");
                    return Err(BudgetError::NotDurable { source });
                }
            }
        }
        let mut pending = self.pending.lock().map_err(|_| BudgetError::Poisoned)?;
        pending.push(record);
        match ledger.append(&pending) {
            Ok(()) => {
                pending.clear();
                self.degraded.store(false, Ordering::Release);
                Ok(())
            }
            Err(source) => Err(BudgetError::NotDurable { source }),
        }
    }
}
