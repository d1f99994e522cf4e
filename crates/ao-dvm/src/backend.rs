//! [`DvmBackend`]: a chat completion bought from a NIP-90 data vending machine and paid over
//! Lightning, within its bid.
//!
//! Money first. The caller (the orchestrator) reserves the bid and a fee allowance
//! ([`Backend::bid_sats`]) before the job is published. A `payment-required` is paid only if its invoice decodes, asks exactly its
//! `amount` tag and no more than the bid; the payment hash is written down before the wallet is
//! asked, so an invoice is paid at most once, across retries and restarts. The reply is billed
//! at what was paid, fees included ([`ChatResponse::billed_sats`]). Nothing paid and no result by
//! the timeout: [`BackendError::Unpaid`], released. Paid and no result:
//! [`BackendError::PaidUnanswered`], charged what was paid.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ao_routing::BackendConfig;
use ao_routing::http::{
    Backend, BackendError, ChatRequest, ChatResponse, ChatStream, estimate_tokens,
};
use ao_types::{Msats, TokenUsage};
use async_trait::async_trait;
use nostr::{Event, EventId, Filter, JsonUtil, Keys, Kind, PublicKey};
use nostr_relay_pool::{RelayOptions, RelayPool, RelayPoolNotification, SubscribeOptions};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast::error::RecvError;

use crate::invoice::check_invoice;
use crate::nip90::{
    Feedback, JobRequest, JobResult, JobStatus, KIND_FEEDBACK, check_temperature, result_kind,
};
use crate::payments::{
    Begun, PaymentLedger, PaymentLedgerError, PaymentRecord, StoredJob, fee_allowance_msats,
};
use crate::wallet::{Wallet, fee_allowance_sats};

/// A DVM backend's settings: the `[[backends]]` entry with `provider = "dvm"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DvmConfig {
    /// The relays the job is published on and answers are read from.
    pub relays: Vec<String>,
    /// The one service provider asked (`p`); `None` takes the first that answers within the bid.
    pub service: Option<PublicKey>,
    /// The job kind: 5050, text generation.
    pub job_kind: u16,
    /// The bid: the most a DVM may ask for one job, in sats. A call reserves it and the
    /// wallet's fee allowance.
    pub max_bid_sats: u64,
    /// How long a job may take, from publication to result.
    pub timeout: Duration,
}

/// A chat-completion backend that buys each reply from a NIP-90 data vending machine.
pub struct DvmBackend {
    config: BackendConfig,
    dvm: DvmConfig,
    keys: Keys,
    wallet: Arc<dyn Wallet>,
    ledger: Arc<dyn PaymentLedger>,
    pool: tokio::sync::OnceCell<RelayPool>,
}

impl fmt::Debug for DvmBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DvmBackend")
            .field("model", &self.config.model)
            .field("relays", &self.dvm.relays)
            .field("service", &self.dvm.service.map(|k| k.to_hex()))
            .field("max_bid_sats", &self.dvm.max_bid_sats)
            .field("wallet", &self.wallet)
            .finish_non_exhaustive()
    }
}

/// What a job has cost so far, and from whom answers are taken.
#[derive(Debug, Default)]
struct Spent {
    /// Paid (or possibly paid) for this job, fees included, in millisats.
    msats: u64,
    /// The provider paid, whose answers alone count from then on.
    to: Option<PublicKey>,
    /// Why an offer was refused, for the error if nothing else comes.
    refused: Option<String>,
}

/// What one event did to a job.
enum Step {
    Wait,
    Answer(JobResult),
    Fail(BackendError),
}

impl DvmBackend {
    /// A backend serving `config` (provider `dvm`; its prices are not used: a job costs what is
    /// paid for it) through `dvm`, paying with `wallet`, writing payments down in `ledger`.
    /// It connects to its relays at the first call, under a key of its own.
    pub fn new(
        config: BackendConfig,
        dvm: DvmConfig,
        wallet: Arc<dyn Wallet>,
        ledger: Arc<dyn PaymentLedger>,
    ) -> Self {
        Self {
            config,
            dvm,
            keys: Keys::generate(),
            wallet,
            ledger,
            pool: tokio::sync::OnceCell::new(),
        }
    }

    /// The wallet that pays.
    pub fn wallet(&self) -> &Arc<dyn Wallet> {
        &self.wallet
    }

    fn provider(&self) -> String {
        self.config.provider.to_string()
    }

    fn unpaid(&self, reason: impl Into<String>) -> BackendError {
        BackendError::Unpaid {
            provider: self.provider(),
            reason: reason.into(),
        }
    }

