//! Durability: spend is acknowledged once the ledger has it; a write the ledger refused stays
//! counted and pending, and new reservations are refused until it is written. Write-ahead holds:
//! a reservation is written down before its call is dispatched, so that a crash never refunds
//! it, and whoever opens the ledger next charges what a crash left held.

use std::sync::atomic::Ordering;

use ao_types::{BackendProvider, Report, TokenUsage};

use super::{CostTracker, ReservationId, lock};
use crate::error::BudgetError;
use crate::record::{CostRecord, Hold};

/// A settled record that counts in memory but is not yet in the ledger; see
/// [`CostTracker::settle_counted`]. Dropping it loses the record at the next restart (and leaves
/// its hold, if it had one, to be charged at the estimate).
#[derive(Debug)]
#[must_use = "the record is not durable until it is passed to CostTracker::write"]
pub struct Unwritten {
    record: CostRecord,
    hold: Option<String>,
}

impl Unwritten {
    pub(super) fn new(record: CostRecord, hold: Option<String>) -> Self {
        Self { record, hold }
    }

    /// The record.
    pub fn record(&self) -> &CostRecord {
        &self.record
    }
}

/// One change the ledger must make: a record to append, a hold to remove, or both at once.
#[derive(Debug, Clone)]
pub(super) struct LedgerWrite {
    pub(super) record: Option<CostRecord>,
    pub(super) hold: Option<String>,
}

impl CostTracker {
    /// The id reservation `id` is held under in the ledger: unique across restarts and
    /// processes, because every tracker draws its own random incarnation.
    fn hold_id(&self, id: ReservationId) -> String {
        format!("{:016x}-{}-{}", self.incarnation, id.slot, id.seq)
    }

    /// Writes reservation `id` down in the ledger before its call is dispatched to `backend`,
    /// with the tokens it was estimated at (write-ahead). From then on a crash cannot refund the
    /// call: the next tracker to open the ledger charges it at its estimate. Without a ledger
    /// this does nothing. It writes to the ledger: call it off the async executor.
    pub fn hold(
        &self,
        id: ReservationId,
        backend: BackendProvider,
        estimate: TokenUsage,
    ) -> Result<(), BudgetError> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        let now = self.clock.now()?;
        let slot = self.reservation_slot(id)?;
        let (agent, reservation) = {
            let state = lock(&slot)?;
            let reservation = state
                .reservation(id.seq)
                .ok_or(BudgetError::ReservationFinished { id })?;
            (state.name.to_string(), reservation)
        };
        let hold = Hold {
            id: self.hold_id(id),
            agent_name: agent,
            backend,
            input_tokens: estimate.input_tokens,
            output_tokens: estimate.output_tokens,
            cost_sats: reservation.sats,
            created_at: now,
        };
        ledger
            .hold(&hold)
            .map_err(|source| BudgetError::NotDurable { source })?;
        // Marked only once written: a hold that failed leaves nothing to remove.
        lock(&slot)?.mark_held(id.seq);
        Ok(())
    }

    /// The hold id of reservation `id` if it was held, for a settle or release.
    pub(super) fn held_id(&self, id: ReservationId, held: bool) -> Option<String> {
        held.then(|| self.hold_id(id))
    }

    /// Charges every hold a crash left in `self.ledger` at its estimate: appended as records, the
    /// holds removed, in one step. Returns them, for the caller to count and audit.
    pub(super) fn recover_holds(&self) -> Result<Vec<Hold>, BudgetError> {
        let Some(ledger) = &self.ledger else {
            return Ok(Vec::new());
        };
        let holds = ledger.holds().map_err(BudgetError::Load)?;
        if holds.is_empty() {
            return Ok(holds);
        }
        let ids: Vec<String> = holds.iter().map(|h| h.id.clone()).collect();
        let records: Vec<CostRecord> = holds.iter().map(Hold::charge).collect();
        ledger
            .settle_holds(&ids, &records)
            .map_err(|source| BudgetError::NotDurable { source })?;
        for hold in &holds {
            tracing::warn!(
                agent = hold.agent_name,
                cost_sats = hold.cost_sats,
                "a call dispatched before a crash was never settled; charged at its estimate"
            );
        }
        Ok(holds)
    }

    /// Writes records whose ledger write failed earlier. `Ok` once nothing is pending.
    pub fn flush(&self) -> Result<(), BudgetError> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        let mut pending = self.pending.lock().map_err(|_| BudgetError::Poisoned)?;
        let result = if pending.is_empty() {
            ledger.health_check()
        } else {
            apply(ledger.as_ref(), &pending)
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

    /// Makes `write` durable, or keeps it pending (and refuses new spend) until it can be.
    pub(super) fn persist(&self, write: LedgerWrite) -> Result<(), BudgetError> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        if !self.degraded.load(Ordering::Acquire) {
            match apply(ledger.as_ref(), std::slice::from_ref(&write)) {
                Ok(()) => return Ok(()),
                Err(source) => {
                    let mut pending = self.pending.lock().map_err(|_| BudgetError::Poisoned)?;
                    pending.push(write);
                    self.degraded.store(true, Ordering::Release);
                    tracing::error!(error = %Report::new(&source), "cost record not durable; refusing new spend until the ledger recovers");
                    return Err(BudgetError::NotDurable { source });
                }
            }
        }
        let mut pending = self.pending.lock().map_err(|_| BudgetError::Poisoned)?;
        pending.push(write);
        match apply(ledger.as_ref(), &pending) {
            Ok(()) => {
                pending.clear();
                self.degraded.store(false, Ordering::Release);
                Ok(())
            }
            Err(source) => Err(BudgetError::NotDurable { source }),
        }
    }
}

/// Applies `writes` to `ledger` in one step.
fn apply(
    ledger: &dyn crate::ledger::Ledger,
    writes: &[LedgerWrite],
) -> Result<(), crate::error::LedgerError> {
    let holds: Vec<String> = writes.iter().filter_map(|w| w.hold.clone()).collect();
    let records: Vec<CostRecord> = writes.iter().filter_map(|w| w.record.clone()).collect();
    if holds.is_empty() {
        return ledger.append(&records);
    }
    ledger.settle_holds(&holds, &records)
}

impl From<Unwritten> for LedgerWrite {
    fn from(unwritten: Unwritten) -> Self {
        Self {
            record: Some(unwritten.record),
            hold: unwritten.hold,
        }
    }
}
