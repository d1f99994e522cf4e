//! Payments at most once: each invoice is written down by its payment hash, as `paying`, before
//! the wallet is asked, and marked `paid` (with its fee) after. An invoice whose hash is already
//! written down is never paid again, across retries and restarts; one left `paying` (the process
//! died while the wallet worked, or the wallet never answered) is counted as paid.
//!
//! The jobs published are written down too, so that a retry of the same request after a restart
//! takes up the job already paid for instead of publishing (and paying for) a new one.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    /// Written down; the wallet was (or is being) asked. It may have been paid.
    Paying,
    /// The wallet paid it.
    Paid,
    /// The wallet said it paid nothing; it may be tried again.
    Failed,
}

impl PaymentState {
    /// The state's stored name: `paying`, `paid` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Paying => "paying",
            PaymentState::Paid => "paid",
            PaymentState::Failed => "failed",
        }
    }

    /// The state of stored name `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            PaymentState::Paying,
            PaymentState::Paid,
            PaymentState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// One invoice, as written down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// The invoice's payment hash, 64 hex characters.
    pub payment_hash: String,
    /// The job it pays for (the job request's event id, hex).
    pub job_id: String,
    /// The invoice's amount, in millisats.
    pub amount_msats: u64,
    /// The fee the wallet reported, once paid.
    pub fee_msats: Option<u64>,
    /// Where it stands.
    pub state: PaymentState,
}

impl PaymentRecord {
    /// What the payment cost (or may have cost), in millisats: the amount and the fee the wallet
    /// reported; while the fee is not known (the payment is `paying`: the process died, or the
    /// wallet never answered), the amount and the whole fee allowance, so that what may have
    /// been paid is never counted short.
    pub fn spent_msats(&self) -> u64 {
        let fee = self
            .fee_msats
            .unwrap_or_else(|| fee_allowance_msats(self.amount_msats));
        self.amount_msats.saturating_add(fee)
    }
}

/// [`fee_allowance_sats`](crate::fee_allowance_sats) for a payment of `amount_msats`, in millisats.
pub fn fee_allowance_msats(amount_msats: u64) -> u64 {
    ao_types::Msats::from_sats(crate::fee_allowance_sats(
        ao_types::Msats(amount_msats).to_sats_ceil(),
    ))
    .0
}

/// What [`PaymentLedger::begin_payment`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// The hash is now written down as `paying`: ask the wallet.
    Go,
    /// The hash was already written down (`paying` or `paid`): do not pay it again.
    Already(PaymentRecord),
}

/// A job request published, kept until its result comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJob {
    /// What identifies the request: the SHA-256 (hex) of the job's content.
    pub request_key: String,
    /// The job request's event id, hex.
    pub job_id: String,
    /// The signed job request event, as JSON, to publish again as it was.
    pub event_json: String,
}

/// The payment ledger could not be read or written. Nothing is paid then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the payment ledger cannot be used: {reason}")]
pub struct PaymentLedgerError {
    /// What failed.
    pub reason: String,
}

/// Where payments and open jobs are written down, durably, before the wallet is asked.
/// `ao-store`'s `SqliteStore` implements it; [`MemoryPaymentLedger`] is for tests.
pub trait PaymentLedger: Send + Sync + fmt::Debug {
    /// Writes `payment` down as `paying` if its hash is new (or its earlier try `failed`), and
    /// says whether to pay it. Must be durable when it returns [`Begun::Go`].
    fn begin_payment(&self, payment: &PaymentRecord) -> Result<Begun, PaymentLedgerError>;

    /// Marks `payment_hash` paid, with the wallet's fee.
    fn payment_paid(&self, payment_hash: &str, fee_msats: u64) -> Result<(), PaymentLedgerError>;

    /// Marks `payment_hash` failed: the wallet said it paid nothing.
    fn payment_failed(&self, payment_hash: &str) -> Result<(), PaymentLedgerError>;

    /// The payments made (or begun) for job `job_id`, not counting failed ones.
    fn payments_for_job(&self, job_id: &str) -> Result<Vec<PaymentRecord>, PaymentLedgerError>;

    /// The open job for `request_key`, if one was published and has no result yet.
    fn open_job(&self, request_key: &str) -> Result<Option<StoredJob>, PaymentLedgerError>;

    /// Writes `job` down before it is published.
    fn record_job(&self, job: &StoredJob) -> Result<(), PaymentLedgerError>;

    /// Closes the job of `request_key`: its result came, or it ended with nothing paid.
    fn close_job(&self, request_key: &str) -> Result<(), PaymentLedgerError>;
}

/// A [`PaymentLedger`] in memory: payments at most once in this process only.
#[derive(Debug, Default)]
pub struct MemoryPaymentLedger {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    payments: HashMap<String, PaymentRecord>,
    jobs: HashMap<String, StoredJob>,
}

impl MemoryPaymentLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemoryInner) -> T) -> Result<T, PaymentLedgerError> {
        // A poisoned lock is a ledger that cannot be trusted: nothing is paid.
        let mut inner = self.inner.lock().map_err(|_| PaymentLedgerError {
            reason: "a thread panicked while holding the ledger".into(),
        })?;
        Ok(f(&mut inner))
    }
}

impl PaymentLedger for MemoryPaymentLedger {
    fn begin_payment(&self, payment: &PaymentRecord) -> Result<Begun, PaymentLedgerError> {
        self.with(|inner| match inner.payments.get(&payment.payment_hash) {
            Some(found) if found.state != PaymentState::Failed => Begun::Already(found.clone()),
            _ => {
                let record = PaymentRecord {
                    state: PaymentState::Paying,
                    fee_msats: None,
                    ..payment.clone()
                };
                inner.payments.insert(payment.payment_hash.clone(), record);
                Begun::Go
            }
        })
    }

    fn payment_paid(&self, payment_hash: &str, fee_msats: u64) -> Result<(), PaymentLedgerError> {
        self.with(|inner| {
            if let Some(p) = inner.payments.get_mut(payment_hash) {
                p.state = PaymentState::Paid;
                p.fee_msats = Some(fee_msats);
            }
        })
    }

    fn payment_failed(&self, payment_hash: &str) -> Result<(), PaymentLedgerError> {
        self.with(|inner| {
            if let Some(p) = inner.payments.get_mut(payment_hash) {
                p.state = PaymentState::Failed;
            }
        })
    }

    fn payments_for_job(&self, job_id: &str) -> Result<Vec<PaymentRecord>, PaymentLedgerError> {
        self.with(|inner| {
            inner
                .payments
                .values()
                .filter(|p| p.job_id == job_id && p.state != PaymentState::Failed)
                .cloned()
                .collect()
        })
    }

    fn open_job(&self, request_key: &str) -> Result<Option<StoredJob>, PaymentLedgerError> {
        self.with(|inner| inner.jobs.get(request_key).cloned())
    }

    fn record_job(&self, job: &StoredJob) -> Result<(), PaymentLedgerError> {
        self.with(|inner| {
            inner.jobs.insert(job.request_key.clone(), job.clone());
        })
    }

    fn close_job(&self, request_key: &str) -> Result<(), PaymentLedgerError> {
        self.with(|inner| {
            inner.jobs.remove(request_key);
        })
    }
}
