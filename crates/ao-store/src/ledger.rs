//! The cost ledger on SQLite: `ao_budget::Ledger` for [`SqliteStore`]. Every record is written
//! with its audit entry, in the same transaction.

use std::borrow::Cow;

use ao_budget::{CostRecord, Hold, Ledger, LedgerError};
use ao_types::BackendProvider;
use rusqlite::{Row, params};

use crate::error::StoreError;
use crate::rows::{CostDetail, audit_cost};
use crate::store::SqliteStore;

fn to_i64(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::TooLarge { field, value })
}

fn to_u64(field: &str, value: i64) -> Result<u64, LedgerError> {
    u64::try_from(value).map_err(|_| LedgerError::Corrupt {
        reason: format!("{field} is negative ({value})"),
    })
}

fn decode(row: &Row<'_>) -> Result<CostRecord, LedgerError> {
    let get_i64 = |i: usize| row.get::<_, i64>(i).map_err(LedgerError::read);
    let backend: String = row.get(1).map_err(LedgerError::read)?;
    Ok(CostRecord {
        agent_name: row.get(0).map_err(LedgerError::read)?,
        backend: backend
            .parse::<BackendProvider>()
            .map_err(|e| LedgerError::Corrupt {
                reason: e.to_string(),
            })?,
        input_tokens: to_u64("input_tokens", get_i64(2)?)?,
        output_tokens: to_u64("output_tokens", get_i64(3)?)?,
        cost_sats: to_u64("cost_sats", get_i64(4)?)?,
        timestamp: to_u64("timestamp", get_i64(5)?)?,
    })
}

/// The bounds of `[from, until)` as SQLite integers; an `until` past `i64::MAX` means no bound.
fn bounds(from: u64, until: u64) -> (i64, Option<i64>) {
    (
        i64::try_from(from).unwrap_or(i64::MAX),
        i64::try_from(until).ok(),
    )
}

impl SqliteStore {
    fn load(
        &self,
        agent: Option<&str>,
        from: u64,
        until: u64,
    ) -> Result<Vec<CostRecord>, LedgerError> {
        if from >= until {
            return Ok(Vec::new());
        }
        let (from, until) = bounds(from, until);
        let conn = self.reader().map_err(LedgerError::read)?;
        let sql = match agent {
            None => {
                "SELECT agent, backend, input_tokens, output_tokens, cost_sats, timestamp
                 FROM cost_records
                 WHERE timestamp >= ?1 AND (?2 IS NULL OR timestamp < ?2)
                 ORDER BY timestamp, seq"
            }
            Some(_) => {
                "SELECT agent, backend, input_tokens, output_tokens, cost_sats, timestamp
                 FROM cost_records
                 WHERE agent = ?3 AND timestamp >= ?1 AND (?2 IS NULL OR timestamp < ?2)
                 ORDER BY timestamp, seq"
            }
        };
        let mut stmt = conn.prepare_cached(sql).map_err(LedgerError::read)?;
        let mut rows = match agent {
            None => stmt.query(params![from, until]),
            Some(agent) => stmt.query(params![from, until, agent]),
        }
        .map_err(LedgerError::read)?;
        let mut records = Vec::new();
        while let Some(row) = rows.next().map_err(LedgerError::read)? {
            records.push(decode(row)?);
        }
        Ok(records)
    }
}

