//! Gateway API keys on PostgreSQL: a key revoked through any gateway is refused by all of them
//! at their next reload.

use super::PgStore;
use super::error::{PgError, int, uint};
use crate::api_keys::ApiKeyRow;

impl PgStore {
    /// Stores a new key's hash for `row.agent`.
    pub fn add_api_key(&self, row: &ApiKeyRow) -> Result<(), PgError> {
        let row = row.clone();
        let created = int("api_keys.created_at", row.created_at)?;
        self.call(move |client| async move {
            client
                .execute(
                    "INSERT INTO api_keys (id, agent, sha256, created_at) VALUES ($1, $2, $3, $4)",
                    &[&row.id, &row.agent, &row.sha256, &created],
                )
                .await?;
            Ok(())
        })
    }

    /// Marks key `id` revoked at `now`; `false` if there is no such live key.
    pub fn revoke_api_key(&self, id: &str, now: u64) -> Result<bool, PgError> {
        let id = id.to_owned();
        let now = int("api_keys.revoked_at", now)?;
        self.call(move |client| async move {
            let changed = client
                .execute(
                    "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                    &[&id, &now],
                )
                .await?;
            Ok(changed > 0)
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