    fn bid_msats(&self) -> u64 {
        Msats::from_sats(self.dvm.max_bid_sats).0
    }

    /// The job `request` becomes.
    fn job(&self, request: &ChatRequest) -> JobRequest {
        let prompt = match request.messages.as_slice() {
            [only] => only.text(),
            all => all
                .iter()
                .map(|m| format!("{}: {}", m.role, m.text()))
                .collect::<Vec<_>>()
                .join("\n\n"),
        };
        let temperature = request
            .extra
            .get("temperature")
            .and_then(serde_json::Value::as_number)
            .and_then(|t| match check_temperature(&t.to_string()) {
                Ok(t) => Some(t),
                Err(error) => {
                    tracing::warn!(%error, "temperature not sent to the DVM");
                    None
                }
            });
        JobRequest {
            kind: self.dvm.job_kind,
            prompt,
            model: Some(self.config.model.clone()).filter(|m| !m.is_empty()),
            max_tokens: request.output_limit(),
            temperature,
            bid_msats: Some(self.bid_msats()),
            relays: self.dvm.relays.clone(),
            service: self.dvm.service,
        }
    }

    /// Runs `work` on the ledger on a blocking thread (a write waits for its `fsync`).
    async fn ledger<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn PaymentLedger) -> Result<T, PaymentLedgerError> + Send + 'static,
    ) -> Result<T, PaymentLedgerError> {
        let ledger = Arc::clone(&self.ledger);
        tokio::task::spawn_blocking(move || work(ledger.as_ref()))
            .await
            .map_err(|e| PaymentLedgerError {
                reason: e.to_string(),
            })?
    }

    /// The job event for `job`: the one already published for the same request and still open
    /// (a retry, maybe after a restart), or a new one, written down before it is published.
    async fn job_event(&self, job: &JobRequest, key: &str) -> Result<Event, BackendError> {
        let ledger_error = |e: PaymentLedgerError| self.unpaid(e.to_string());
        let lookup = key.to_owned();
        if let Some(stored) = self
            .ledger(move |l| l.open_job(&lookup))
            .await
            .map_err(ledger_error)?
        {
            match Event::from_json(&stored.event_json) {
                Ok(event) if event.verify().is_ok() => return Ok(event),
                _ => tracing::warn!(
                    job = stored.job_id,
                    "a stored job does not check; publishing a new one"
                ),
            }
        }
        let event = job
            .to_event(&self.keys)
            .map_err(|e| self.unpaid(e.to_string()))?;
        let stored = StoredJob {
            request_key: key.to_owned(),
            job_id: event.id.to_hex(),
            event_json: event.as_json(),
        };
        self.ledger(move |l| l.record_job(&stored))
            .await
            .map_err(ledger_error)?;
        Ok(event)
    }

    /// The relay pool, connected at the first call.
    async fn pool(&self) -> Result<&RelayPool, BackendError> {
        self.pool
            .get_or_try_init(|| async {
                let pool = RelayPool::default();
                for url in &self.dvm.relays {
                    pool.add_relay(url.as_str(), RelayOptions::default())
                        .await
                        .map_err(|e| BackendError::Connect {
                            provider: self.provider(),
                            reason: format!("relay `{url}`: {e}"),
                        })?;
                }
                pool.connect().await;
                pool.wait_for_connection(Duration::from_secs(10)).await;
                Ok(pool)
            })
            .await
    }

    /// Publishes `event` (again, for a job taken up) and follows it until its result, a
    /// failure, or the timeout.
    async fn follow(&self, event: &Event, key: &str) -> Result<(JobResult, u64), BackendError> {
        let pool = self.pool().await?;
        let job = event.id;
        let result = result_kind(self.dvm.job_kind)
            .ok_or_else(|| self.unpaid(format!("{} is not a job kind", self.dvm.job_kind)))?;
        let notifications = pool.notifications();
        let filter = Filter::new()
            .kinds([Kind::from(KIND_FEEDBACK), Kind::from(result)])
            .event(job);
        let subscription = pool
            .subscribe(vec![filter], SubscribeOptions::default())
            .await
            .map_err(|e| BackendError::Connect {
                provider: self.provider(),
                reason: e.to_string(),
            })?
            .val;
        let job_hex = job.to_hex();
        let mut spent = Spent::default();
        for payment in self
            .ledger(move |l| l.payments_for_job(&job_hex))
            .await
            .map_err(|e| self.unpaid(e.to_string()))?
        {
            spent.msats = spent.msats.saturating_add(payment.spent_msats());
        }
        let published = pool.send_event(event).await;
        if published.as_ref().map_or(true, |o| o.success.is_empty()) && spent.msats == 0 {
            pool.unsubscribe(&subscription).await;
            self.close(key).await;
            return Err(BackendError::Connect {
                provider: self.provider(),
                reason: "no relay took the job request".into(),
            });
        }
        let outcome = self
            .listen(notifications, &subscription, &job, result, &mut spent)
            .await;
        pool.unsubscribe(&subscription).await;
        match outcome {
            Some(Ok(answer)) => {
                self.close(key).await;
                Ok((answer, spent.msats))
            }
            Some(Err(error)) => {
                self.close(key).await;
                Err(error)
            }
            // Paid and no result: the job stays open, so that a retry takes it up and never
            // pays it again.
            None if spent.msats > 0 => Err(BackendError::PaidUnanswered {
                provider: self.provider(),
                paid_sats: Msats(spent.msats).to_sats_ceil(),
                reason: format!("no result within {:?}", self.dvm.timeout),
            }),
            None => {
                self.close(key).await;
                Err(self.unpaid(spent.refused.unwrap_or_else(|| {
                    format!(
                        "no data vending machine answered within {:?}",
                        self.dvm.timeout
                    )
                })))
            }
        }
    }

    /// Reads the subscription's events until the job's answer, a failure, or the timeout
    /// (`None`).
    async fn listen(
        &self,
        mut notifications: tokio::sync::broadcast::Receiver<RelayPoolNotification>,
        subscription: &nostr::SubscriptionId,
        job: &EventId,
        result: u16,
        spent: &mut Spent,
    ) -> Option<Result<JobResult, BackendError>> {
        let deadline = tokio::time::Instant::now() + self.dvm.timeout;
        let mut seen = HashSet::new();
        loop {
            let notification = match tokio::time::timeout_at(deadline, notifications.recv()).await {
                Err(_) | Ok(Err(RecvError::Closed)) => return None,
                Ok(Err(RecvError::Lagged(_))) => continue,
                Ok(Ok(notification)) => notification,
            };
            let RelayPoolNotification::Event {
                subscription_id,
                event,
                ..
            } = notification
            else {
                continue;
            };
            if subscription_id != *subscription || !seen.insert(event.id) {
                continue;
            }
            match self.step(&event, job, result, spent).await {
                Step::Wait => {}
                Step::Answer(answer) => return Some(Ok(answer)),
                Step::Fail(error) => return Some(Err(error)),
            }
        }
    }

    async fn close(&self, key: &str) {
        let key = key.to_owned();
        if let Err(error) = self.ledger(move |l| l.close_job(&key)).await {
            tracing::warn!(%error, "a finished job is still marked open");
        }
    }

    /// What `event` does to job `job`.
    async fn step(&self, event: &Event, job: &EventId, result: u16, spent: &mut Spent) -> Step {
        let expected = self.dvm.service.or(spent.to);
        if event.kind.as_u16() == result {
            return match JobResult::from_event(event, job, result) {
                Ok(answer) if expected.is_none_or(|k| k == answer.provider) => Step::Answer(answer),
                Ok(_) => Step::Wait,
                Err(error) => {
                    tracing::debug!(%error, "ignored a result");
                    Step::Wait
                }
            };
        }
        let feedback = match Feedback::from_event(event, job) {
            Ok(f) if expected.is_none_or(|k| k == f.provider) => f,
            Ok(_) => return Step::Wait,
            Err(error) => {
                tracing::debug!(%error, "ignored feedback");
                return Step::Wait;
            }
        };
        match feedback.status {
            JobStatus::PaymentRequired if spent.msats == 0 => self.pay(job, &feedback, spent).await,
            JobStatus::Error if spent.msats > 0 => Step::Fail(BackendError::PaidUnanswered {
                provider: self.provider(),
                paid_sats: Msats(spent.msats).to_sats_ceil(),
                reason: format!(
                    "the data vending machine reported an error: \"{}\"",
                    quoted(feedback.extra.as_deref())
                ),
            }),
            JobStatus::Error => self.refuse(
                spent,
                format!(
                    "the data vending machine reported an error: \"{}\"",
                    quoted(feedback.extra.as_deref())
                ),
            ),
            _ => Step::Wait,
        }
    }

    /// An offer not taken: the end of a targeted job; for an open one, a reason kept while
    /// other providers may still answer.
    fn refuse(&self, spent: &mut Spent, reason: String) -> Step {
        if self.dvm.service.is_some() {
            return Step::Fail(self.unpaid(reason));
        }
        spent.refused = Some(reason);
        Step::Wait
    }

    /// Pays a `payment-required`, if it checks, at most once.
    async fn pay(&self, job: &EventId, feedback: &Feedback, spent: &mut Spent) -> Step {
        let Some((msats, Some(bolt11))) = feedback.amount.as_ref().map(|a| (a.msats, &a.bolt11))
        else {
            return self.refuse(
                spent,
                "payment-required without an amount and an invoice".into(),
            );
        };
        let invoice = match check_invoice(bolt11, msats, self.bid_msats()) {
            Ok(invoice) => invoice,
            Err(error) => return self.refuse(spent, format!("not paid: {error}")),
        };
        let record = PaymentRecord {
            payment_hash: invoice.payment_hash.clone(),
            job_id: job.to_hex(),
            amount_msats: invoice.amount_msats,
            fee_msats: None,
            state: crate::PaymentState::Paying,
        };
        let begun = match self.ledger(move |l| l.begin_payment(&record)).await {
            Ok(begun) => begun,
            Err(error) => return Step::Fail(self.unpaid(error.to_string())),
        };
        if let Begun::Already(found) = begun {
            tracing::info!(
                hash = found.payment_hash,
                "invoice already paid; not paying it again"
            );
            spent.msats = found.spent_msats();
            spent.to = Some(feedback.provider);
            return Step::Wait;
        }
        let hash = invoice.payment_hash.clone();
        match self.wallet.pay_invoice(&invoice.bolt11).await {
            Ok(payment) => {
                spent.msats = invoice.amount_msats.saturating_add(payment.fee_msats);
                spent.to = Some(feedback.provider);
                let fee = payment.fee_msats;
                if let Err(error) = self.ledger(move |l| l.payment_paid(&hash, fee)).await {
                    // Still `paying` in the ledger: counted as paid, never paid again.
                    tracing::error!(%error, "a payment made is not marked paid");
                }
                Step::Wait
            }
            Err(error) if error.nothing_paid() => {
                if let Err(e) = self.ledger(move |l| l.payment_failed(&hash)).await {
                    tracing::error!(error = %e, "a failed payment is still marked paying");
                }
                Step::Fail(self.unpaid(error.to_string()))
            }
            Err(error) => {
                // The wallet may have paid, with a fee not known: counted as paid with the whole
                // fee allowance, and never paid again.
                tracing::warn!(%error, "the wallet's answer is unknown; counting the invoice paid");
                spent.msats = invoice
                    .amount_msats
                    .saturating_add(fee_allowance_msats(invoice.amount_msats));
                spent.to = Some(feedback.provider);
                Step::Wait
            }
        }
    }
}

