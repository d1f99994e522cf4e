//! Settlement: how every call's reservation ends (settled at a cost, or released), and the
//! background writes that make the cost durable and audit it.
//!
//! A cost is counted in the budget at once, in memory, before the caller hears the result; the
//! ledger write and the audit entry follow on a blocking thread, counted in [`Pending`] so that
//! [`Orchestrator::drain`] can wait for them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ao_budget::{CostRecord, MAX_STORED_AMOUNT, RatePermit};
use ao_routing::BackendConfig;
use ao_routing::BackendProvider;
use ao_routing::http::{Attempt, FallbackError};
use ao_types::{Report, TokenUsage};
use tokio::sync::Notify;

mod audit;
mod holds;

use audit::audit_completion;

pub(crate) use holds::BudgetGate;

use crate::budgets::{Budgets, Held};
use crate::error::OrchestratorError;
use crate::orchestrator::Orchestrator;

/// The usage a call is charged for, and where that figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metered {
    /// The backend reported it.
    Reported(TokenUsage),
    /// The backend reported none: the orchestrator estimated it (from the reservation's estimate,
    /// or from the text a stream delivered).
    Estimated(TokenUsage),
}

impl Metered {
    /// The tokens, whichever way they were found.
    pub fn usage(&self) -> TokenUsage {
        match *self {
            Metered::Reported(usage) | Metered::Estimated(usage) => usage,
        }
    }

    /// Whether the usage is an estimate rather than the backend's report.
    pub fn is_estimated(&self) -> bool {
        matches!(self, Metered::Estimated(_))
    }
}

/// How a call ended, and so what its reservations become. What is charged when is the table in
/// `docs/CHARGES.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The backend answered (a stream ran to its end).
    Completed(Metered),
    /// The backend cut a stream off.
    CutOff(Metered),
    /// The client dropped a stream before its end.
    Dropped(Metered),
    /// The caller went away while a backend was working: every attempt reserved is charged its
    /// estimate.
    Cancelled,
    /// No backend answered: each attempt that may have been billed is charged its estimate; with
    /// none, the reservations are released.
    Failed,
}

impl Outcome {
    /// The word the audit log records.
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed(_) => "completed",
            Outcome::CutOff(_) => "cut off",
            Outcome::Dropped(_) => "dropped",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
        }
    }
}

/// Counts background writes so that shutdown can wait for them.
#[derive(Default)]
pub(crate) struct Pending {
    count: AtomicUsize,
    idle: Notify,
}

