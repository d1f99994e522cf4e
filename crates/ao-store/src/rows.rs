//! The audit entries that vouch for rows. Each cost record, API key creation or revocation and
//! stored checkpoint is written together with an entry of the audit log, in the same transaction,
//! and the entry carries the row's key and content. `verify` (`verify.rs`) then finds a row that
//! was deleted, edited or inserted behind the store's back.
//!
//! The entries, by kind (the agent is the row's agent; checkpoints concern none):
//!
//! - `cost.recorded`: `{"seq", "backend", "input_tokens", "output_tokens", "cost_sats",
//!   "timestamp"}`, `seq` being the row's id in `cost_records`;
//! - `api_key.created`: `{"id", "sha256", "created_at"}`;
//! - `api_key.revoked`: `{"id", "revoked_at"}`;
//! - `audit.checkpoint`: `{"id", "seq", "hash", "signer"}`, `id` being the event's id.
//!
//! Rows already in a database when it was migrated to this scheme get their entries then, with
//! `"adopted": true` ([`adopt_rows`]).

use std::borrow::Cow;

use ao_audit::{AuditEvent, Checkpoint};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::audit::append_in;
use crate::error::StoreError;

/// The kind of the entry that vouches for a cost record.
pub(crate) const COST_RECORDED: &str = "cost.recorded";
/// The kind of the entry that vouches for an API key's creation.
pub(crate) const KEY_CREATED: &str = "api_key.created";
/// The kind of the entry that vouches for an API key's revocation.
pub(crate) const KEY_REVOKED: &str = "api_key.revoked";
/// The kind of the entry that vouches for a stored checkpoint.
pub(crate) const CHECKPOINT_STORED: &str = "audit.checkpoint";

fn is_false(value: &bool) -> bool {
    !*value
}

/// A cost record, as its entry carries it (the agent is the entry's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CostDetail<'a> {
    pub(crate) seq: i64,
    #[serde(borrow)]
    pub(crate) backend: Cow<'a, str>,
    pub(crate) input_tokens: i64,
    pub(crate) output_tokens: i64,
    pub(crate) cost_sats: i64,
    pub(crate) timestamp: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) adopted: bool,
}

/// An API key's creation, as its entry carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyCreated {
    pub(crate) id: String,
    pub(crate) sha256: String,
    pub(crate) created_at: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) adopted: bool,
}

/// An API key's revocation, as its entry carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyRevoked {
    pub(crate) id: String,
    pub(crate) revoked_at: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) adopted: bool,
}

/// A stored checkpoint, as its entry carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CheckpointStored {
    pub(crate) id: String,
    pub(crate) seq: i64,
    pub(crate) hash: String,
    pub(crate) signer: String,
}

fn event<T: Serialize>(
    timestamp: i64,
    kind: &'static str,
    agent: &str,
    detail: &T,
) -> Result<AuditEvent, StoreError> {
    let timestamp = u64::try_from(timestamp).map_err(|_| StoreError::Negative {
        column: "timestamp",
        value: timestamp,
    })?;
    AuditEvent::from_serialize(timestamp, kind, agent, detail).map_err(|source| {
        StoreError::Encode {
            what: "audit entry",
            source,
        }
    })
}

/// The entry of cost record `detail.seq` of `agent`.
pub(crate) fn cost_event(agent: &str, detail: &CostDetail<'_>) -> Result<AuditEvent, StoreError> {
    event(detail.timestamp, COST_RECORDED, agent, detail)
}

/// The entry of a new API key of `agent`.
pub(crate) fn key_created_event(
    agent: &str,
    detail: &KeyCreated,
) -> Result<AuditEvent, StoreError> {
    event(detail.created_at, KEY_CREATED, agent, detail)
}

/// The entry of the revocation of an API key of `agent`.
pub(crate) fn key_revoked_event(
    agent: &str,
    detail: &KeyRevoked,
) -> Result<AuditEvent, StoreError> {
    event(detail.revoked_at, KEY_REVOKED, agent, detail)
}

