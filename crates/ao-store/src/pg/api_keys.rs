//! Gateway API keys on PostgreSQL, each creation and revocation with its audit entry: a key
//! revoked through any gateway is announced on [`KEYS_CHANNEL`], and refused by all of them at
//! their next reload.

use super::PgStore;
use super::chain::append_in;
use super::error::{PgError, int, uint};
use crate::api_keys::ApiKeyRow;
use crate::rows::{KeyCreated, KeyRevoked, key_created_event, key_revoked_event};

/// The channel keys created and revoked are announced on (with the key's id), so that every
/// gateway takes a new key up, and drops a revoked one, at once.
pub const KEYS_CHANNEL: &str = "ao_keys";

impl PgStore {
    /// Stores a new key's hash for `row.agent`.
    pub fn add_api_key(&self, row: &ApiKeyRow) -> Result<(), PgError> {
        let row = row.clone();
        let created = int("api_keys.created_at", row.created_at)?;
        let event = key_created_event(
            &row.agent,
            &KeyCreated {
                id: row.id.clone(),
                sha256: row.sha256.clone(),
                created_at: created,
                adopted: false,
            },
        )?;
        self.call(move |mut client| async move {
            let tx = client.transaction().await?;
            tx.execute(
                "INSERT INTO api_keys (id, agent, sha256, created_at) VALUES ($1, $2, $3, $4)",
                &[&row.id, &row.agent, &row.sha256, &created],
            )
            .await?;
            append_in(&tx, event).await?;
            tx.execute("SELECT pg_notify($1, $2)", &[&KEYS_CHANNEL, &row.id])
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Marks key `id` revoked at `now`; `false` if there is no such live key.
    pub fn revoke_api_key(&self, id: &str, now: u64) -> Result<bool, PgError> {
        let id = id.to_owned();
        let now = int("api_keys.revoked_at", now)?;
        self.call(move |mut client| async move {
            let tx = client.transaction().await?;
            let agent: Option<String> = tx
                .query_opt(
                    "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL
                     RETURNING agent",
                    &[&id, &now],
                )
                .await?
                .map(|row| row.try_get(0))
                .transpose()?;
            let Some(agent) = agent else {
                return Ok(false);
            };
            let detail = KeyRevoked {
                id,
                revoked_at: now,
                adopted: false,
            };
            append_in(&tx, key_revoked_event(&agent, &detail)?).await?;
            tx.execute("SELECT pg_notify($1, $2)", &[&KEYS_CHANNEL, &detail.id])
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Every key, oldest first.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRow>, PgError> {
        self.call(|client| async move {
            client
                .query(
                    "SELECT id, agent, sha256, created_at, revoked_at FROM api_keys
                     ORDER BY created_at, id",
                    &[],
                )
                .await?
                .iter()
                .map(|row| {
                    Ok(ApiKeyRow {
                        id: row.try_get(0)?,
                        agent: row.try_get(1)?,
                        sha256: row.try_get(2)?,
                        created_at: uint("api_keys.created_at", row.try_get(3)?)?,
                        revoked_at: row
                            .try_get::<_, Option<i64>>(4)?
                            .map(|t| uint("api_keys.revoked_at", t))
                            .transpose()?,
                    })
                })
                .collect()
        })
    }
}