impl Pending {
    fn start(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    fn finish(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Writes not yet finished.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until no write is pending.
    pub(crate) async fn idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.count() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// What a call is recorded as.
pub(crate) struct Settlement {
    agent: String,
    /// The call's first reservation: settled at `cost_sats`, or released.
    reservation: Option<Held>,
    /// Whether the reservations are released rather than charged.
    released: bool,
    /// Reservations made for retries; released once the charge is counted.
    extra: Vec<Held>,
    provider: BackendProvider,
    outcome: Outcome,
    /// The tokens charged, and whether they are (partly) estimated.
    usage: TokenUsage,
    estimated: bool,
    cost_sats: u64,
    /// What was reserved for the call, all attempts together.
    reserved_sats: u64,
    estimate_sats: u64,
    /// Failed attempts before the answer (or in all) that the providers may have billed.
    billed_failures: u32,
    /// When the call was admitted: the record's time if the clock cannot be read at settlement.
    admitted_at: u64,
    approval_id: Option<String>,
    error: Option<String>,
}

/// A call's reservations. Every path out of a call settles or releases them: dropped before the
/// request may have reached a backend, they are released; dropped after (the caller went away
/// while a backend was working), every attempt reserved is charged its estimate, since each may
/// have been billed.
pub(crate) struct ReservationGuard {
    orchestrator: Orchestrator,
    agent: String,
    session_start: u64,
    id: Option<Held>,
    /// One more reservation of the estimate for each retry the budget allowed.
    extra: Arc<Mutex<Vec<Held>>>,
    estimate: TokenUsage,
    estimate_sats: u64,
    admitted_at: u64,
    approval_id: Option<String>,
    /// Set once the request may have reached this backend.
    dispatched_to: Option<BackendProvider>,
    /// The call's place among its agent's calls in flight.
    rate_permit: Option<RatePermit>,
    /// Ends the renewal of the call's reservations when the guard goes.
    renewing: Option<tokio::sync::oneshot::Sender<()>>,
    /// What the answering backend billed, when it bills per call (a DVM paid over Lightning):
    /// charged instead of the reported usage at its prices.
    billed: Option<u64>,
    /// What the failed attempts cost, when some backend knew it exactly; else each billed
    /// attempt is charged the estimate.
    failed_cost: Option<u64>,
}

impl ReservationGuard {
    /// Keeps the call's rate-limit place until the guard goes.
    pub(crate) fn hold_rate_permit(&mut self, permit: RatePermit) {
        self.rate_permit = Some(permit);
    }

    /// A guard over reservation `id` of `agent`'s session `session_start`, made at `admitted_at`
    /// for `estimate` (priced `estimate_sats`).
    pub(crate) fn new(
        orchestrator: Orchestrator,
        agent: &str,
        session_start: u64,
        id: Held,
        estimate: (TokenUsage, u64),
        admitted_at: u64,
    ) -> Self {
        Self {
            orchestrator,
            agent: agent.to_owned(),
            session_start,
            id: Some(id),
            extra: Arc::new(Mutex::new(Vec::new())),
            estimate: estimate.0,
            estimate_sats: estimate.1,
            admitted_at,
            approval_id: None,
            dispatched_to: None,
            rate_permit: None,
            renewing: None,
            billed: None,
            failed_cost: None,
        }
    }

    /// The answering backend billed `sats` for the call (a DVM paid over Lightning), or `None`
    /// for a backend billed per token.
    pub(crate) fn billed(&mut self, sats: Option<u64>) {
        self.billed = sats;
    }

    /// Prices the failed attempts of `attempts` that may have been billed: what the backend
    /// knew it cost, else the estimate.
    pub(crate) fn failed_attempts(&mut self, attempts: &[Attempt]) {
        self.failed_cost = Some(
            attempts
                .iter()
                .filter(|a| a.may_have_billed())
                .map(|a| a.error.billed_sats().unwrap_or(self.estimate_sats))
                .fold(0, u64::saturating_add),
        );
    }

    /// The approval that allowed the call.
    pub(crate) fn set_approval(&mut self, approval_id: Option<String>) {
        self.approval_id = approval_id;
    }

    /// The approval that allowed the call, if one was needed.
    pub(crate) fn approval_id(&self) -> Option<&String> {
        self.approval_id.as_ref()
    }

    /// Renews the call's reservations every so often until the guard goes: a long stream's, or
    /// any call's when budgets are shared (their holds have leases other gateways watch).
    pub(crate) fn keep_renewed(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        self.renewing = Some(stop);
        let budgets = self.orchestrator.inner().budgets.clone();
        let every = self.orchestrator.inner().renew_every;
        let extra = Arc::clone(&self.extra);
        let first = self.id.clone();
        drop(runtime.spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(every) => {}
                }
                let mut held: Vec<Held> = first.iter().cloned().collect();
                if let Ok(extra) = extra.lock() {
                    held.extend(extra.iter().cloned());
                }
                for reservation in &held {
                    if let Err(error) = budgets.renew(reservation).await {
                        tracing::warn!(error = %Report::new(&error), "could not renew a reservation");
                    }
                }
            }
        }));
    }

    /// The tokens the reservation was estimated at.
    pub(crate) fn estimate(&self) -> TokenUsage {
        self.estimate
    }

    /// From here on the request may reach `provider`: a drop charges the estimate.
    pub(crate) fn dispatched(&mut self, provider: BackendProvider) {
        self.dispatched_to = Some(provider);
    }

    /// The gate the backend pool asks before a retry: it reserves another full estimate, so that
    /// no attempt is made that the budget does not cover.
    pub(crate) fn gate(&self) -> BudgetGate {
        BudgetGate {
            orchestrator: self.orchestrator.clone(),
            agent: self.agent.clone(),
            session_start: self.session_start,
            estimate: self.estimate,
            estimate_sats: self.estimate_sats,
            provider: self.dispatched_to.unwrap_or(BackendProvider::Local),
            extra: Arc::clone(&self.extra),
        }
    }

    /// The call's first reservation, written down before its request goes to `provider`.
    pub(crate) async fn hold(
        &mut self,
        provider: BackendProvider,
    ) -> Result<(), OrchestratorError> {
        let held = self.id.clone().ok_or(OrchestratorError::NoLiveBackend {
            agent: self.agent.clone(),
        })?;
        self.orchestrator
            .inner()
            .budgets
            .hold(&held, provider, self.estimate)
            .await
            .map_err(OrchestratorError::Budget)
    }

    fn take_extra(&self) -> Vec<Held> {
        self.extra
            .lock()
            .map(|mut extra| std::mem::take(&mut *extra))
            .unwrap_or_default()
    }

    /// Releases every reservation at once: nothing was spent, and nothing was dispatched, so no
    /// reservation is held in the ledger and this writes nothing.
    fn release(&mut self) {
        let budgets = self.orchestrator.inner().budgets.clone();
        for held in self.id.take().into_iter().chain(self.take_extra()) {
            budgets.release_undispatched(held);
        }
    }

    /// The settlement of this call, taking its reservations out of the guard, as the table in
    /// `docs/CHARGES.md` says. A metered usage is priced at `chain`'s price for `provider`; a
    /// backend without a price there is charged the estimate instead, never nothing.
    pub(crate) fn settle(
        &mut self,
        chain: &[BackendConfig],
        provider: BackendProvider,
        outcome: Outcome,
        billed_failures: u32,
        error: Option<String>,
    ) -> Settlement {
        let held = 1 + u64::try_from(self.extra.lock().map_or(0, |e| e.len())).unwrap_or(0);
        let each = |n: u64| {
            (
                TokenUsage::new(
                    self.estimate.input_tokens.saturating_mul(n),
                    self.estimate.output_tokens.saturating_mul(n),
                ),
                self.estimate_sats.saturating_mul(n),
            )
        };
        let (failed_usage, failed_cost) = each(u64::from(billed_failures));
        let failed_cost = self.failed_cost.take().unwrap_or(failed_cost);
        let mut error = error;
        let (usage, estimated, cost_sats) = match outcome {
            Outcome::Failed if billed_failures == 0 => (TokenUsage::default(), false, 0),
            Outcome::Failed => (failed_usage, true, failed_cost),
            Outcome::Cancelled => {
                let (usage, cost) = each(held);
                (usage, true, cost)
            }
            Outcome::Completed(m) | Outcome::CutOff(m) | Outcome::Dropped(m) => {
                let priced = match self.billed.take() {
                    Some(sats) => Ok(sats),
                    None => price(chain, provider, m.usage()),
                };
                let cost = priced.unwrap_or_else(|unpriced| {
                    tracing::error!(error = %unpriced, "charging the estimate instead");
                    error = Some(unpriced.to_string());
                    self.estimate_sats
                });
                (
                    add_usage(m.usage(), failed_usage),
                    m.is_estimated() || billed_failures > 0,
                    cost.saturating_add(failed_cost),
                )
            }
        };
        Settlement {
            agent: self.agent.clone(),
            reservation: self.id.take(),
            released: matches!(outcome, Outcome::Failed) && billed_failures == 0,
            extra: self.take_extra(),
            provider,
            outcome,
            usage,
            estimated,
            cost_sats,
            reserved_sats: self.estimate_sats.saturating_mul(held),
            estimate_sats: self.estimate_sats,
            billed_failures,
            admitted_at: self.admitted_at,
            approval_id: self.approval_id.clone(),
            error,
        }
    }

    /// The settlement of a call no backend answered: each attempt that may have been billed is
    /// charged the estimate; with none, the reservations are released.
    pub(crate) fn fail(&mut self, chain: &[BackendConfig], fallback: &FallbackError) -> Settlement {
        let provider = fallback
            .attempts
            .iter()
            .rev()
            .find(|a| a.may_have_billed())
            .or(fallback.attempts.last())
            .map(|a| a.provider)
            .or_else(|| chain.first().map(|b| b.provider))
            .unwrap_or(BackendProvider::Local);
        self.failed_attempts(&fallback.attempts);
        self.settle(
            chain,
            provider,
            Outcome::Failed,
            fallback.billed_attempts(),
            Some(Report::new(fallback).to_string()),
        )
    }
}