/// The most characters of a DVM's own words an error quotes.
const QUOTED_CHARS: usize = 200;

/// A DVM's text, as an error may quote it: control characters removed, at most
/// [`QUOTED_CHARS`] characters. Whoever runs the DVM wrote it.
fn quoted(text: Option<&str>) -> String {
    text.unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(QUOTED_CHARS)
        .collect()
}

/// What identifies a request across retries and restarts: the SHA-256 of the job's content.
fn request_key(job: &JobRequest) -> String {
    let canonical = serde_json::json!([
        job.kind,
        job.prompt,
        job.model,
        job.max_tokens,
        job.temperature,
        job.bid_msats,
        job.service.map(|k| k.to_hex()),
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

#[async_trait]
impl Backend for DvmBackend {
    fn config(&self) -> &BackendConfig {
        &self.config
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, BackendError> {
        let job = self.job(request);
        let key = request_key(&job);
        let event = self.job_event(&job, &key).await?;
        let (answer, spent_msats) = self.follow(&event, &key).await?;
        let usage = TokenUsage::new(
            request.estimated_input_tokens(),
            estimate_tokens(&answer.content),
        );
        Ok(ChatResponse::assistant(
            &format!("dvm-{}", event.id.to_hex()),
            answer.created,
            &self.config.model,
            &answer.content,
            usage,
            Some(Msats(spent_msats).to_sats_ceil()),
        ))
    }

    async fn stream(&self, _request: &ChatRequest) -> Result<ChatStream, BackendError> {
        Err(self.unpaid("the dvm backend does not stream: ask without `stream`"))
    }

    /// The bid and the wallet's fee allowance ([`fee_allowance_sats`]).
    fn bid_sats(&self) -> Option<u64> {
        Some(
            self.dvm
                .max_bid_sats
                .saturating_add(fee_allowance_sats(self.dvm.max_bid_sats)),
        )
    }
}
