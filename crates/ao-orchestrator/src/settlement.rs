//! Settlement: how every call's reservation ends (settled at a cost, or released), and the
//! background writes that make the cost durable and audit it.
//!
//! A cost is counted in the budget at once, in memory, before the caller hears the result; the
//! ledger write and the audit entry follow on a blocking thread, counted in [`Pending`] so that
//! [`Orchestrator::drain`] can wait for them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ao_audit::AuditEvent;
use ao_budget::{CostRecord, MAX_STORED_AMOUNT, ReservationId};
use ao_routing::BackendConfig;
use ao_routing::BackendProvider;
use ao_routing::http::{BackendError, FallbackError};
use ao_types::TokenUsage;
use serde::Serialize;
use tokio::sync::Notify;

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

/// How a call ended, and so what its reservation becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The backend answered (a stream ran to its end).
    Completed(Metered),
    /// The backend cut a stream off.
    CutOff(Metered),
    /// The client dropped a stream before its end.
    Dropped(Metered),
    /// The caller went away while a backend was working: charged the estimate.
    Cancelled(TokenUsage),
    /// No backend answered, but the last one may have been paid (a malformed reply): charged
    /// the estimate.
    FailedCharged(TokenUsage),
    /// No backend answered and none did any work: the reservation is released.
    FailedReleased,
}

