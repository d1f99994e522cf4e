//! Approval requests on SQLite: `ao_approvals::ApprovalStore` for [`SqliteStore`]. Each record is
//! kept as JSON beside the columns it is looked up by; each save and its audit entry commit
//! together.

use ao_approvals::{ApprovalRecord, ApprovalStore, ApprovalStoreError};
use ao_audit::{AuditEntry, AuditEvent};
use rusqlite::{OptionalExtension, params};

use crate::audit::append_in;
use crate::error::StoreError;
use crate::store::SqliteStore;

fn decode(json: &str) -> Result<ApprovalRecord, ApprovalStoreError> {
    serde_json::from_str(json).map_err(|source| {
        ApprovalStoreError::read(StoreError::Decode {
            what: "approval record",
            source,
        })
    })
}

impl SqliteStore {
    fn query_records(
        &self,
        sql: &str,
        agent: Option<&str>,
    ) -> Result<Vec<ApprovalRecord>, ApprovalStoreError> {
        let conn = self.reader().map_err(ApprovalStoreError::read)?;
        let mut stmt = conn.prepare_cached(sql).map_err(ApprovalStoreError::read)?;
        let rows: Vec<String> = match agent {
            Some(agent) => stmt
                .query_map(params![agent], |r| r.get(0))
                .and_then(Iterator::collect),
            None => stmt.query_map([], |r| r.get(0)).and_then(Iterator::collect),
        }
        .map_err(ApprovalStoreError::read)?;
        rows.iter().map(|json| decode(json)).collect()
    }
}

impl ApprovalStore for SqliteStore {
    fn save(
        &self,
        record: &ApprovalRecord,
        audit: AuditEvent,
    ) -> Result<AuditEntry, ApprovalStoreError> {
        let json = serde_json::to_string(record).map_err(ApprovalStoreError::write)?;
        let id = record.request.request_id.clone();
        let agent = record.agent.clone();
        let created_at =
            i64::try_from(record.request.created_at).map_err(ApprovalStoreError::write)?;
        let status = record
            .decision
            .as_ref()
            .map_or("pending", |d| d.status.as_str());
        // Compare-and-swap: the stored record must still be at the version this one was made
        // from (records written before versions existed are version 0).
        let expected =
            i64::try_from(record.version.saturating_sub(1)).map_err(ApprovalStoreError::write)?;
        let request_id = id.clone();
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "INSERT INTO approvals (request_id, agent, created_at, filed, status, record)
                     VALUES (?1, ?2, ?3, (SELECT coalesce(max(filed), 0) + 1 FROM approvals), ?4, ?5)
                     ON CONFLICT (request_id) DO UPDATE SET status = excluded.status, record = excluded.record
                     WHERE coalesce(json_extract(approvals.record, '$.version'), 0) = ?6",
                )?
                .execute(params![id, agent, created_at, status, json, expected])?;
            if changed == 0 {
                return Err(StoreError::Conflict {
                    what: format!("approval request `{id}`"),
                });
            }
            append_in(conn, audit)
        })
        .map_err(|error| match error {
            StoreError::Conflict { .. } => ApprovalStoreError::Conflict { request_id },
            other => ApprovalStoreError::write(other),
        })
    }

    fn load(&self, request_id: &str) -> Result<Option<ApprovalRecord>, ApprovalStoreError> {
        let conn = self.reader().map_err(ApprovalStoreError::read)?;
        let json: Option<String> = conn
            .prepare_cached("SELECT record FROM approvals WHERE request_id = ?1")
            .and_then(|mut s| s.query_row(params![request_id], |r| r.get(0)).optional())
            .map_err(ApprovalStoreError::read)?;
        json.as_deref().map(decode).transpose()
    }

    fn load_agent(&self, agent: &str) -> Result<Vec<ApprovalRecord>, ApprovalStoreError> {
        self.query_records(
            "SELECT record FROM approvals WHERE agent = ?1 ORDER BY created_at, filed",
            Some(agent),
        )
    }

    fn load_all(&self) -> Result<Vec<ApprovalRecord>, ApprovalStoreError> {
        self.query_records(
            "SELECT record FROM approvals ORDER BY created_at, filed",
            None,
        )
    }
}
