//! `ao_dvm::PaymentLedger` on SQLite: Lightning payments to data vending machines, each written
//! down (`paying`) and `fsync`ed before the wallet is asked, so that no invoice is paid twice,
//! across retries and restarts; and the jobs published and not yet answered.

use std::time::{SystemTime, UNIX_EPOCH};

use ao_dvm::{Begun, PaymentLedger, PaymentLedgerError, PaymentRecord, PaymentState, StoredJob};
use rusqlite::{OptionalExtension, Row, params};

use crate::error::StoreError;
use crate::store::SqliteStore;

fn ledger_error(error: StoreError) -> PaymentLedgerError {
    PaymentLedgerError {
        reason: ao_types::Report::new(&error).to_string(),
    }
}

/// Unix seconds, for the rows' `updated_at` (a note for people; nothing decides by it).
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn stored(value: u64, field: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::TooLarge { field, value })
}

fn record(row: &Row<'_>) -> rusqlite::Result<PaymentRecord> {
    let amount: i64 = row.get(2)?;
    let fee: Option<i64> = row.get(3)?;
    let state: String = row.get(4)?;
    Ok(PaymentRecord {
        payment_hash: row.get(0)?,
        job_id: row.get(1)?,
        amount_msats: u64::try_from(amount).unwrap_or(u64::MAX),
        fee_msats: fee.map(|f| u64::try_from(f).unwrap_or(u64::MAX)),
        // The CHECK constraint allows only the three names; anything else is counted as
        // possibly paid, never as failed.
        state: PaymentState::parse(&state).unwrap_or(PaymentState::Paying),
    })
}

const COLUMNS: &str = "payment_hash, job_id, amount_msats, fee_msats, state";

impl PaymentLedger for SqliteStore {
    fn begin_payment(&self, payment: &PaymentRecord) -> Result<Begun, PaymentLedgerError> {
        let payment = payment.clone();
        let amount =
            stored(payment.amount_msats, "dvm_payments.amount_msats").map_err(ledger_error)?;
        self.write(move |conn| {
            let found = conn
                .query_row(
                    &format!("SELECT {COLUMNS} FROM dvm_payments WHERE payment_hash = ?1"),
                    params![payment.payment_hash],
                    record,
                )
                .optional()?;
            match found {
                Some(found) if found.state != PaymentState::Failed => Ok(Begun::Already(found)),
                _ => {
                    conn.execute(
                        "INSERT INTO dvm_payments (payment_hash, job_id, amount_msats, fee_msats, state, updated_at)
                         VALUES (?1, ?2, ?3, NULL, 'paying', ?4)
                         ON CONFLICT (payment_hash) DO UPDATE SET
                            job_id = excluded.job_id, amount_msats = excluded.amount_msats,
                            fee_msats = NULL, state = 'paying', updated_at = excluded.updated_at",
                        params![payment.payment_hash, payment.job_id, amount, now()],
                    )?;
                    Ok(Begun::Go)
                }
            }
        })
        .map_err(ledger_error)
    }

    fn payment_paid(&self, payment_hash: &str, fee_msats: u64) -> Result<(), PaymentLedgerError> {
        let hash = payment_hash.to_owned();
        let fee = stored(fee_msats, "dvm_payments.fee_msats").map_err(ledger_error)?;
        self.write(move |conn| {
            conn.execute(
                "UPDATE dvm_payments SET state = 'paid', fee_msats = ?2, updated_at = ?3
                 WHERE payment_hash = ?1",
                params![hash, fee, now()],
            )?;
            Ok(())
        })
        .map_err(ledger_error)
    }

    fn payment_failed(&self, payment_hash: &str) -> Result<(), PaymentLedgerError> {
        let hash = payment_hash.to_owned();
        self.write(move |conn| {
            conn.execute(
                "UPDATE dvm_payments SET state = 'failed', updated_at = ?2
                 WHERE payment_hash = ?1 AND state = 'paying'",
                params![hash, now()],
            )?;
            Ok(())
        })
        .map_err(ledger_error)
    }

    fn payments_for_job(&self, job_id: &str) -> Result<Vec<PaymentRecord>, PaymentLedgerError> {
        let read = || -> Result<Vec<PaymentRecord>, StoreError> {
            let conn = self.reader()?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM dvm_payments WHERE job_id = ?1 AND state != 'failed'
                 ORDER BY rowid"
            ))?;
            let rows = stmt.query_map(params![job_id], record)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        };
        read().map_err(ledger_error)
    }

    fn open_job(&self, request_key: &str) -> Result<Option<StoredJob>, PaymentLedgerError> {
        let read = || -> Result<Option<StoredJob>, StoreError> {
            let conn = self.reader()?;
            Ok(conn
                .query_row(
                    "SELECT request_key, job_id, event FROM dvm_jobs WHERE request_key = ?1",
                    params![request_key],
                    |r| {
                        Ok(StoredJob {
                            request_key: r.get(0)?,
                            job_id: r.get(1)?,
                            event_json: r.get(2)?,
                        })
                    },
                )
                .optional()?)
        };
        read().map_err(ledger_error)
    }

    fn record_job(&self, job: &StoredJob) -> Result<(), PaymentLedgerError> {
        let job = job.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO dvm_jobs (request_key, job_id, event, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![job.request_key, job.job_id, job.event_json, now()],
            )?;
            Ok(())
        })
        .map_err(ledger_error)
    }

    fn close_job(&self, request_key: &str) -> Result<(), PaymentLedgerError> {
        let key = request_key.to_owned();
        self.write(move |conn| {
            conn.execute("DELETE FROM dvm_jobs WHERE request_key = ?1", params![key])?;
            Ok(())
        })
        .map_err(ledger_error)
    }
}
