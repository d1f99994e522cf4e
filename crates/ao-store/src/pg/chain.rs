//! The audit log's one hash chain in PostgreSQL, appended by any number of gateways at once.
//!
//! A transaction that appends takes a transaction-scoped advisory lock first, reads the head,
//! chains its entries in memory and inserts them in one statement, so concurrent writers queue
//! and the chain never forks. Lock order: a transaction that also changes budget rows or holds
//! takes the chain's lock **before** them, so no two transactions wait on each other.

use ao_audit::{AuditEntry, AuditEvent, ChainHead};

use super::error::{PgError, int, uint};

/// The advisory lock key the chain's head is taken under: `AOA1` as an integer.
const CHAIN_LOCK: i64 = 0x414F_4131;

/// The chain's head, locked for the rest of a transaction, and the entries to append after it.
pub(crate) struct Chain {
    head: Option<ChainHead>,
    pending: Vec<AuditEntry>,
}

impl Chain {
    /// Takes the chain's lock for the rest of `tx` and reads its head.
    pub(crate) async fn lock(tx: &deadpool_postgres::Transaction<'_>) -> Result<Self, PgError> {
        let lock = tx
            .prepare_cached("SELECT pg_advisory_xact_lock($1)")
            .await?;
        tx.execute(&lock, &[&CHAIN_LOCK]).await?;
        let head = head_in(tx).await?;
        Ok(Self {
            head,
            pending: Vec::new(),
        })
    }

    /// Chains `event` after the head (or the last entry pushed) and returns its entry, written
    /// by [`write`](Chain::write).
    pub(crate) fn push(&mut self, event: AuditEvent) -> AuditEntry {
        let entry = AuditEntry::following(self.head.as_ref(), event);
        self.head = Some(ChainHead::of(&entry));
        self.pending.push(entry.clone());
        entry
    }

    /// Inserts the entries pushed, in one statement.
    pub(crate) async fn write(
        self,
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> Result<(), PgError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let n = self.pending.len();
        let (mut seq, mut timestamp) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut kind, mut agent, mut detail) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut prev_hash, mut hash) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for e in self.pending {
            seq.push(int("audit_log.seq", e.seq)?);
            timestamp.push(int("audit_log.timestamp", e.timestamp)?);
            kind.push(e.kind);
            agent.push(e.agent);
            detail.push(e.detail);
            prev_hash.push(e.prev_hash);
            hash.push(e.hash);
        }
        let insert = tx
            .prepare_cached(
                "INSERT INTO audit_log (seq, timestamp, kind, agent, detail, prev_hash, hash)
                 SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[],
                                      $5::TEXT[], $6::TEXT[], $7::TEXT[])",
            )
            .await?;
        tx.execute(
            &insert,
            &[&seq, &timestamp, &kind, &agent, &detail, &prev_hash, &hash],
        )
        .await?;
        Ok(())
    }
}

/// The chain's head, read in `tx`.
pub(crate) async fn head_in(
    tx: &impl deadpool_postgres::GenericClient,
) -> Result<Option<ChainHead>, PgError> {
    let head = tx
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .await?;
    tx.query_opt(&head, &[])
        .await?
        .map(|row| {
            Ok(ChainHead {
                seq: uint("audit_log.seq", row.try_get(0)?)?,
                hash: row.try_get(1)?,
            })
        })
        .transpose()
}

/// Appends `event` after the chain's head inside the caller's transaction, taking the chain's
/// lock.
pub(crate) async fn append_in(
    tx: &deadpool_postgres::Transaction<'_>,
    event: AuditEvent,
) -> Result<AuditEntry, PgError> {
    let mut chain = Chain::lock(tx).await?;
    let entry = chain.push(event);
    chain.write(tx).await?;
    Ok(entry)
}
