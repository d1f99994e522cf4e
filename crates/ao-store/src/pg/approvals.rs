//! Approval requests on PostgreSQL: `ao_approvals::ApprovalStore` for [`PgStore`]. Each save is
//! compare-and-swap on the record's version and commits with its audit entry; it also notifies
//! `ao_approvals` (with the request id), so that every gateway waiting on a decision wakes.

use ao_approvals::{ApprovalRecord, ApprovalStore, ApprovalStoreError};
use ao_audit::{AuditEntry, AuditEvent};

use super::PgStore;
use super::chain::append_in;
use super::error::{PgError, int};

/// The channel every change to an approval request is announced on, with
/// `{"agent": ..., "id": ...}` (an [`ApprovalNotice`]).
pub const APPROVALS_CHANNEL: &str = "ao_approvals";

/// What [`APPROVALS_CHANNEL`] announces: the request that changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ApprovalNotice {
    /// The agent whose request it is.
    pub agent: String,
    /// The request.
    pub id: String,
}

fn decode(json: &str) -> Result<ApprovalRecord, PgError> {
    serde_json::from_str(json).map_err(|source| PgError::Decode {
        what: "approval record",
        source,
    })
}

impl PgStore {
    fn query_records(
        &self,
        agent: Option<String>,
    ) -> Result<Vec<ApprovalRecord>, ApprovalStoreError> {
        self.call(move |client| async move {
            client
                .query(
                    "SELECT record FROM approvals
                     WHERE ($1::TEXT IS NULL OR agent = $1) ORDER BY created_at, filed",
                    &[&agent],
                )
                .await?
                .iter()
                .map(|row| decode(row.try_get(0)?))
                .collect()
        })
        .map_err(ApprovalStoreError::read)
    }
}

impl ApprovalStore for PgStore {
    fn save(
        &self,
        record: &ApprovalRecord,
        audit: AuditEvent,
    ) -> Result<AuditEntry, ApprovalStoreError> {
        let json = serde_json::to_string(record).map_err(ApprovalStoreError::write)?;
        let id = record.request.request_id.clone();
        let agent = record.agent.clone();
        let created_at = int("approvals.created_at", record.request.created_at)
            .map_err(ApprovalStoreError::write)?;
        let version =
            int("approvals.version", record.version).map_err(ApprovalStoreError::write)?;
        let expected = version.saturating_sub(1);
        let status = record
            .decision
            .as_ref()
            .map_or("pending", |d| d.status.as_str())
            .to_owned();
        let request_id = id.clone();
        let notice = serde_json::json!({"agent": record.agent, "id": id}).to_string();
        self.call(move |mut client| async move {
            let tx = client.transaction().await?;
            // Compare-and-swap: the stored record must still be at the version this one was
            // made from.
            let changed = tx
                .execute(
                    "INSERT INTO approvals (request_id, agent, created_at, status, version, record)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (request_id) DO UPDATE
                       SET status = excluded.status, version = excluded.version,
                           record = excluded.record
                       WHERE approvals.version = $7",
                    &[
                        &id,
                        &agent,
                        &created_at,
                        &status,
                        &version,
                        &json,
                        &expected,
                    ],
                )
                .await?;
            if changed == 0 {
                return Err(PgError::Conflict {
                    what: format!("approval request `{id}`"),
                });
            }
            let entry = append_in(&tx, audit).await?;
            tx.execute("SELECT pg_notify($1, $2)", &[&APPROVALS_CHANNEL, &notice])
                .await?;
            tx.commit().await?;
            Ok(entry)
        })
        .map_err(|error| match error {
            PgError::Conflict { .. } => ApprovalStoreError::Conflict { request_id },
            other => ApprovalStoreError::write(other),
        })
    }

    fn load(&self, request_id: &str) -> Result<Option<ApprovalRecord>, ApprovalStoreError> {
        let id = request_id.to_owned();
        self.call(move |client| async move {
            client
                .query_opt("SELECT record FROM approvals WHERE request_id = $1", &[&id])
                .await?
                .map(|row| decode(row.try_get(0)?))
                .transpose()
        })
        .map_err(ApprovalStoreError::read)
    }

    fn load_agent(&self, agent: &str) -> Result<Vec<ApprovalRecord>, ApprovalStoreError> {
        self.query_records(Some(agent.to_owned()))
    }

    fn load_all(&self) -> Result<Vec<ApprovalRecord>, ApprovalStoreError> {
        self.query_records(None)
    }
}
