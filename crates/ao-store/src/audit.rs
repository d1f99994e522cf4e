//! The audit log on SQLite: `ao_audit::AuditLog` for [`SqliteStore`].

use ao_audit::{AuditEntry, AuditError, AuditEvent, AuditLog, BrokenLink, ChainHead};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::StoreError;
use crate::store::SqliteStore;

fn decode(row: &Row<'_>) -> rusqlite::Result<(i64, i64, String, String, String, String, String)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn to_entry(
    (seq, timestamp, kind, agent, detail, prev_hash, hash): (
        i64,
        i64,
        String,
        String,
        String,
        String,
        String,
    ),
) -> Result<AuditEntry, StoreError> {
    let unsigned = |column: &'static str, value: i64| {
        u64::try_from(value).map_err(|_| StoreError::Negative { column, value })
    };
    Ok(AuditEntry {
        seq: unsigned("audit_log.seq", seq)?,
        timestamp: unsigned("audit_log.timestamp", timestamp)?,
        kind,
        agent,
        detail,
        prev_hash,
        hash,
    })
}

/// Appends `event` after the last entry, inside the caller's write transaction. Only the last
/// entry's sequence number and hash are read: this runs with every cost record.
pub(crate) fn append_in(conn: &Connection, event: AuditEvent) -> Result<AuditEntry, StoreError> {
    let last = conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .optional()?
        .map(|(seq, hash)| {
            let seq = u64::try_from(seq).map_err(|_| StoreError::Negative {
                column: "audit_log.seq",
                value: seq,
            })?;
            Ok::<_, StoreError>(ChainHead { seq, hash })
        })
        .transpose()?;
    let entry = AuditEntry::following(last.as_ref(), event);
    let as_i64 = |field: &'static str, value: u64| {
        i64::try_from(value).map_err(|_| StoreError::TooLarge { field, value })
    };
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, timestamp, kind, agent, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        as_i64("audit_log.seq", entry.seq)?,
        as_i64("audit_log.timestamp", entry.timestamp)?,
        entry.kind,
        entry.agent,
        entry.detail,
        entry.prev_hash,
        entry.hash
    ])?;
    Ok(entry)
}

impl AuditLog for SqliteStore {
    fn append(&self, event: AuditEvent) -> Result<AuditEntry, AuditError> {
        self.write(move |conn| append_in(conn, event))
            .map_err(AuditError::write)
    }

    fn entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditEntry>, AuditError> {
        let conn = self.reader().map_err(AuditError::read)?;
        entries_in(&conn, from_seq, limit).map_err(AuditError::read)
    }

    /// Checks the chain and every row it vouches for ([`SqliteStore::audit_report`]), and
    /// reports the first thing wrong. A problem found at an entry is reported at that entry; a
    /// row that no entry vouches for is reported at the entry after the last, the one that
    /// should have recorded it.
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

/// Up to `limit` entries from `from_seq` on, in order, read on `conn`.
pub(crate) fn entries_in(
    conn: &Connection,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, timestamp, kind, agent, detail, prev_hash, hash
         FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
    )?;
    let from = i64::try_from(from_seq).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![from, limit], decode)?;
    let mut entries = Vec::new();
    for row in rows {
        entries.push(to_entry(row?)?);
    }
    Ok(entries)
}
