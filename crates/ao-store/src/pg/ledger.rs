//! The cost ledger and write-ahead holds on PostgreSQL: `ao_budget::Ledger` for [`PgStore`].
//! Every record is written with its audit entry, in the same transaction.

use ao_budget::{CostRecord, Hold, Ledger, LedgerError};
use ao_types::BackendProvider;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use std::borrow::Cow;

use super::PgStore;
use super::chain::Chain;
use super::error::{PgError, int, uint};
use crate::rows::{CostDetail, cost_event};

fn backend(name: &str) -> Result<BackendProvider, PgError> {
    name.parse().map_err(|_| PgError::OutOfRange {
        field: "backend",
        value: name.to_owned(),
    })
}

fn record(row: &Row) -> Result<CostRecord, PgError> {
    Ok(CostRecord {
        agent_name: row.try_get(0)?,
        backend: backend(row.try_get(1)?)?,
        input_tokens: uint("input_tokens", row.try_get(2)?)?,
        output_tokens: uint("output_tokens", row.try_get(3)?)?,
        cost_sats: uint("cost_sats", row.try_get(4)?)?,
        timestamp: uint("timestamp", row.try_get(5)?)?,
    })
}

fn hold(row: &Row) -> Result<Hold, PgError> {
    Ok(Hold {
        id: row.try_get(0)?,
        agent_name: row.try_get(1)?,
        backend: backend(row.try_get(2)?)?,
        input_tokens: uint("input_tokens", row.try_get(3)?)?,
        output_tokens: uint("output_tokens", row.try_get(4)?)?,
        cost_sats: uint("cost_sats", row.try_get(5)?)?,
        created_at: uint("created_at", row.try_get(6)?)?,
    })
}

/// A record as the parameters of its row.
type RecordRow = (String, &'static str, i64, i64, i64, i64);

pub(crate) fn record_rows(records: &[CostRecord]) -> Result<Vec<RecordRow>, PgError> {
    records
        .iter()
        .map(|r| {
            Ok((
                r.agent_name.clone(),
                r.backend.as_str(),
                int("input_tokens", r.input_tokens)?,
                int("output_tokens", r.output_tokens)?,
                int("cost_sats", r.cost_sats)?,
                int("timestamp", r.timestamp)?,
            ))
        })
        .collect()
}

/// Inserts `rows` into `cost_records` inside the caller's transaction, each with the audit
/// entry that vouches for it, chained on `chain`.
pub(crate) async fn insert_records(
    tx: &deadpool_postgres::Transaction<'_>,
    chain: &mut Chain,
    rows: &[RecordRow],
) -> Result<(), PgError> {
    let insert = tx
        .prepare_cached(
            "INSERT INTO cost_records
             (agent, backend, input_tokens, output_tokens, cost_sats, timestamp)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
        )
        .await?;
    for row in rows {
        let seq: i64 = tx
            .query_one(&insert, &[&row.0, &row.1, &row.2, &row.3, &row.4, &row.5])
            .await?
            .try_get(0)?;
        let detail = CostDetail {
            seq,
            backend: Cow::Borrowed(row.1),
            input_tokens: row.2,
            output_tokens: row.3,
            cost_sats: row.4,
            timestamp: row.5,
            adopted: false,
        };
        chain.push(cost_event(&row.0, &detail)?);
    }
    Ok(())
}

impl PgStore {
    fn load(&self, agent: Option<&str>, from: u64, until: u64) -> Result<Vec<CostRecord>, PgError> {
        if from >= until {
            return Ok(Vec::new());
        }
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let until = i64::try_from(until).ok();
        let agent = agent.map(str::to_owned);
        self.call(move |client| async move {
            let sql = "SELECT agent, backend, input_tokens, output_tokens, cost_sats, timestamp
                 FROM cost_records
                 WHERE timestamp >= $1 AND ($2::BIGINT IS NULL OR timestamp < $2)
                   AND ($3::TEXT IS NULL OR agent = $3)
                 ORDER BY timestamp, seq";
            let params: [&(dyn ToSql + Sync); 3] = [&from, &until, &agent];
            client
                .query(sql, &params)
                .await?
                .iter()
                .map(record)
                .collect()
        })
    }
}

impl Ledger for PgStore {
    fn append(&self, records: &[CostRecord]) -> Result<(), LedgerError> {
        self.settle_holds(&[], records)
    }

    fn load_range(&self, from: u64, until: u64) -> Result<Vec<CostRecord>, LedgerError> {
        self.load(None, from, until).map_err(LedgerError::read)
    }

    fn load_agent_range(
        &self,
        agent: &str,
        from: u64,
        until: u64,
    ) -> Result<Vec<CostRecord>, LedgerError> {
        self.load(Some(agent), from, until)
            .map_err(LedgerError::read)
    }

    fn health_check(&self) -> Result<(), LedgerError> {
        self.check().map_err(LedgerError::write)
    }

    fn hold(&self, hold: &Hold) -> Result<(), LedgerError> {
        let params = (|| {
            Ok::<_, PgError>((
                hold.id.clone(),
                hold.agent_name.clone(),
                hold.backend.as_str(),
                int("input_tokens", hold.input_tokens)?,
                int("output_tokens", hold.output_tokens)?,
                int("cost_sats", hold.cost_sats)?,
                int("created_at", hold.created_at)?,
            ))
        })()
        .map_err(LedgerError::write)?;
        self.call(move |client| async move {
            client
                .execute(
                    "INSERT INTO holds
                     (id, agent, backend, input_tokens, output_tokens, cost_sats, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &params.0, &params.1, &params.2, &params.3, &params.4, &params.5, &params.6,
                    ],
                )
                .await?;
            Ok(())
        })
        .map_err(LedgerError::write)
    }

    fn settle_holds(&self, ids: &[String], records: &[CostRecord]) -> Result<(), LedgerError> {
        if ids.is_empty() && records.is_empty() {
            return Ok(());
        }
        let rows = record_rows(records).map_err(LedgerError::write)?;
        let ids = ids.to_vec();
        self.call(move |mut client| async move {
            let tx = client.transaction().await?;
            // The chain's lock first: the writer's lock order.
            let mut chain = Chain::lock(&tx).await?;
            if !ids.is_empty() {
                tx.execute("DELETE FROM holds WHERE id = ANY($1)", &[&ids])
                    .await?;
            }
            insert_records(&tx, &mut chain, &rows).await?;
            chain.write(&tx).await?;
            tx.commit().await?;
            Ok(())
        })
        .map_err(LedgerError::write)
    }

    fn holds(&self) -> Result<Vec<Hold>, LedgerError> {
        self.call(|client| async move {
            client
                .query(
                    "SELECT id, agent, backend, input_tokens, output_tokens, cost_sats, created_at
                     FROM holds ORDER BY created_at, id",
                    &[],
                )
                .await?
                .iter()
                .map(hold)
                .collect()
        })
        .map_err(LedgerError::read)
    }
}
