//! The PostgreSQL schema, as an ordered list of migrations recorded in `ao_schema`.

use deadpool_postgres::Pool;

use super::error::PgError;

/// Every migration, in order. Never edit one that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the ledger, write-ahead holds, approvals, the audit log and API keys.
    "CREATE TABLE cost_records (
        seq BIGSERIAL PRIMARY KEY,
        agent TEXT NOT NULL,
        backend TEXT NOT NULL,
        input_tokens BIGINT NOT NULL CHECK (input_tokens >= 0),
        output_tokens BIGINT NOT NULL CHECK (output_tokens >= 0),
        cost_sats BIGINT NOT NULL CHECK (cost_sats >= 0),
        timestamp BIGINT NOT NULL CHECK (timestamp >= 0)
    );
    CREATE INDEX cost_records_by_time ON cost_records (timestamp, seq);
    CREATE INDEX cost_records_by_agent ON cost_records (agent, timestamp, seq);
    CREATE TABLE holds (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        backend TEXT NOT NULL,
        input_tokens BIGINT NOT NULL CHECK (input_tokens >= 0),
        output_tokens BIGINT NOT NULL CHECK (output_tokens >= 0),
        cost_sats BIGINT NOT NULL CHECK (cost_sats >= 0),
        created_at BIGINT NOT NULL CHECK (created_at >= 0)
    );
    CREATE TABLE approvals (
        request_id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        filed BIGSERIAL,
        status TEXT NOT NULL,
        version BIGINT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX approvals_by_agent ON approvals (agent, created_at, filed);
    CREATE TABLE audit_log (
        seq BIGINT PRIMARY KEY,
        timestamp BIGINT NOT NULL,
        kind TEXT NOT NULL,
        agent TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
    );",
];

/// The advisory lock key migrations run under: `AOS1` as an integer.
const MIGRATION_LOCK: i64 = 0x414F_5331;

/// The schema version this build writes.
pub(crate) fn current_version() -> i32 {
    i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX)
}

/// Brings the schema up to date. Every migration runs in one transaction with the version it
/// records, under an advisory lock, so gateways starting together apply each exactly once.
pub(crate) async fn migrate(pool: &Pool) -> Result<(), PgError> {
    let mut client = pool.get().await.map_err(PgError::pool)?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS ao_schema (
            version INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let found: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM ao_schema", &[])
        .await?
        .get(0);
    let known = current_version();
    if found > known {
        return Err(PgError::TooNew { found, known });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.batch_execute(sql)
            .await
            .map_err(|source| PgError::Migrate { version, source })?;
        tx.execute("INSERT INTO ao_schema (version) VALUES ($1)", &[&version])
            .await
            .map_err(|source| PgError::Migrate { version, source })?;
    }
    tx.commit().await?;
    Ok(())
}
