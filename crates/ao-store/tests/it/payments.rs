//! `ao_dvm::PaymentLedger` on SQLite: the conformance suite, and payments that outlive the
//! process.

use ao_dvm::{Begun, PaymentLedger, PaymentRecord, PaymentState};
use ao_store::SqliteStore;

use crate::TempStore;

#[test]
fn sqlite_payment_ledger_conforms() {
    ao_dvm::conformance::run_all(|| TempStore::new().leak());
}

#[test]
fn a_payment_begun_before_a_restart_is_never_begun_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ao.db");
    let payment = PaymentRecord {
        payment_hash: "f".repeat(64),
        job_id: "job".into(),
        amount_msats: 21_000,
        fee_msats: None,
        state: PaymentState::Paying,
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.begin_payment(&payment).unwrap(), Begun::Go);
        // The process dies here, while the wallet works: nothing marks the payment paid.
    }
    let store = SqliteStore::open(&path).unwrap();
    match store.begin_payment(&payment).unwrap() {
        Begun::Already(found) => {
            assert_eq!(found.state, PaymentState::Paying);
            assert_eq!(
                found.spent_msats(),
                22_000,
                "counted as paid, fee allowance and all"
            );
        }
        Begun::Go => panic!("a payment that may have been made was begun again"),
    }
    assert_eq!(store.payments_for_job("job").unwrap().len(), 1);
}
