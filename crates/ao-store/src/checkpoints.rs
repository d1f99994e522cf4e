//! Checkpoints of the audit log: signed heads (`ao_audit::Checkpoint`), stored with their audit
//! entry in the `checkpoints` table, and the head to sign.

use ao_audit::{ChainHead, Checkpoint, CheckpointMismatch};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::StoreError;
use crate::rows::{audit_checkpoint, to_i64};
use crate::store::SqliteStore;
use crate::verify::application_id_in;

/// The last sequence number (0 for an empty log) and the hash of entry `seq`, read on `conn`.
fn chain_at(conn: &Connection, seq: u64) -> Result<(u64, Option<String>), StoreError> {
    let last: i64 = conn.query_row("SELECT coalesce(max(seq), 0) FROM audit_log", [], |r| {
        r.get(0)
    })?;
    let last = u64::try_from(last).map_err(|_| StoreError::Negative {
        column: "audit_log.seq",
        value: last,
    })?;
    let hash = conn
        .prepare_cached("SELECT hash FROM audit_log WHERE seq = ?1")?
        .query_row(params![to_i64("checkpoint seq", seq)?], |r| r.get(0))
        .optional()?;
    Ok((last, hash))
}

impl SqliteStore {
    /// The database's `application_id`: what kind of file it is (`AOS1` for this one).
    pub fn application_id(&self) -> Result<u32, StoreError> {
        application_id_in(&*self.reader()?)
    }

    /// The head of the audit log (its last entry's sequence number and hash), or `None` while it
    /// is empty: what a checkpoint signs.
    pub fn head(&self) -> Result<Option<ChainHead>, StoreError> {
        let conn = self.reader()?;
        let head = conn
            .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .optional()?;
        head.map(|(seq, hash)| {
            let seq = u64::try_from(seq).map_err(|_| StoreError::Negative {
                column: "audit_log.seq",
                value: seq,
            })?;
            Ok(ChainHead { seq, hash })
        })
        .transpose()
    }

    /// Checks `checkpoint` against this database's log: the entry it signed is there with the
    /// hash it signed. It does not check who signed it.
    pub fn check_checkpoint(
        &self,
        checkpoint: &Checkpoint,
    ) -> Result<Result<(), CheckpointMismatch>, StoreError> {
        let conn = self.reader()?;
        let snapshot = conn.unchecked_transaction()?;
        let application_id = application_id_in(&snapshot)?;
        let (last, hash) = chain_at(&snapshot, checkpoint.head.seq)?;
        Ok(checkpoint.check(application_id, last, hash.as_deref()))
    }

    /// Stores `checkpoint` with its audit entry, once it is checked against the log in the same
    /// transaction ([`StoreError::Checkpoint`] when it does not match). Returns `false` when this
    /// very event was stored already. Who signed it is the caller's to check.
    pub fn add_checkpoint(&self, checkpoint: &Checkpoint) -> Result<bool, StoreError> {
        let checkpoint = checkpoint.clone();
        let seq = to_i64("checkpoints.seq", checkpoint.head.seq)?;
        let created_at = to_i64("checkpoints.created_at", checkpoint.created_at)?;
        self.write(move |conn| {
            let application_id = application_id_in(conn)?;
            let (last, hash) = chain_at(conn, checkpoint.head.seq)?;
            checkpoint
                .check(application_id, last, hash.as_deref())
                .map_err(StoreError::Checkpoint)?;
            let inserted =
                conn.prepare_cached(
                    "INSERT INTO checkpoints (id, seq, hash, signer, created_at, event)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![
                    checkpoint.event.id.to_hex(),
                    seq,
                    checkpoint.head.hash,
                    checkpoint.signer.to_hex(),
                    created_at,
                    checkpoint.to_json(),
                ])? == 1;
            if inserted {
                audit_checkpoint(conn, &checkpoint)?;
            }
            Ok(inserted)
        })
    }
}
