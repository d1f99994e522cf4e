//! `ao_dvm::PaymentLedger` on PostgreSQL: each invoice written down (`paying`, committed with
//! `synchronous_commit` on) before any gateway's wallet is asked, so that no invoice is paid
//! twice, whichever gateway pays and whenever one restarts.

use ao_dvm::{Begun, PaymentLedger, PaymentLedgerError, PaymentRecord, PaymentState, StoredJob};
use tokio_postgres::Row;

use super::PgStore;
use super::error::{PgError, int, uint};

fn ledger_error(error: PgError) -> PaymentLedgerError {
    PaymentLedgerError {
        reason: ao_types::Report::new(&error).to_string(),
    }
}

const COLUMNS: &str = "payment_hash, job_id, amount_msats, fee_msats, state";

fn record(row: &Row) -> Result<PaymentRecord, PgError> {
    let fee: Option<i64> = row.try_get(3)?;
    let state: String = row.try_get(4)?;
    Ok(PaymentRecord {
        payment_hash: row.try_get(0)?,
        job_id: row.try_get(1)?,
        amount_msats: uint("dvm_payments.amount_msats", row.try_get(2)?)?,
        fee_msats: fee.map(|f| uint("dvm_payments.fee_msats", f)).transpose()?,
        // The CHECK constraint allows only the three names; anything else is counted as
        // possibly paid, never as failed.
        state: PaymentState::parse(&state).unwrap_or(PaymentState::Paying),
    })
}

impl PaymentLedger for PgStore {
    fn begin_payment(&self, payment: &PaymentRecord) -> Result<Begun, PaymentLedgerError> {
        let payment = payment.clone();
        let amount =
            int("dvm_payments.amount_msats", payment.amount_msats).map_err(ledger_error)?;
        self.call(move |mut client| async move {
            let tx = client.transaction().await?;
            tx.batch_execute("SET LOCAL synchronous_commit = on")
                .await?;
            // Inserted, or a failed try taken over: this gateway pays. A row being paid or paid
            // is left alone, whoever wrote it.
            let taken = tx
                .query_opt(
                    "INSERT INTO dvm_payments (payment_hash, job_id, amount_msats, state)
                     VALUES ($1, $2, $3, 'paying')
                     ON CONFLICT (payment_hash) DO UPDATE SET
                        job_id = excluded.job_id, amount_msats = excluded.amount_msats,
                        fee_msats = NULL, state = 'paying', updated_at = now()
                     WHERE dvm_payments.state = 'failed'
                     RETURNING payment_hash",
                    &[&payment.payment_hash, &payment.job_id, &amount],
                )
                .await?;
            let begun = match taken {
                Some(_) => Begun::Go,
                None => {
                    let row = tx
                        .query_one(
                            &format!("SELECT {COLUMNS} FROM dvm_payments WHERE payment_hash = $1"),
                            &[&payment.payment_hash],
                        )
                        .await?;
                    Begun::Already(record(&row)?)
                }
            };
            tx.commit().await?;
            Ok(begun)
        })
        .map_err(ledger_error)
    }

    fn payment_paid(&self, payment_hash: &str, fee_msats: u64) -> Result<(), PaymentLedgerError> {
        let hash = payment_hash.to_owned();
        let fee = int("dvm_payments.fee_msats", fee_msats).map_err(ledger_error)?;
        self.call(move |client| async move {
            client
                .execute(
                    "UPDATE dvm_payments SET state = 'paid', fee_msats = $2, updated_at = now()
                     WHERE payment_hash = $1",
                    &[&hash, &fee],
                )
                .await?;
            Ok(())
        })
        .map_err(ledger_error)
    }

    fn payment_failed(&self, payment_hash: &str) -> Result<(), PaymentLedgerError> {
        let hash = payment_hash.to_owned();
        self.call(move |client| async move {
            client
                .execute(
                    "UPDATE dvm_payments SET state = 'failed', updated_at = now()
                     WHERE payment_hash = $1 AND state = 'paying'",
                    &[&hash],
                )
                .await?;
            Ok(())
        })
        .map_err(ledger_error)
    }

    fn payments_for_job(&self, job_id: &str) -> Result<Vec<PaymentRecord>, PaymentLedgerError> {
        let job = job_id.to_owned();
        self.call(move |client| async move {
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM dvm_payments WHERE job_id = $1 AND state <> 'failed'
                         ORDER BY updated_at, payment_hash"
                    ),
                    &[&job],
                )
                .await?
                .iter()
                .map(record)
                .collect()
        })
        .map_err(ledger_error)
    }

    fn open_job(&self, request_key: &str) -> Result<Option<StoredJob>, PaymentLedgerError> {
        let key = request_key.to_owned();
        self.call(move |client| async move {
            let row = client
                .query_opt(
                    "SELECT request_key, job_id, event FROM dvm_jobs WHERE request_key = $1",
                    &[&key],
                )
                .await?;
            row.map(|r| {
                Ok(StoredJob {
                    request_key: r.try_get(0)?,
                    job_id: r.try_get(1)?,
                    event_json: r.try_get(2)?,
                })
            })
            .transpose()
        })
        .map_err(ledger_error)
    }

    fn record_job(&self, job: &StoredJob) -> Result<(), PaymentLedgerError> {
        let job = job.clone();
        self.call(move |client| async move {
            client
                .execute(
                    "INSERT INTO dvm_jobs (request_key, job_id, event) VALUES ($1, $2, $3)
                     ON CONFLICT (request_key) DO UPDATE SET
                        job_id = excluded.job_id, event = excluded.event, created_at = now()",
                    &[&job.request_key, &job.job_id, &job.event_json],
                )
                .await?;
            Ok(())
        })
        .map_err(ledger_error)
    }

    fn close_job(&self, request_key: &str) -> Result<(), PaymentLedgerError> {
        let key = request_key.to_owned();
        self.call(move |client| async move {
            client
                .execute("DELETE FROM dvm_jobs WHERE request_key = $1", &[&key])
                .await?;
            Ok(())
        })
        .map_err(ledger_error)
    }
}