fn add_usage(a: TokenUsage, b: TokenUsage) -> TokenUsage {
    TokenUsage::new(
        a.input_tokens.saturating_add(b.input_tokens),
        a.output_tokens.saturating_add(b.output_tokens),
    )
}

impl Drop for ReservationGuard {
    fn drop(&mut self) {
        if self.id.is_none() {
            return;
        }
        match self.dispatched_to {
            None => self.release(),
            Some(provider) => {
                let settlement = self.settle(
                    &[],
                    provider,
                    Outcome::Cancelled,
                    0,
                    Some("the caller went away while a backend was working".into()),
                );
                self.orchestrator.record_in_background(settlement);
            }
        }
    }
}

/// The cost of `usage` at `provider`'s prices in `chain`.
pub(crate) fn price(
    chain: &[BackendConfig],
    provider: BackendProvider,
    usage: TokenUsage,
) -> Result<u64, OrchestratorError> {
    chain
        .iter()
        .find(|b| b.provider == provider)
        .map(|b| b.calculate_cost(usage.input_tokens, usage.output_tokens))
        .ok_or(OrchestratorError::Unpriced { provider })
}

impl Settlement {
    /// The cost recorded.
    pub(crate) fn cost_sats(&self) -> u64 {
        self.cost_sats
    }

