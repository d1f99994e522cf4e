//! Gateway API keys: only their SHA-256 is stored, never the key. Each creation and revocation is
//! written with its audit entry, in the same transaction.

use rusqlite::{OptionalExtension, params};

use crate::error::StoreError;
use crate::rows::{KeyCreated, KeyRevoked, audit_key_created, audit_key_revoked};
use crate::store::SqliteStore;

/// One API key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// A short public id, to name the key (for revoking it) without revealing it.
    pub id: String,
    /// The agent the key authenticates.
    pub agent: String,
    /// The key's SHA-256, 64 hex characters.
    pub sha256: String,
    /// When it was created, in Unix seconds.
    pub created_at: u64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<u64>,
}

impl SqliteStore {
    /// Stores a new key's hash for `agent`, with its audit entry.
    pub fn add_api_key(&self, row: &ApiKeyRow) -> Result<(), StoreError> {
        let row = row.clone();
        let created = i64::try_from(row.created_at).map_err(|_| StoreError::TooLarge {
            field: "api_keys.created_at",
            value: row.created_at,
        })?;
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO api_keys (id, agent, sha256, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, NULL)",
                params![row.id, row.agent, row.sha256, created],
            )?;
            let detail = KeyCreated {
                id: row.id,
                sha256: row.sha256,
                created_at: created,
                adopted: false,
            };
            audit_key_created(conn, &row.agent, &detail)
        })
    }

    /// Revokes key `id` at `now`, with its audit entry. Returns whether a live key was revoked.
    pub fn revoke_api_key(&self, id: &str, now: u64) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let now = i64::try_from(now).map_err(|_| StoreError::TooLarge {
            field: "api_keys.revoked_at",
            value: now,
        })?;
        self.write(move |conn| {
            let agent: Option<String> = conn
                .query_row(
                    "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL
                     RETURNING agent",
                    params![id, now],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(agent) = agent else {
                return Ok(false);
            };
            let detail = KeyRevoked {
                id,
                revoked_at: now,
                adopted: false,
            };
            audit_key_revoked(conn, &agent, &detail)?;
            Ok(true)
        })
    }

    /// Every key, oldest first.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, agent, sha256, created_at, revoked_at FROM api_keys ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })?;
        let mut keys = Vec::new();
        for row in rows {
            let (id, agent, sha256, created, revoked) = row?;
            let unsigned = |column: &'static str, value: i64| {
                u64::try_from(value).map_err(|_| StoreError::Negative { column, value })
            };
            keys.push(ApiKeyRow {
                created_at: unsigned("api_keys.created_at", created)?,
                revoked_at: revoked
                    .map(|v| unsigned("api_keys.revoked_at", v))
                    .transpose()?,
                id,
                agent,
                sha256,
            });
        }
        Ok(keys)
    }
}
