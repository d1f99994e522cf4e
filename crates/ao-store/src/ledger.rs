//! The cost ledger on SQLite: `ao_budget::Ledger` for [`SqliteStore`].

use ao_budget::{CostRecord, Ledger, LedgerError};
use ao_types::BackendProvider;
use rusqlite::{Row, params};

use crate::error::StoreError;
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

impl Ledger for SqliteStore {
    fn append(&self, records: &[CostRecord]) -> Result<(), LedgerError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            rows.push((
                r.agent_name.clone(),
                r.backend.as_str(),
                to_i64("cost_records.input_tokens", r.input_tokens).map_err(LedgerError::write)?,
                to_i64("cost_records.output_tokens", r.output_tokens)
                    .map_err(LedgerError::write)?,
                to_i64("cost_records.cost_sats", r.cost_sats).map_err(LedgerError::write)?,
                to_i64("cost_records.timestamp", r.timestamp).map_err(LedgerError::write)?,
            ));
        }
        self.write(move |conn| {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO cost_records
                 (agent, backend, input_tokens, output_tokens, cost_sats, timestamp)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for row in &rows {
                stmt.execute(params![row.0, row.1, row.2, row.3, row.4, row.5])?;
            }
            Ok(())
        })
        .map_err(LedgerError::write)
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