/// A record as the columns of its row.
type RecordRow = (String, &'static str, i64, i64, i64, i64);

fn record_rows(records: &[CostRecord]) -> Result<Vec<RecordRow>, LedgerError> {
    records
        .iter()
        .map(|r| {
            Ok((
                r.agent_name.clone(),
                r.backend.as_str(),
                to_i64("cost_records.input_tokens", r.input_tokens)?,
                to_i64("cost_records.output_tokens", r.output_tokens)?,
                to_i64("cost_records.cost_sats", r.cost_sats)?,
                to_i64("cost_records.timestamp", r.timestamp)?,
            ))
        })
        .collect::<Result<_, StoreError>>()
        .map_err(LedgerError::write)
}

/// Inserts `rows`, each with the audit entry that vouches for it (`rows.rs`), in the caller's
/// transaction: one more insert per record, in the same commit.
fn insert_records(conn: &rusqlite::Connection, rows: &[RecordRow]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO cost_records
         (agent, backend, input_tokens, output_tokens, cost_sats, timestamp)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for row in rows {
        stmt.execute(params![row.0, row.1, row.2, row.3, row.4, row.5])?;
        let detail = CostDetail {
            seq: conn.last_insert_rowid(),
            backend: Cow::Borrowed(row.1),
            input_tokens: row.2,
            output_tokens: row.3,
            cost_sats: row.4,
            timestamp: row.5,
            adopted: false,
        };
        audit_cost(conn, &row.0, &detail)?;
    }
    Ok(())
}

fn decode_hold(row: &Row<'_>) -> Result<Hold, LedgerError> {
    let get_i64 = |i: usize| row.get::<_, i64>(i).map_err(LedgerError::read);
    let backend: String = row.get(2).map_err(LedgerError::read)?;
    Ok(Hold {
        id: row.get(0).map_err(LedgerError::read)?,
        agent_name: row.get(1).map_err(LedgerError::read)?,
        backend: backend
            .parse::<BackendProvider>()
            .map_err(|e| LedgerError::Corrupt {
                reason: e.to_string(),
            })?,
        input_tokens: to_u64("input_tokens", get_i64(3)?)?,
        output_tokens: to_u64("output_tokens", get_i64(4)?)?,
        cost_sats: to_u64("cost_sats", get_i64(5)?)?,
        created_at: to_u64("created_at", get_i64(6)?)?,
    })
}

impl Ledger for SqliteStore {
    fn append(&self, records: &[CostRecord]) -> Result<(), LedgerError> {
        if records.is_empty() {
            return Ok(());
        }
        let rows = record_rows(records)?;
        self.write(move |conn| insert_records(conn, &rows))
            .map_err(LedgerError::write)
    }

    fn hold(&self, hold: &Hold) -> Result<(), LedgerError> {
        let row = (
            hold.id.clone(),
            hold.agent_name.clone(),
            hold.backend.as_str(),
            to_i64("holds.input_tokens", hold.input_tokens).map_err(LedgerError::write)?,
            to_i64("holds.output_tokens", hold.output_tokens).map_err(LedgerError::write)?,
            to_i64("holds.cost_sats", hold.cost_sats).map_err(LedgerError::write)?,
            to_i64("holds.created_at", hold.created_at).map_err(LedgerError::write)?,
        );
        // A hold must survive the process being killed (the adversary's crash); its own fsync
        // would sit on every request's path, and the next cost record's commit fsyncs it anyway.
        self.write_light(move |conn| {
            conn.prepare_cached(
                "INSERT INTO holds
                 (id, agent, backend, input_tokens, output_tokens, cost_sats, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![row.0, row.1, row.2, row.3, row.4, row.5, row.6])?;
            Ok(())
        })
        .map_err(LedgerError::write)
    }

    fn settle_holds(&self, ids: &[String], records: &[CostRecord]) -> Result<(), LedgerError> {
        if ids.is_empty() && records.is_empty() {
            return Ok(());
        }
        let rows = record_rows(records)?;
        let ids = ids.to_vec();
        self.write(move |conn| {
            let mut delete = conn.prepare_cached("DELETE FROM holds WHERE id = ?1")?;
            for id in &ids {
                delete.execute(params![id])?;
            }
            insert_records(conn, &rows)
        })
        .map_err(LedgerError::write)
    }

    fn holds(&self) -> Result<Vec<Hold>, LedgerError> {
        let conn = self.reader().map_err(LedgerError::read)?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, agent, backend, input_tokens, output_tokens, cost_sats, created_at
                 FROM holds ORDER BY created_at, id",
            )
            .map_err(LedgerError::read)?;
        let mut rows = stmt.query([]).map_err(LedgerError::read)?;
        let mut holds = Vec::new();
        while let Some(row) = rows.next().map_err(LedgerError::read)? {
            holds.push(decode_hold(row)?);
        }
        Ok(holds)
    }

    fn load_range(&self, from: u64, until: u64) -> Result<Vec<CostRecord>, LedgerError> {
        self.load(None, from, until)
    }

    fn load_agent_range(
        &self,
        agent: &str,
        from: u64,
        until: u64,
    ) -> Result<Vec<CostRecord>, LedgerError> {
        self.load(Some(agent), from, until)
    }

    fn health_check(&self) -> Result<(), LedgerError> {
        self.check_writable().map_err(LedgerError::write)
    }
}
