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
    );
    CREATE TABLE checkpoints (
        id TEXT PRIMARY KEY,
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL,
        signer TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        event TEXT NOT NULL
    );",
    // 2: budgets shared by every gateway on the database: one row per agent and window (its UTC
    // day, its session), reserved and spent, locked for each reservation; holds carry the
    // windows they reserved in, a lease and their owner.
    r#"CREATE TABLE budget_windows (
        agent TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('day', 'session')),
        start BIGINT NOT NULL,
        spent_sats BIGINT NOT NULL DEFAULT 0,
        reserved_sats BIGINT NOT NULL DEFAULT 0,
        spent_tokens BIGINT NOT NULL DEFAULT 0,
        reserved_tokens BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (agent, kind, start)
    );
    ALTER TABLE holds
        ADD COLUMN day BIGINT,
        ADD COLUMN session BIGINT,
        ADD COLUMN tokens BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN expires_at BIGINT,
        ADD COLUMN owner TEXT;
    CREATE INDEX holds_by_lease ON holds (expires_at);

    -- Reserves `sats` and `tokens` for `agent` in its day and session windows and writes the
    -- hold, all or nothing: returns NULL when admitted, else which limit refused and what was
    -- spent against it (settled and reserved). Day row first, then session: one lock order.
    CREATE FUNCTION ao_reserve(
        p_agent TEXT, p_day BIGINT, p_session BIGINT, p_sats BIGINT, p_tokens BIGINT,
        p_daily_limit NUMERIC, p_session_limit NUMERIC, p_token_cap NUMERIC,
        p_hold TEXT, p_backend TEXT, p_input BIGINT, p_output BIGINT,
        p_now BIGINT, p_expires BIGINT, p_owner TEXT
    ) RETURNS TABLE (refused TEXT, used NUMERIC) LANGUAGE plpgsql AS $$
    DECLARE
        d budget_windows;
        s budget_windows;
    BEGIN
        -- The transaction commits without waiting for the disk: the agent's row is locked until
        -- commit, and every call of the agent waits on it. The server writes its WAL within
        -- `wal_writer_delay`; a crash of the server itself loses what it had not written, and
        -- the call's settlement then charges it all the same (ao_settle).
        PERFORM set_config('synchronous_commit', 'off', true);
        INSERT INTO budget_windows (agent, kind, start)
            VALUES (p_agent, 'day', p_day), (p_agent, 'session', p_session)
            ON CONFLICT DO NOTHING;
        SELECT * INTO d FROM budget_windows
            WHERE agent = p_agent AND kind = 'day' AND start = p_day FOR UPDATE;
        SELECT * INTO s FROM budget_windows
            WHERE agent = p_agent AND kind = 'session' AND start = p_session FOR UPDATE;
        IF d.spent_sats::NUMERIC + d.reserved_sats >= p_daily_limit
            OR d.spent_sats::NUMERIC + d.reserved_sats + p_sats > p_daily_limit THEN
            RETURN QUERY SELECT 'daily'::TEXT, d.spent_sats::NUMERIC + d.reserved_sats;
            RETURN;
        END IF;
        IF s.spent_sats::NUMERIC + s.reserved_sats >= p_session_limit
            OR s.spent_sats::NUMERIC + s.reserved_sats + p_sats > p_session_limit THEN
            RETURN QUERY SELECT 'session'::TEXT, s.spent_sats::NUMERIC + s.reserved_sats;
            RETURN;
        END IF;
        IF p_token_cap IS NOT NULL AND (
            d.spent_tokens::NUMERIC + d.reserved_tokens >= p_token_cap
            OR d.spent_tokens::NUMERIC + d.reserved_tokens + p_tokens > p_token_cap) THEN
            RETURN QUERY SELECT 'tokens'::TEXT, d.spent_tokens::NUMERIC + d.reserved_tokens;
            RETURN;
        END IF;
        UPDATE budget_windows
            SET reserved_sats = reserved_sats + p_sats, reserved_tokens = reserved_tokens + p_tokens
            WHERE agent = p_agent AND ((kind = 'day' AND start = p_day)
                OR (kind = 'session' AND start = p_session));
        INSERT INTO holds (id, agent, backend, input_tokens, output_tokens, cost_sats, created_at,
                           day, session, tokens, expires_at, owner)
            VALUES (p_hold, p_agent, p_backend, p_input, p_output, p_sats, p_now,
                    p_day, p_session, p_tokens, p_expires, p_owner);
        RETURN QUERY SELECT NULL::TEXT, 0::NUMERIC;
    END $$;

    -- Ends hold `p_hold` of `p_agent` (reserved in windows `p_day` and `p_session`): its
    -- reservation leaves the windows, and the cost (if any) is spent and recorded with the hold's
    -- id. Returns the cost record's seq when charged, 0 when released, and NULL when there is
    -- nothing to do: the hold was settled, released, or charged after its lease ran out (a
    -- cost record names it). A charge for a hold that is gone and that no cost record names is
    -- made all the same: its reservation was committed asynchronously and lost with the server,
    -- but its call went out. Nothing is charged twice. The caller writes the cost record's audit
    -- entry in the same transaction.
    ALTER TABLE cost_records ADD COLUMN hold TEXT;
    CREATE UNIQUE INDEX cost_records_by_hold ON cost_records (hold) WHERE hold IS NOT NULL;
    CREATE FUNCTION ao_settle(
        p_hold TEXT, p_agent TEXT, p_day BIGINT, p_session BIGINT, p_charge BOOLEAN,
        p_backend TEXT, p_input BIGINT, p_output BIGINT, p_cost BIGINT, p_timestamp BIGINT
    ) RETURNS BIGINT LANGUAGE plpgsql AS $$
    DECLARE
        h holds;
        recorded BIGINT := 0;
    BEGIN
        DELETE FROM holds WHERE id = p_hold RETURNING * INTO h;
        IF NOT FOUND THEN
            IF NOT p_charge OR EXISTS (SELECT 1 FROM cost_records WHERE hold = p_hold) THEN
                RETURN NULL;
            END IF;
            h.agent := p_agent;
            h.day := p_day;
            h.session := p_session;
            h.cost_sats := 0;
            h.tokens := 0;
            INSERT INTO budget_windows (agent, kind, start)
                VALUES (p_agent, 'day', p_day), (p_agent, 'session', p_session)
                ON CONFLICT DO NOTHING;
        END IF;
        -- Day row, then session row, one statement each: the lock order of ao_reserve (one
        -- UPDATE of both would lock them in the order it finds them, and deadlock with it).
        UPDATE budget_windows SET
            reserved_sats = GREATEST(reserved_sats - h.cost_sats, 0),
            reserved_tokens = GREATEST(reserved_tokens - h.tokens, 0),
            spent_sats = spent_sats + CASE WHEN p_charge THEN p_cost ELSE 0 END,
            spent_tokens = spent_tokens + CASE WHEN p_charge THEN p_input + p_output ELSE 0 END
            WHERE agent = h.agent AND kind = 'day' AND start = h.day;
        UPDATE budget_windows SET
            reserved_sats = GREATEST(reserved_sats - h.cost_sats, 0),
            reserved_tokens = GREATEST(reserved_tokens - h.tokens, 0),
            spent_sats = spent_sats + CASE WHEN p_charge THEN p_cost ELSE 0 END,
            spent_tokens = spent_tokens + CASE WHEN p_charge THEN p_input + p_output ELSE 0 END
            WHERE agent = h.agent AND kind = 'session' AND start = h.session;
        IF p_charge THEN
            INSERT INTO cost_records
                (agent, backend, input_tokens, output_tokens, cost_sats, timestamp, hold)
                VALUES (h.agent, p_backend, p_input, p_output, p_cost, p_timestamp, p_hold)
                RETURNING seq INTO recorded;
        END IF;
        RETURN recorded;
    END $$;"#,
    // 3: Lightning payments to data vending machines, at most once per payment hash whichever
    // gateway pays, and the jobs published and not yet answered (`payments.rs`).
    "CREATE TABLE dvm_payments (
        payment_hash TEXT PRIMARY KEY CHECK (length(payment_hash) = 64),
        job_id TEXT NOT NULL,
        amount_msats BIGINT NOT NULL CHECK (amount_msats >= 0),
        fee_msats BIGINT CHECK (fee_msats >= 0),
        state TEXT NOT NULL CHECK (state IN ('paying', 'paid', 'failed')),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX dvm_payments_by_job ON dvm_payments (job_id);
    CREATE TABLE dvm_jobs (
        request_key TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        event TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
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
