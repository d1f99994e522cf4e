//! Invoices paid for an agent (a tool that buys something), through the same wallet and budget
//! as the `dvm` backend: the amount, and a fee allowance, are reserved and held before the wallet
//! is asked; the payment is charged at what it cost, fees included; a payment the wallet says it
//! did not make is released. Each invoice is written down by payment hash first, so it is paid at
//! most once.

use ao_audit::AuditEvent;
use ao_budget::CostRecord;
use ao_dvm::{
    Begun, CheckedInvoice, PaymentLedger, PaymentLedgerError, PaymentRecord, PaymentState,
    decode_invoice, fee_allowance_sats,
};
use ao_routing::BackendProvider;
use ao_types::{Msats, Report, TokenUsage, utc_day_start};
use serde::Serialize;

use crate::budgets::Held;
use crate::error::OrchestratorError;
use crate::orchestrator::{Orchestrator, Payments};

/// An invoice paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePaid {
    /// Its payment hash, hex.
    pub payment_hash: String,
    /// Its amount, in millisats.
    pub amount_msats: u64,
    /// The routing fee, in millisats.
    pub fee_msats: u64,
    /// What the agent was charged: amount and fee, in sats rounded up.
    pub cost_sats: u64,
    /// The preimage, hex: the proof of payment.
    pub preimage: String,
}

