//! The audit log on PostgreSQL: one hash chain, appended by any number of gateways at once.
//! Appends take a transaction-scoped advisory lock, read the head and insert after it, so
//! concurrent writers queue and the chain never forks.

use ao_audit::{AuditEntry, AuditError, AuditEvent, AuditLog};
use tokio_postgres::Row;

use super::PgStore;
use super::error::{PgError, int, uint};

/// The advisory lock key the chain's head is taken under: `AOA1` as an integer.
const CHAIN_LOCK: i64 = 0x414F_4131;

fn entry(row: &Row) -> Result<AuditEntry, PgError> {
    Ok(AuditEntry {
        seq: uint("audit_log.seq", row.try_get(0)?)?,
        timestamp: uint("audit_log.timestamp", row.try_get(1)?)?,
        kind: row.try_get(2)?,
        agent: row.try_get(3)?,
        detail: row.try_get(4)?,
        prev_hash: row.try_get(5)?,
        hash: row.try_get(6)?,
    })
}

/// Appends `event` after the chain's head inside the caller's transaction.
pub(crate) async fn append_in(
    tx: &deadpool_postgres::Transaction<'_>,
    event: AuditEvent,
) -> Result<AuditEntry, PgError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])
        .await?;
    let last = tx
        .query_opt(
            "SELECT seq, timestamp, kind, agent, detail, prev_hash, hash
             FROM audit_log ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?
        .map(|row| entry(&row))
        .transpose()?;
    let next = AuditEntry::next(last.as_ref(), event);
    tx.execute(
        "INSERT INTO audit_log (seq, timestamp, kind, agent, detail, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &int("audit_log.seq", next.seq)?,
            &int("audit_log.timestamp", next.timestamp)?,
            &next.kind,
            &next.agent,
            &next.detail,
            &next.prev_hash,
            &next.hash,
        ],
    )
    .await?;
    Ok(next)
}

impl AuditLog for PgStore {
    fn append(&self, event: AuditEvent) -> Result<AuditEntry, AuditError> {
        self.call(move |mut client| async move {
            let tx = client.transaction().await?;
            let entry = append_in(&tx, event).await?;
            tx.commit().await?;
            Ok(entry)
        })
        .map_err(AuditError::write)
    }

    fn entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditEntry>, AuditError> {
        let from = i64::try_from(from_seq).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |client| async move {
            client
                .query(
                    "SELECT seq, timestamp, kind, agent, detail, prev_hash, hash
                     FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
                    &[&from, &limit],
                )
                .await?
                .iter()
                .map(entry)
                .collect()
        })
        .map_err(AuditError::read)
    }
}
