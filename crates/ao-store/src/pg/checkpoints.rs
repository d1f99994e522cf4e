//! Checkpoints of the audit log and the audit report on PostgreSQL, as on SQLite
//! (`checkpoints.rs`, `verify.rs`): signed heads stored with their audit entry, and every row
//! the log vouches for checked against it from one snapshot.

use ao_audit::{ChainHead, Checkpoint, CheckpointMismatch};
use deadpool_postgres::GenericClient;

use super::PgStore;
use super::audit::entries_in;
use super::chain::{Chain, head_in};
use super::error::{PgError, int};
use crate::rows::checkpoint_event;
use crate::verify::{AuditReport, CostRow, KeyRow, Snapshot, report};

/// What kind of log this is, in a checkpoint: `AOS1`, as in a SQLite file's `application_id`.
fn application_id() -> u32 {
    u32::from_be_bytes(crate::schema::APPLICATION_ID.to_be_bytes())
}

/// The last sequence number (0 for an empty log) and the hash of entry `seq`.
async fn chain_at(client: &impl GenericClient, seq: u64) -> Result<(u64, Option<String>), PgError> {
    let last = head_in(client).await?.map_or(0, |head| head.seq);
    let hash = client
        .query_opt(
            "SELECT hash FROM audit_log WHERE seq = $1",
            &[&int("checkpoint seq", seq)?],
        )
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    Ok((last, hash))
}

impl PgStore {
    /// What kind of log this is (`AOS1`), as a checkpoint names it.
    pub fn application_id(&self) -> u32 {
        application_id()
    }

    /// The head of the audit log, or `None` while it is empty: what a checkpoint signs.
    pub fn head(&self) -> Result<Option<ChainHead>, PgError> {
        self.call(|client| async move { head_in(&client).await })
    }

    /// Checks `checkpoint` against the log: the entry it signed is there with the hash it
    /// signed. It does not check who signed it.
    pub fn check_checkpoint(
        &self,
        checkpoint: &Checkpoint,
    ) -> Result<Result<(), CheckpointMismatch>, PgError> {
        let checkpoint = checkpoint.clone();
        self.call(move |client| async move {
            let (last, hash) = chain_at(&client, checkpoint.head.seq).await?;
            Ok(checkpoint.check(application_id(), last, hash.as_deref()))
        })
    }

    /// Stores `checkpoint` with its audit entry once it is checked against the log in the same
    /// transaction ([`PgError::Checkpoint`] when it does not match); `false` when this very
    /// event was stored already.
    pub fn add_checkpoint(&self, checkpoint: &Checkpoint) -> Result<bool, PgError> {
        let checkpoint = checkpoint.clone();
        let event = checkpoint_event(&checkpoint)?;
        let seq = int("checkpoints.seq", checkpoint.head.seq)?;
        let created_at = int("checkpoints.created_at", checkpoint.created_at)?;
        self.call(move |mut client| async move {
            let tx = client.transaction().await?;
            let mut chain = Chain::lock(&tx).await?;
            let (last, hash) = chain_at(&tx, checkpoint.head.seq).await?;
            checkpoint
                .check(application_id(), last, hash.as_deref())
                .map_err(PgError::Checkpoint)?;
            let inserted = tx
                .execute(
                    "INSERT INTO checkpoints (id, seq, hash, signer, created_at, event)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                    &[
                        &checkpoint.event.id.to_hex(),
                        &seq,
                        &checkpoint.head.hash,
                        &checkpoint.signer.to_hex(),
                        &created_at,
                        &checkpoint.to_json(),
                    ],
                )
                .await?
                == 1;
            if inserted {
                chain.push(event);
                chain.write(&tx).await?;
            }
            tx.commit().await?;
            Ok(inserted)
        })
    }

    /// Checks the audit log and every row it vouches for, from one snapshot of the database
    /// (a repeatable-read transaction), as [`SqliteStore::audit_report`](crate::SqliteStore::audit_report)
    /// does. It reads the whole log into memory.
    pub fn audit_report(&self) -> Result<AuditReport, PgError> {
        self.call(|mut client| async move {
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let costs = tx
                .query(
                    "SELECT seq, agent, backend, input_tokens, output_tokens, cost_sats, timestamp
                     FROM cost_records ORDER BY seq",
                    &[],
                )
                .await?
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get(0)?,
                        r.try_get(1)?,
                        r.try_get(2)?,
                        r.try_get(3)?,
                        r.try_get(4)?,
                        r.try_get(5)?,
                        r.try_get(6)?,
                    ))
                })
                .collect::<Result<Vec<CostRow>, PgError>>()?;
            let keys = tx
                .query(
                    "SELECT id, agent, sha256, created_at, revoked_at FROM api_keys ORDER BY id",
                    &[],
                )
                .await?
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get(0)?,
                        r.try_get(1)?,
                        r.try_get(2)?,
                        r.try_get(3)?,
                        r.try_get(4)?,
                    ))
                })
                .collect::<Result<Vec<KeyRow>, PgError>>()?;
            let checkpoints = tx
                .query(
                    "SELECT id, event FROM checkpoints ORDER BY created_at, id",
                    &[],
                )
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<(String, String)>, PgError>>()?;
            let entries = entries_in(&tx, 1, usize::MAX).await?;
            tx.commit().await?;
            Ok(report(Snapshot {
                entries,
                application_id: application_id(),
                costs,
                keys,
                checkpoints,
            }))
        })
    }
}
