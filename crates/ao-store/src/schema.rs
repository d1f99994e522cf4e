//! The schema, as an ordered list of migrations. The file's `user_version` is the number of
//! migrations applied; `application_id` marks the file as ours.

use std::path::Path;

use rusqlite::Connection;

use crate::error::StoreError;
use crate::rows::adopt_rows;

/// `AOS1` in ASCII: marks a SQLite file as an agent-orchestrator database.
pub(crate) const APPLICATION_ID: i32 = 0x414F_5331;

/// Every migration, in order. Never edit one that has shipped: add a new one.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the cost ledger.
    "CREATE TABLE cost_records (
        seq INTEGER PRIMARY KEY,
        agent TEXT NOT NULL,
        backend TEXT NOT NULL,
        input_tokens INTEGER NOT NULL CHECK (input_tokens >= 0),
        output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
        cost_sats INTEGER NOT NULL CHECK (cost_sats >= 0),
        timestamp INTEGER NOT NULL CHECK (timestamp >= 0)
    ) STRICT;
    CREATE INDEX cost_records_by_time ON cost_records (timestamp, seq);
    CREATE INDEX cost_records_by_agent ON cost_records (agent, timestamp, seq);",
    // 2: approval requests and the hash-chained audit log.
    "CREATE TABLE approvals (
        request_id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        filed INTEGER NOT NULL,
        status TEXT NOT NULL,
        record TEXT NOT NULL
    ) STRICT;
    CREATE INDEX approvals_by_agent ON approvals (agent, created_at, filed);
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        timestamp INTEGER NOT NULL,
        kind TEXT NOT NULL,
        agent TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    ) STRICT;",
    // 3: gateway API keys, stored as SHA-256 hashes only.
    "CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) STRICT;",
    // 4: write-ahead holds: reservations of calls dispatched and not yet settled.
    "CREATE TABLE holds (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        backend TEXT NOT NULL,
        input_tokens INTEGER NOT NULL CHECK (input_tokens >= 0),
        output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
        cost_sats INTEGER NOT NULL CHECK (cost_sats >= 0),
        created_at INTEGER NOT NULL CHECK (created_at >= 0)
    ) STRICT;",
    // 5: signed checkpoints of the audit log; from here on, rows are audited.
    AUDITED_ROWS,
    // 6: Lightning payments to data vending machines, at most once per payment hash, and the
    // jobs published and not yet answered (`payments.rs`).
    "CREATE TABLE dvm_payments (
        payment_hash TEXT PRIMARY KEY CHECK (length(payment_hash) = 64),
        job_id TEXT NOT NULL,
        amount_msats INTEGER NOT NULL CHECK (amount_msats >= 0),
        fee_msats INTEGER CHECK (fee_msats >= 0),
        state TEXT NOT NULL CHECK (state IN ('paying', 'paid', 'failed')),
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX dvm_payments_by_job ON dvm_payments (job_id);
    CREATE TABLE dvm_jobs (
        request_key TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        event TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;",
];

/// The migration from which every cost record, API key change and checkpoint is written with an
/// audit entry (`rows.rs`). When it runs, the rows already there get theirs ([`adopt_rows`]).
pub(crate) const AUDITED_ROWS: &str = "CREATE TABLE checkpoints (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL CHECK (seq >= 1),
        hash TEXT NOT NULL,
        signer TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        event TEXT NOT NULL
    ) STRICT;";

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Brings the file's schema up to date, refusing files of other applications or newer versions.
///
/// Each migration runs in its own write transaction that re-reads the version first, so two
/// processes opening a new file at once apply each migration exactly once.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let app_id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(StoreError::ForeignDatabase {
            path: path.to_owned(),
            found: app_id,
        });
    }
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > current_version() {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found: version,
                supported: current_version(),
            });
        }
        if version == 0 && app_id == 0 {
            let tables: i64 = tx.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |r| r.get(0),
            )?;
            if tables > 0 {
                return Err(StoreError::ForeignDatabase {
                    path: path.to_owned(),
                    found: 0,
                });
            }
        }
        let Some(sql) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            tx.commit()?;
            return Ok(());
        };
        tx.execute_batch(sql)?;
        // Found by its text, not its number: migrations appended elsewhere may renumber it.
        if *sql == AUDITED_ROWS {
            adopt_rows(&tx)?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        tracing::info!(version = version + 1, path = %path.display(), "database schema migrated");
    }
}