#[derive(Serialize)]
struct PaymentAudit<'a> {
    payment_hash: &'a str,
    amount_msats: u64,
    fee_msats: Option<u64>,
    cost_sats: u64,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Orchestrator {
    /// Pays `bolt11` for `agent` from the configured wallet, within the agent's budget: its
    /// amount and a fee allowance (1%, at least 1 sat) are reserved and held first, so that no
    /// payment passes the budget; it is charged what it cost, fees included, rounded up to
    /// whole sats, and audited. An invoice already paid (or being paid) is never paid again.
    pub async fn pay_invoice(
        &self,
        agent: &str,
        bolt11: &str,
    ) -> Result<InvoicePaid, OrchestratorError> {
        let inner = self.inner();
        let payments = inner.payments.clone().ok_or(OrchestratorError::NoWallet)?;
        if !inner.agents.contains_key(agent) {
            return Err(OrchestratorError::UnknownAgent {
                agent: agent.to_owned(),
            });
        }
        let invoice = decode_invoice(bolt11).map_err(OrchestratorError::Invoice)?;
        let amount_sats = Msats(invoice.amount_msats).to_sats_ceil();
        let (held, now) = self.reserve_payment(agent, amount_sats).await?;
        self.begin_payment(&payments, agent, &held, now, &invoice)
            .await?;
        let hash = invoice.payment_hash.clone();
        let audit = |fee, cost_sats, outcome, error| PaymentAudit {
            payment_hash: &invoice.payment_hash,
            amount_msats: invoice.amount_msats,
            fee_msats: fee,
            cost_sats,
            outcome,
            error,
        };
        match payments.wallet.pay_invoice(&invoice.bolt11).await {
            Ok(paid) => {
                let fee = paid.fee_msats;
                if let Err(error) = ledger(&payments, move |l| l.payment_paid(&hash, fee)).await {
                    tracing::error!(%error, "a payment made is not marked paid");
                }
                let cost_sats = Msats(invoice.amount_msats.saturating_add(fee)).to_sats_ceil();
                self.finish(agent, &held, now, Some(cost_sats)).await;
                self.audit_payment(agent, now, &audit(Some(fee), cost_sats, "paid", None));
                Ok(InvoicePaid {
                    payment_hash: invoice.payment_hash.clone(),
                    amount_msats: invoice.amount_msats,
                    fee_msats: fee,
                    cost_sats,
                    preimage: paid.preimage,
                })
            }
            Err(error) if error.nothing_paid() => {
                if let Err(e) = ledger(&payments, move |l| l.payment_failed(&hash)).await {
                    tracing::error!(error = %e, "a failed payment is still marked paying");
                }
                self.finish(agent, &held, now, None).await;
                let shown = Some(Report::new(&error).to_string());
                self.audit_payment(agent, now, &audit(None, 0, "not paid", shown));
                Err(OrchestratorError::Wallet(error))
            }
            Err(error) => {
                // The wallet may have paid, with a fee not known: charged the amount and the
                // whole fee allowance, never paid again.
                let charged = amount_sats.saturating_add(fee_allowance_sats(amount_sats));
                self.finish(agent, &held, now, Some(charged)).await;
                let shown = Some(Report::new(&error).to_string());
                self.audit_payment(agent, now, &audit(None, charged, "unknown", shown));
                Err(OrchestratorError::Wallet(error))
            }
        }
    }

    /// Reserves and holds `amount_sats` and its fee allowance for `agent`; returns the
    /// reservation and when it was made.
    async fn reserve_payment(
        &self,
        agent: &str,
        amount_sats: u64,
    ) -> Result<(Held, u64), OrchestratorError> {
        let inner = self.inner();
        let reserve_sats = amount_sats.saturating_add(fee_allowance_sats(amount_sats));
        let now = inner.clock.now()?;
        let held = inner
            .budgets
            .reserve(
                agent,
                utc_day_start(now),
                reserve_sats,
                TokenUsage::default(),
                BackendProvider::Dvm,
                now,
            )
            .await?;
        if let Err(error) = inner
            .budgets
            .hold(&held, BackendProvider::Dvm, TokenUsage::default())
            .await
        {
            inner.budgets.release_undispatched(held);
            return Err(error.into());
        }
        Ok((held, now))
    }

    /// Writes `invoice` down as being paid, or releases `held` and says why it is not paid.
    async fn begin_payment(
        &self,
        payments: &Payments,
        agent: &str,
        held: &Held,
        now: u64,
        invoice: &CheckedInvoice,
    ) -> Result<(), OrchestratorError> {
        let record = PaymentRecord {
            payment_hash: invoice.payment_hash.clone(),
            job_id: format!("invoice:{agent}"),
            amount_msats: invoice.amount_msats,
            fee_msats: None,
            state: PaymentState::Paying,
        };
        let refused = match ledger(payments, move |l| l.begin_payment(&record)).await {
            Ok(Begun::Go) => return Ok(()),
            Ok(Begun::Already(found)) => OrchestratorError::AlreadyPaid {
                payment_hash: found.payment_hash,
            },
            Err(error) => OrchestratorError::PaymentLedger(error),
        };
        self.finish(agent, held, now, None).await;
        Err(refused)
    }

    /// Charges `held` at `cost_sats`, or releases it with `None`. The charge is dated now, or
    /// at `admitted` if the clock cannot be read.
    async fn finish(&self, agent: &str, held: &Held, admitted: u64, cost_sats: Option<u64>) {
        let inner = self.inner_arc();
        let now = inner.clock.now().unwrap_or(admitted);
        let record = cost_sats.map(|cost_sats| CostRecord {
            agent_name: agent.to_owned(),
            backend: BackendProvider::Dvm,
            input_tokens: 0,
            output_tokens: 0,
            cost_sats,
            timestamp: now,
        });
        let held = held.clone();
        let job = tokio::task::spawn_blocking(move || inner.budgets.finish_blocking(&held, record));
        match job.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(error = %Report::new(&error), "an invoice payment not settled")
            }
            Err(error) => {
                tracing::error!(error = %Report::new(&error), "an invoice settlement failed")
            }
        }
    }

    fn audit_payment(&self, agent: &str, now: u64, detail: &PaymentAudit<'_>) {
        let appended = AuditEvent::from_serialize(now, "invoice_payment", agent, detail)
            .map_err(|e| Report::new(&e).to_string())
            .and_then(|event| {
                self.inner()
                    .audit
                    .append(event)
                    .map_err(|e| Report::new(&e).to_string())
            });
        if let Err(error) = appended {
            tracing::error!(agent, error, "an invoice payment not audited");
        }
    }
}

/// Runs `work` on the payment ledger on a blocking thread.
async fn ledger<T: Send + 'static>(
    payments: &Payments,
    work: impl FnOnce(&dyn PaymentLedger) -> Result<T, PaymentLedgerError> + Send + 'static,
) -> Result<T, PaymentLedgerError> {
    let ledger = std::sync::Arc::clone(&payments.ledger);
    tokio::task::spawn_blocking(move || work(ledger.as_ref()))
        .await
        .map_err(|e| PaymentLedgerError {
            reason: e.to_string(),
        })?
}
