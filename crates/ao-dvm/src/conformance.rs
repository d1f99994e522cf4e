//! The conformance suite every [`PaymentLedger`] runs.
//!
//! An implementation calls [`run_all`] from one of its tests with a function that makes a fresh,
//! empty ledger. Each check panics with a message naming the broken promise.
//!
//! ```
//! # #[cfg(feature = "conformance")] {
//! ao_dvm::conformance::run_all(ao_dvm::MemoryPaymentLedger::new);
//! # }
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a conformance failure is a panic, by design"
)]

use crate::{Begun, PaymentLedger, PaymentRecord, PaymentState, StoredJob};

fn payment(hash: &str, job: &str, msats: u64) -> PaymentRecord {
    PaymentRecord {
        payment_hash: hash.to_owned(),
        job_id: job.to_owned(),
        amount_msats: msats,
        fee_msats: None,
        state: PaymentState::Paying,
    }
}

/// Runs every check against fresh ledgers made by `fresh`.
pub fn run_all<L, F>(fresh: F)
where
    L: PaymentLedger,
    F: Fn() -> L,
{
    an_invoice_is_begun_once(&fresh());
    a_paid_invoice_is_never_begun_again(&fresh());
    a_failed_invoice_may_be_tried_again(&fresh());
    payments_are_found_by_job(&fresh());
    jobs_are_kept_until_closed(&fresh());
}

fn an_invoice_is_begun_once(ledger: &dyn PaymentLedger) {
    let p = payment(&"a".repeat(64), "job1", 21_000);
    assert_eq!(
        ledger.begin_payment(&p).unwrap(),
        Begun::Go,
        "a new hash is paid"
    );
    match ledger.begin_payment(&p).unwrap() {
        Begun::Already(found) => {
            assert_eq!(
                found.state,
                PaymentState::Paying,
                "a begun payment reads `paying`"
            );
            assert_eq!(found.amount_msats, 21_000);
            assert_eq!(
                found.fee_msats, None,
                "no fee is known before the wallet answers"
            );
            assert_eq!(
                found.spent_msats(),
                22_000,
                "counted with the whole fee allowance"
            );
        }
        Begun::Go => panic!("an invoice being paid was begun a second time"),
    }
}

fn a_paid_invoice_is_never_begun_again(ledger: &dyn PaymentLedger) {
    let p = payment(&"b".repeat(64), "job1", 21_000);
    assert_eq!(ledger.begin_payment(&p).unwrap(), Begun::Go);
    ledger.payment_paid(&p.payment_hash, 500).unwrap();
    match ledger.begin_payment(&p).unwrap() {
        Begun::Already(found) => {
            assert_eq!(found.state, PaymentState::Paid);
            assert_eq!(found.fee_msats, Some(500), "the fee is kept");
            assert_eq!(found.spent_msats(), 21_500);
        }
        Begun::Go => panic!("a paid invoice was begun again"),
    }
}

fn a_failed_invoice_may_be_tried_again(ledger: &dyn PaymentLedger) {
    let p = payment(&"c".repeat(64), "job1", 1_000);
    assert_eq!(ledger.begin_payment(&p).unwrap(), Begun::Go);
    ledger.payment_failed(&p.payment_hash).unwrap();
    assert!(
        ledger.payments_for_job("job1").unwrap().is_empty(),
        "a failed payment cost nothing"
    );
    assert_eq!(
        ledger.begin_payment(&p).unwrap(),
        Begun::Go,
        "nothing was paid, so it may be tried"
    );
}

fn payments_are_found_by_job(ledger: &dyn PaymentLedger) {
    assert_eq!(
        ledger
            .begin_payment(&payment(&"d".repeat(64), "job2", 7))
            .unwrap(),
        Begun::Go
    );
    assert_eq!(
        ledger
            .begin_payment(&payment(&"e".repeat(64), "job3", 9))
            .unwrap(),
        Begun::Go
    );
    let found = ledger.payments_for_job("job2").unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].amount_msats, 7);
}

fn jobs_are_kept_until_closed(ledger: &dyn PaymentLedger) {
    let job = StoredJob {
        request_key: "k".repeat(64),
        job_id: "job4".into(),
        event_json: "{}".into(),
    };
    assert_eq!(ledger.open_job(&job.request_key).unwrap(), None);
    ledger.record_job(&job).unwrap();
    assert_eq!(
        ledger.open_job(&job.request_key).unwrap(),
        Some(job.clone())
    );
    ledger.close_job(&job.request_key).unwrap();
    assert_eq!(
        ledger.open_job(&job.request_key).unwrap(),
        None,
        "a closed job is gone"
    );
}