    /// What the call cost beyond what was reserved for it: a provider billed more than the
    /// estimate bounded.
    fn overage_sats(&self) -> u64 {
        if self.reservation.is_none() {
            return 0;
        }
        self.cost_sats.saturating_sub(self.reserved_sats)
    }
}

impl Orchestrator {
    /// Counts a settlement in the budget now (in memory), and returns the blocking job that makes
    /// it durable and audits it.
    fn settlement_job(&self, s: Settlement) -> impl FnOnce() + Send + 'static {
        let inner = self.inner();
        let audit = Arc::clone(&inner.audit);
        let pending = Arc::clone(&inner.pending);
        // A clock that cannot be read does not date a cost to 1970: it keeps the admission time.
        let now = inner.clock.now().unwrap_or_else(|error| {
            tracing::error!(error = %Report::new(&error), "clock unreadable at settlement; dating the cost at admission");
            s.admitted_at
        });
        let usage = s.usage;
        let overage = s.overage_sats();
        if overage > 0 {
            inner.overage_sats.fetch_add(overage, Ordering::Relaxed);
            tracing::warn!(
                agent = s.agent,
                overage,
                "a provider billed more than was reserved"
            );
        }
        let record = CostRecord {
            agent_name: s.agent.clone(),
            backend: s.provider,
            input_tokens: usage.input_tokens.min(MAX_STORED_AMOUNT / 2),
            output_tokens: usage.output_tokens.min(MAX_STORED_AMOUNT / 2),
            cost_sats: s.cost_sats.min(MAX_STORED_AMOUNT),
            timestamp: now,
        };
        let budgets = inner.budgets.clone();
        // A local charge counts at once, in memory, before the caller hears the result; it is
        // made durable, and retries' reservations released, in the background.
        let counted = match (&budgets, &s.reservation, s.released) {
            (Budgets::Local(tracker), Some(Held::Local(id)), false) => {
                Some(tracker.settle_counted(*id, record.clone()))
            }
            _ => None,
        };
        pending.start();
        move || {
            let report = |what: &str, error: &ao_budget::BudgetError| {
                tracing::error!(agent = s.agent, error = %Report::new(error), "{what}");
            };
            match (counted, &s.reservation, &budgets) {
                (Some(Ok(unwritten)), _, Budgets::Local(tracker)) => {
                    if let Err(error) = tracker.write(unwritten) {
                        report("cost not written durably", &error);
                    }
                }
                (Some(Err(error)), _, _) => report("cost not settled", &error),
                (_, Some(held), _) => {
                    let charge = (!s.released).then(|| record.clone());
                    if let Err(error) = budgets.finish_blocking(held, charge) {
                        report("cost not settled", &error);
                    }
                }
                _ => {}
            }
            // Counted first, released second: the budget never shows less than was spent.
            for held in &s.extra {
                if let Err(error) = budgets.finish_blocking(held, None) {
                    report("a retry's reservation not released", &error);
                }
            }
            audit_completion(audit.as_ref(), now, &s, overage);
            pending.finish();
        }
    }

    /// Records a settlement in the background (counted for [`drain`](Orchestrator::drain)), from
    /// anywhere, `Drop` included.
    pub(crate) fn record_in_background(&self, settlement: Settlement) {
        let job = self.settlement_job(settlement);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(job)),
            Err(_) => job(),
        }
    }

    /// Records a settlement: awaited, or in the background.
    pub(crate) async fn record(&self, settlement: Settlement, background: bool) {
        let job = tokio::task::spawn_blocking(self.settlement_job(settlement));
        if !background && let Err(error) = job.await {
            tracing::error!(error = %Report::new(&error), "a settlement task failed");
        }
    }
}
