//! Where the budgets of completions are kept: in this process ([`CostTracker`], durable through
//! its ledger), or in PostgreSQL, shared by every gateway on the database
//! ([`SharedBudgets`]). The rest of the orchestrator reserves, holds, renews and settles through
//! this one face.

use std::sync::Arc;

use ao_budget::{BudgetError, BudgetStatus, CostRecord, CostTracker, ReservationId};
use ao_routing::BackendProvider;
use ao_store::pg::{SharedBudgets, SharedHold};
use ao_types::{Report, TokenUsage, utc_day_start};

/// The budgets completions are reserved against.
#[derive(Debug, Clone)]
pub(crate) enum Budgets {
    /// This process's tracker.
    Local(Arc<CostTracker>),
    /// Rows in PostgreSQL, shared by every gateway.
    Shared(Arc<SharedBudgets>),
}

/// A reservation, wherever it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Held {
    /// In this process's tracker.
    Local(ReservationId),
    /// A hold in the shared database.
    Shared(SharedHold),
}

/// What an agent has used today, and where it stands, wherever its budget is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spend {
    /// Sats settled and reserved today (UTC).
    pub sats: u64,
    /// Tokens settled and reserved today.
    pub tokens: u64,
    /// Calls in flight.
    pub outstanding: u64,
    /// Where it stands against its budget (its session being the day).
    pub status: BudgetStatus,
}

impl Budgets {
    /// The lease of a shared hold, in seconds; `None` for local budgets.
    pub(crate) fn lease_secs(&self) -> Option<u64> {
        match self {
            Budgets::Local(_) => None,
            Budgets::Shared(shared) => Some(shared.lease().as_secs()),
        }
    }

    /// Reserves `sats` and `usage`'s tokens for a call of `agent` to `backend`. A shared
    /// reservation is written down (held) in the same step.
    pub(crate) async fn reserve(
        &self,
        agent: &str,
        session_start: u64,
        sats: u64,
        usage: TokenUsage,
        backend: BackendProvider,
        now: u64,
    ) -> Result<Held, BudgetError> {
        match self {
            Budgets::Local(tracker) => tracker
                .reserve_with_tokens(agent, session_start, sats, usage.total())
                .map(Held::Local),
            Budgets::Shared(shared) => shared
                .reserve(agent, session_start, sats, usage, backend, now)
                .await
                .map(Held::Shared),
        }
    }

    /// Writes `held` down before its request goes to `backend` (write-ahead), off the executor.
    /// A shared reservation was written when it was made.
    pub(crate) async fn hold(
        &self,
        held: &Held,
        backend: BackendProvider,
        usage: TokenUsage,
    ) -> Result<(), BudgetError> {
        match (self, held) {
            (Budgets::Local(tracker), Held::Local(id)) => {
                let (tracker, id) = (Arc::clone(tracker), *id);
                tokio::task::spawn_blocking(move || tracker.hold(id, backend, usage))
                    .await
                    .map_err(|_| BudgetError::Poisoned)?
            }
            _ => Ok(()),
        }
    }

    /// Keeps `held` counted while its call runs.
    pub(crate) async fn renew(&self, held: &Held) -> Result<(), BudgetError> {
        match (self, held) {
            (Budgets::Local(tracker), Held::Local(id)) => tracker.renew(*id),
            (Budgets::Shared(shared), Held::Shared(hold)) => shared.renew(hold).await.map(drop),
            _ => Ok(()),
        }
    }

    /// Ends `held`: charges `record`, or releases it with `None`. It writes to storage: call it
    /// from a blocking thread.
    pub(crate) fn finish_blocking(
        &self,
        held: &Held,
        record: Option<CostRecord>,
    ) -> Result<(), BudgetError> {
        match (self, held) {
            (Budgets::Local(tracker), Held::Local(id)) => match record {
                Some(record) => tracker.settle(*id, record),
                None => tracker.release(*id),
            },
            (Budgets::Shared(shared), Held::Shared(hold)) => {
                if !shared.settle_blocking(hold, record.as_ref())? {
                    tracing::warn!(
                        hold = hold.id,
                        "a call outlived its hold's lease and was charged at its estimate meanwhile"
                    );
                }
                Ok(())
            }
            _ => Err(BudgetError::Poisoned),
        }
    }

    /// Releases `held` from anywhere, `Drop` included, for a call that never left: at once for a
    /// local reservation (it was never written down), in the background for a shared one.
    pub(crate) fn release_undispatched(&self, held: Held) {
        let report = |error: BudgetError| {
            tracing::warn!(error = %Report::new(&error), "could not release a reservation");
        };
        match (self, held) {
            (Budgets::Local(tracker), Held::Local(id)) => {
                if let Err(error) = tracker.release(id) {
                    report(error);
                }
            }
            (Budgets::Shared(shared), Held::Shared(hold)) => {
                let shared = shared.clone();
                let release = move || {
                    if let Err(error) = shared.settle_blocking(&hold, None) {
                        report(error);
                    }
                };
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => drop(runtime.spawn_blocking(release)),
                    Err(_) => release(),
                }
            }
            _ => {}
        }
    }

    /// What `agent` has used on the day of `now`.
    pub(crate) async fn spend(&self, agent: &str, now: u64) -> Result<Spend, BudgetError> {
        match self {
            Budgets::Local(tracker) => Ok(Spend {
                sats: tracker.try_daily_total(agent)?,
                tokens: tracker.daily_tokens(agent)?,
                outstanding: u64::try_from(tracker.outstanding_reservations(agent)?)
                    .unwrap_or(u64::MAX),
                status: tracker.try_check_budget(agent, utc_day_start(now))?,
            }),
            Budgets::Shared(shared) => {
                let spend = shared.spend(agent, now).await?;
                Ok(Spend {
                    sats: spend.sats,
                    tokens: spend.tokens,
                    outstanding: spend.outstanding,
                    status: shared.status(agent, now).await?,
                })
            }
        }
    }
}
