//! The audit log on PostgreSQL: `ao_audit::AuditLog` for [`PgStore`]. Appends go through the
//! writer (many per transaction, `writer.rs`), chained under the chain's lock (`chain.rs`).

use ao_audit::{AuditEntry, AuditError, AuditEvent, AuditLog, BrokenLink};
use tokio_postgres::Row;

use super::PgStore;
use super::error::{PgError, uint};
use super::writer::{Done, Job};

pub(crate) fn entry(row: &Row) -> Result<AuditEntry, PgError> {
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

/// Up to `limit` entries from `from_seq` on, in order.
pub(crate) async fn entries_in(
    client: &impl deadpool_postgres::GenericClient,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<AuditEntry>, PgError> {
    let from = i64::try_from(from_seq).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
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
}

impl AuditLog for PgStore {
    fn append(&self, event: AuditEvent) -> Result<AuditEntry, AuditError> {
        match self.submit_blocking(Job::Append(event)) {
            Ok(Done::Appended(entry)) => Ok(entry),
            Ok(_) => Err(AuditError::write(PgError::WorkerStopped)),
            Err(error) => Err(AuditError::write(error)),
        }
    }

    fn entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditEntry>, AuditError> {
        self.call(move |client| async move { entries_in(&client, from_seq, limit).await })
            .map_err(AuditError::read)
    }

    /// Checks the chain and every row it vouches for ([`PgStore::audit_report`]), and reports
    /// the first thing wrong, as the SQLite store does.
    fn verify(&self) -> Result<Result<u64, BrokenLink>, AuditError> {
        let report = self.audit_report().map_err(AuditError::read)?;
        Ok(match report.findings.first() {
            None => Ok(report.entries),
            Some(finding) => Err(BrokenLink {
                seq: finding
                    .entry()
                    .unwrap_or_else(|| report.entries.saturating_add(1)),
                reason: finding.to_string(),
            }),
        })
    }
}
