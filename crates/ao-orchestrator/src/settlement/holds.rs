//! Write-ahead holds: a call's reservation is written down before its request leaves, and
//! another one before every retry ([`BudgetGate`]); a crash never refunds, and what a crash left
//! held is audited when the next process charges it.

use std::sync::{Arc, Mutex};

use ao_audit::AuditEvent;
use ao_routing::BackendProvider;
use ao_routing::http::AttemptGate;
use ao_types::{Report, TokenUsage};
use async_trait::async_trait;

use super::audit::CompletionAudit;
use crate::budgets::{Budgets, Held};
use crate::orchestrator::Orchestrator;

impl Orchestrator {
    /// Charges the holds of dead gateways (past their lease) now and then, and audits each,
    /// when budgets are shared: whichever gateway finds them first charges them, once.
    pub(crate) fn recover_shared_holds(&self) {
        let Budgets::Shared(shared) = self.inner().budgets.clone() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let every = self.inner().renew_every;
        let orchestrator = Arc::downgrade(&self.inner_arc());
        drop(runtime.spawn(async move {
            loop {
                match shared.recover_expired().await {
                    Ok(holds) => {
                        let Some(inner) = orchestrator.upgrade() else {
                            return;
                        };
                        Orchestrator::from_inner(inner).audit_holds(holds);
                    }
                    Err(error) => {
                        tracing::warn!(error = %Report::new(&error), "cannot look for holds past their lease");
                        if orchestrator.strong_count() == 0 {
                            return;
                        }
                    }
                }
                tokio::time::sleep(every).await;
            }
        }));
    }

    /// Audits the calls a crash left dispatched and unsettled, which the tracker charged at their
    /// estimates when it opened the ledger.
    pub(crate) fn audit_recovered(&self) {
        self.audit_holds(self.inner().tracker.take_recovered());
    }

    /// Audits `holds`, charged at their estimates because their calls were never settled.
    fn audit_holds(&self, holds: Vec<ao_budget::Hold>) {
        let inner = self.inner();
        for hold in holds {
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
    pub(super) extra: Arc<Mutex<Vec<Held>>>,
}

#[async_trait]
impl AttemptGate for BudgetGate {
    async fn allow_another(&self, billed: u32) -> bool {
        let budgets = self.orchestrator.inner().budgets.clone();
        let now = match self.orchestrator.inner().clock.now() {
            Ok(now) => now,
            Err(_) => return false,
        };
        // The first reservation and the extras must cover every billed attempt and the next.
        loop {
            let held = self.extra.lock().map_or(usize::MAX, |extra| extra.len());
            if held >= usize::try_from(billed).unwrap_or(usize::MAX) {
                return held != usize::MAX;
            }
            let reserved = budgets
                .reserve(
                    &self.agent,
                    self.session_start,
                    self.estimate_sats,
                    self.estimate,
                    self.provider,
                    now,
                )
                .await;
            let id = match reserved {
                Ok(id) => id,
                Err(error) => {
                    tracing::info!(agent = self.agent, error = %Report::new(&error), "no budget for another attempt");
                    return false;
                }
            };
            // Written down before the attempt goes out, like the first.
            if let Err(error) = budgets.hold(&id, self.provider, self.estimate).await {
                tracing::error!(agent = self.agent, error = %Report::new(&error), "another attempt cannot be held");
                budgets.release_undispatched(id);
                return false;
            }
            match self.extra.lock() {
                Ok(mut extra) => extra.push(id),
                Err(_) => return false,
            }
        }
    }
}
