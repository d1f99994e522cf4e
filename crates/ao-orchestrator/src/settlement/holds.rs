//! Write-ahead holds: a call's reservation is written down before its request leaves, and
//! another one before every retry ([`BudgetGate`]); a crash never refunds, and what a crash left
//! held is audited when the next process charges it.

use std::sync::{Arc, Mutex};

use ao_audit::AuditEvent;
use ao_budget::ReservationId;
use ao_routing::BackendProvider;
use ao_routing::http::AttemptGate;
use ao_types::{Report, TokenUsage};
use async_trait::async_trait;

use super::CompletionAudit;
use crate::error::OrchestratorError;
use crate::orchestrator::Orchestrator;

impl Orchestrator {
    /// Writes reservation `id` down in the ledger before its request goes to `provider`, off the
    /// async executor. A hold that cannot be written stops the call: nothing is dispatched that a
    /// crash could refund.
    pub(crate) async fn hold(
        &self,
        id: ReservationId,
        provider: BackendProvider,
        estimate: TokenUsage,
    ) -> Result<(), OrchestratorError> {
        let tracker = Arc::clone(&self.inner().tracker);
        tokio::task::spawn_blocking(move || tracker.hold(id, provider, estimate))
            .await
            .map_err(|_| OrchestratorError::Budget(ao_budget::BudgetError::Poisoned))?
            .map_err(OrchestratorError::Budget)
    }

    /// Audits the calls a crash left dispatched and unsettled, which the tracker charged at their
    /// estimates when it opened the ledger.
    pub(crate) fn audit_recovered(&self) {
        let inner = self.inner();
        for hold in inner.tracker.take_recovered() {
            let detail = CompletionAudit {
                backend: Some(hold.backend.as_str()),
                outcome: "recovered",
                input_tokens: hold.input_tokens,
                output_tokens: hold.output_tokens,
                cost_sats: hold.cost_sats,
                estimate_sats: hold.cost_sats,
                estimated_usage: true,
                billed_failed_attempts: 0,
                overage_sats: 0,
                approval_id: None,
                error: Some(
                    "dispatched before the process stopped and never settled; charged at its estimate"
                        .into(),
                ),
            };
            let appended = AuditEvent::from_serialize(
                hold.created_at,
                "completion",
                hold.agent_name.as_str(),
                &detail,
            )
            .map_err(|e| Report::new(&e).to_string())
            .and_then(|event| {
                inner
                    .audit
                    .append(event)
                    .map_err(|e| Report::new(&e).to_string())
            });
            if let Err(error) = appended {
                tracing::error!(
                    agent = hold.agent_name,
                    error,
                    "recovered charge not audited"
                );
            }
        }
    }
}

/// Reserves another full estimate before each retry: a retry goes ahead only when the budget
/// covers it, beside every attempt so far that may have been billed.
pub(crate) struct BudgetGate {
    pub(super) orchestrator: Orchestrator,
    pub(super) agent: String,
    pub(super) session_start: u64,
    pub(super) estimate: TokenUsage,
    pub(super) estimate_sats: u64,
    pub(super) provider: BackendProvider,
    pub(super) extra: Arc<Mutex<Vec<ReservationId>>>,
}

#[async_trait]
impl AttemptGate for BudgetGate {
    async fn allow_another(&self, billed: u32) -> bool {
        let tracker = &self.orchestrator.inner().tracker;
        // The first reservation and the extras must cover every billed attempt and the next.
        loop {
            let held = self.extra.lock().map_or(usize::MAX, |extra| extra.len());
            if held >= usize::try_from(billed).unwrap_or(usize::MAX) {
                return held != usize::MAX;
            }
            let id = match tracker.reserve_with_tokens(
                &self.agent,
                self.session_start,
                self.estimate_sats,
                self.estimate.total(),
            ) {
                Ok(id) => id,
                Err(error) => {
                    tracing::info!(agent = self.agent, error = %Report::new(&error), "no budget for another attempt");
                    return false;
                }
            };
            // Written down before the attempt goes out, like the first.
            if let Err(error) = self
                .orchestrator
                .hold(id, self.provider, self.estimate)
                .await
            {
                tracing::error!(agent = self.agent, error = %Report::new(&error), "another attempt cannot be held");
                if let Err(error) = tracker.release(id) {
                    tracing::warn!(error = %Report::new(&error), "could not release a reservation");
                }
                return false;
            }
            match self.extra.lock() {
                Ok(mut extra) => extra.push(id),
                Err(_) => return false,
            }
        }
    }
}