/// The entry of a stored checkpoint.
pub(crate) fn checkpoint_event(checkpoint: &Checkpoint) -> Result<AuditEvent, StoreError> {
    let detail = CheckpointStored {
        id: checkpoint.event.id.to_hex(),
        seq: to_i64("checkpoints.seq", checkpoint.head.seq)?,
        hash: checkpoint.head.hash.clone(),
        signer: checkpoint.signer.to_hex(),
    };
    let created = to_i64("checkpoints.created_at", checkpoint.created_at)?;
    event(created, CHECKPOINT_STORED, "", &detail)
}

/// Appends the entry of cost record `detail.seq` of `agent`, in the caller's transaction.
pub(crate) fn audit_cost(
    conn: &Connection,
    agent: &str,
    detail: &CostDetail<'_>,
) -> Result<(), StoreError> {
    append_in(conn, cost_event(agent, detail)?)?;
    Ok(())
}

/// Appends the entry of a new API key of `agent`, in the caller's transaction.
pub(crate) fn audit_key_created(
    conn: &Connection,
    agent: &str,
    detail: &KeyCreated,
) -> Result<(), StoreError> {
    append_in(conn, key_created_event(agent, detail)?)?;
    Ok(())
}

/// Appends the entry of the revocation of an API key of `agent`, in the caller's transaction.
pub(crate) fn audit_key_revoked(
    conn: &Connection,
    agent: &str,
    detail: &KeyRevoked,
) -> Result<(), StoreError> {
    append_in(conn, key_revoked_event(agent, detail)?)?;
    Ok(())
}

/// Appends the entry of a stored checkpoint, in the caller's transaction.
pub(crate) fn audit_checkpoint(
    conn: &Connection,
    checkpoint: &Checkpoint,
) -> Result<(), StoreError> {
    append_in(conn, checkpoint_event(checkpoint)?)?;
    Ok(())
}

pub(crate) fn to_i64(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::TooLarge { field, value })
}

/// Gives every cost record and API key already in the file its entry, marked `"adopted"`: run
/// once, by the migration that starts auditing rows, so that a database from before verifies.
/// What was done to those rows before the migration cannot be known.
pub(crate) fn adopt_rows(conn: &Connection) -> Result<(), StoreError> {
    let costs: Vec<(String, CostDetail<'static>)> = conn
        .prepare(
            "SELECT seq, agent, backend, input_tokens, output_tokens, cost_sats, timestamp
             FROM cost_records ORDER BY seq",
        )?
        .query_map([], |r| {
            Ok((
                r.get(1)?,
                CostDetail {
                    seq: r.get(0)?,
                    backend: Cow::Owned(r.get(2)?),
                    input_tokens: r.get(3)?,
                    output_tokens: r.get(4)?,
                    cost_sats: r.get(5)?,
                    timestamp: r.get(6)?,
                    adopted: true,
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    for (agent, detail) in &costs {
        audit_cost(conn, agent, detail)?;
    }
    let keys: Vec<(String, KeyCreated, Option<i64>)> = conn
        .prepare(
            "SELECT id, agent, sha256, created_at, revoked_at FROM api_keys ORDER BY created_at, id",
        )?
        .query_map(params![], |r| {
            Ok((
                r.get(1)?,
                KeyCreated {
                    id: r.get(0)?,
                    sha256: r.get(2)?,
                    created_at: r.get(3)?,
                    adopted: true,
                },
                r.get(4)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    for (agent, created, revoked) in keys {
        audit_key_created(conn, &agent, &created)?;
        if let Some(revoked_at) = revoked {
            let detail = KeyRevoked {
                id: created.id,
                revoked_at,
                adopted: true,
            };
            audit_key_revoked(conn, &agent, &detail)?;
        }
    }
    Ok(())
}