impl Outcome {
    /// The word the audit log records.
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed(_) => "completed",
            Outcome::CutOff(_) => "cut off",
            Outcome::Dropped(_) => "dropped",
            Outcome::Cancelled(_) => "cancelled",
            Outcome::FailedCharged(_) | Outcome::FailedReleased => "failed",
        }
    }

    /// The usage charged, and whether it is an estimate.
    fn charged(self) -> (TokenUsage, bool) {
        match self {
            Outcome::Completed(m) | Outcome::CutOff(m) | Outcome::Dropped(m) => {
                (m.usage(), m.is_estimated())
            }
            Outcome::Cancelled(usage) | Outcome::FailedCharged(usage) => (usage, true),
            Outcome::FailedReleased => (TokenUsage::default(), false),
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
    /// `None` once released: nothing is charged.
    reservation: Option<ReservationId>,
    provider: BackendProvider,
    outcome: Outcome,
    cost_sats: u64,
    estimate_sats: u64,
    /// When the call was admitted: the record's time if the clock cannot be read at settlement.
    admitted_at: u64,
    approval_id: Option<String>,
    error: Option<String>,
}

/// A call's reservation. Every path out of a call settles or releases it: dropped before the
/// request may have reached a backend, it is released; dropped after (the caller went away while
/// a backend was working), it is settled at the estimate, since the backend may have been paid.
pub(crate) struct ReservationGuard {
    orchestrator: Orchestrator,
    agent: String,
    id: Option<ReservationId>,
    estimate: TokenUsage,
    estimate_sats: u64,
    admitted_at: u64,
    approval_id: Option<String>,
    /// Set once the request may have reached this backend.
    dispatched_to: Option<BackendProvider>,
}

impl ReservationGuard {
    /// A guard over reservation `id`, made at `admitted_at` for `estimate` (priced `estimate_sats`).
    pub(crate) fn new(
        orchestrator: Orchestrator,
        agent: &str,
        id: ReservationId,
        estimate: TokenUsage,
        estimate_sats: u64,
        admitted_at: u64,
    ) -> Self {
        Self {
            orchestrator,
            agent: agent.to_owned(),
            id: Some(id),
            estimate,
            estimate_sats,
            admitted_at,
            approval_id: None,
            dispatched_to: None,
        }
    }

    /// The approval that allowed the call.
    pub(crate) fn set_approval(&mut self, approval_id: Option<String>) {
        self.approval_id = approval_id;
    }

    /// The approval that allowed the call, if one was needed.
    pub(crate) fn approval_id(&self) -> Option<&String> {
        self.approval_id.as_ref()
    }

    /// The reservation, while it is held.
    pub(crate) fn reservation(&self) -> Option<ReservationId> {
        self.id
    }

    /// The tokens the reservation was estimated at.
    pub(crate) fn estimate(&self) -> TokenUsage {
        self.estimate
    }

    /// From here on the request may reach `provider`: a drop charges the estimate.
    pub(crate) fn dispatched(&mut self, provider: BackendProvider) {
        self.dispatched_to = Some(provider);
    }

    /// Releases the reservation: nothing was spent.
    fn release(&mut self) {
        if let Some(id) = self.id.take()
            && let Err(error) = self.orchestrator.inner().tracker.release(id)
        {
            tracing::warn!(%error, "could not release a reservation");
        }
    }

    /// The settlement of this call, taking the reservation out of the guard. The cost is the
    /// metered usage at `chain`'s price for `provider`; a backend without a price there is charged
    /// the estimate instead, never nothing.
    pub(crate) fn settle(
        &mut self,
        chain: &[BackendConfig],
        provider: BackendProvider,
        outcome: Outcome,
        error: Option<String>,
    ) -> Settlement {
        let (usage, _) = outcome.charged();
        let (cost_sats, error) = match outcome {
            Outcome::FailedReleased => {
                self.release();
                (0, error)
            }
            Outcome::Cancelled(_) | Outcome::FailedCharged(_) => (self.estimate_sats, error),
            Outcome::Completed(_) | Outcome::CutOff(_) | Outcome::Dropped(_) => {
                match price(chain, provider, usage) {
                    Ok(cost) => (cost, error),
                    Err(unpriced) => {
                        tracing::error!(%unpriced, "charging the estimate instead");
                        (self.estimate_sats, Some(unpriced.to_string()))
                    }
                }
            }
        };
        Settlement {
            agent: self.agent.clone(),
            reservation: self.id.take(),
            provider,
            outcome,
            cost_sats,
            estimate_sats: self.estimate_sats,
            admitted_at: self.admitted_at,
            approval_id: self.approval_id.clone(),
            error,
        }
    }

    /// The settlement of a call no backend answered: charged the estimate if the last backend
    /// may have been paid (a malformed reply), released otherwise.
    pub(crate) fn fail(&mut self, chain: &[BackendConfig], fallback: &FallbackError) -> Settlement {
        let paid = fallback
            .attempts
            .last()
            .filter(|a| matches!(a.error, BackendError::Malformed { .. }))
            .map(|a| a.provider);
        let (provider, outcome) = match paid {
            Some(provider) => (provider, Outcome::FailedCharged(self.estimate)),
            None => (
                chain.first().map_or(BackendProvider::Local, |b| b.provider),
                Outcome::FailedReleased,
            ),
        };
        self.settle(chain, provider, outcome, Some(fallback.to_string()))
    }
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
                    Outcome::Cancelled(self.estimate),
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

#[derive(Serialize)]
struct CompletionAudit<'a> {
    backend: Option<&'a str>,
    outcome: &'a str,
    input_tokens: u64,
    output_tokens: u64,
    cost_sats: u64,
    estimate_sats: u64,
    estimated_usage: bool,
    approval_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Settlement {
    /// The cost recorded.
    pub(crate) fn cost_sats(&self) -> u64 {
        self.cost_sats
    }
}

impl Orchestrator {
    /// Counts a settlement in the budget now (in memory), and returns the blocking job that makes
    /// it durable and audits it.
    fn settlement_job(&self, s: Settlement) -> impl FnOnce() + Send + 'static {
        let inner = self.inner();
        let tracker = Arc::clone(&inner.tracker);
        let audit = Arc::clone(&inner.audit);
        let pending = Arc::clone(&inner.pending);
        // A clock that cannot be read does not date a cost to 1970: it keeps the admission time.
        let now = inner.clock.now().unwrap_or_else(|error| {
            tracing::error!(%error, "clock unreadable at settlement; dating the cost at admission");
            s.admitted_at
        });
        let (usage, estimated) = s.outcome.charged();
        let counted = s.reservation.map(|id| {
            let record = CostRecord {
                agent_name: s.agent.clone(),
                backend: s.provider,
                input_tokens: usage.input_tokens.min(MAX_STORED_AMOUNT / 2),
                output_tokens: usage.output_tokens.min(MAX_STORED_AMOUNT / 2),
                cost_sats: s.cost_sats.min(MAX_STORED_AMOUNT),
                timestamp: now,
            };
            tracker.settle_counted(id, record)
        });
        pending.start();
        move || {
            match counted {
                Some(Ok(unwritten)) => {
                    if let Err(error) = tracker.write(unwritten) {
                        tracing::error!(agent = s.agent, %error, "cost not written durably");
                    }
                }
                Some(Err(error)) => {
                    tracing::error!(agent = s.agent, %error, "cost not settled");
                }
                None => {}
            }
            let detail = CompletionAudit {
                backend: Some(s.provider.as_str()),
                outcome: s.outcome.as_str(),
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                cost_sats: s.cost_sats,
                estimate_sats: s.estimate_sats,
                estimated_usage: estimated,
                approval_id: s.approval_id.as_deref(),
                error: s.error,
            };
            match AuditEvent::from_serialize(now, "completion", s.agent.as_str(), &detail) {
                Ok(event) => {
                    if let Err(error) = audit.append(event) {
                        tracing::error!(agent = s.agent, %error, "completion not audited");
                    }
                }
                Err(error) => tracing::error!(agent = s.agent, %error, "completion not audited"),
            }
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
            tracing::error!(%error, "a settlement task failed");
        }
    }
}
