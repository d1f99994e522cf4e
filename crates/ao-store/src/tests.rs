use super::*;

#[test]
fn a_new_file_gets_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("ao.db")).unwrap();
    assert_eq!(store.schema_version().unwrap(), schema::current_version());
    let mode: String = store
        .reader()
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_failing_write_rolls_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("ao.db")).unwrap();
    let err = store
        .write(|conn| {
            conn.execute(
                "INSERT INTO cost_records (agent, backend, input_tokens, output_tokens, cost_sats, timestamp)
                 VALUES ('a', 'codex', 1, 1, 1, 1)",
                [],
            )?;
            Err::<(), _>(StoreError::TooLarge {
                field: "test",
                value: u64::MAX,
            })
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
    let count: i64 = store
        .reader()
        .unwrap()
        .query_row("SELECT count(*) FROM cost_records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0);
    let n = store
        .write(|conn| Ok(conn.query_row("SELECT 41 + 1", [], |r| r.get::<_, i64>(0))?))
        .unwrap();
    assert_eq!(n, 42);
}

#[test]
fn a_panicking_write_fails_alone_and_the_writer_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("ao.db")).unwrap();
    let err = store
        .write(|_| -> Result<(), StoreError> { panic!("a bug in a write job") })
        .unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
    assert_eq!(store.write(|_| Ok(7)).unwrap(), 7);
}

#[test]
fn an_undecodable_approval_record_keeps_the_decoder_error_as_its_cause() {
    use ao_approvals::ApprovalStore;
    use std::error::Error as _;

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("ao.db")).unwrap();
    store
        .write(|conn| {
            conn.execute(
                "INSERT INTO approvals (request_id, agent, created_at, filed, status, record)
                 VALUES ('r1', 'a', 1, 1, 'pending', '{not json')",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    let err = store.load("r1").unwrap_err();
    let cause = err
        .source()
        .and_then(|s| s.downcast_ref::<StoreError>())
        .unwrap();
    assert!(
        matches!(
            cause,
            StoreError::Decode {
                what: "approval record",
                ..
            }
        ),
        "{cause:?}"
    );
    assert!(cause.source().unwrap().is::<serde_json::Error>());
    let report = ao_types::Report::new(&err).to_string();
    assert!(
        report.contains("a stored approval record cannot be decoded"),
        "{report}"
    );
    assert!(report.contains("key must be a string"), "{report}");
}

#[test]
fn rows_from_before_auditing_are_adopted_when_the_file_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ao.db");
    // A file written by the version before rows were audited.
    let before = schema::MIGRATIONS
        .iter()
        .position(|m| *m == schema::AUDITED_ROWS)
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in &schema::MIGRATIONS[..before] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "application_id", schema::APPLICATION_ID)
        .unwrap();
    conn.pragma_update(None, "user_version", before as i64)
        .unwrap();
    conn.execute_batch(
        "INSERT INTO cost_records (agent, backend, input_tokens, output_tokens, cost_sats, timestamp)
         VALUES ('a', 'codex', 10, 20, 3, 100), ('b', 'openai', 1, 2, 4, 101);
         INSERT INTO api_keys (id, agent, sha256, created_at, revoked_at)
         VALUES ('k1', 'a', 'aa', 5, NULL), ('k2', 'b', 'bb', 6, 7);",
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path).unwrap();
    let report = store.audit_report().unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    assert_eq!((report.cost_records, report.api_keys), (2, 2));
    let entries = ao_audit::AuditLog::entries(&store, 1, usize::MAX).unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "cost.recorded",
            "cost.recorded",
            "api_key.created",
            "api_key.created",
            "api_key.revoked"
        ]
    );
    assert!(
        entries
            .iter()
            .all(|e| e.detail_json().unwrap()["adopted"] == true)
    );
    // Reopening adopts nothing twice.
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(ao_audit::AuditLog::verify(&store).unwrap(), Ok(5));
    // From now on a deleted row from before is found like any other.
    store
        .write(|conn| Ok(conn.execute("DELETE FROM cost_records WHERE seq = 1", [])?))
        .unwrap();
    let broken = ao_audit::AuditLog::verify(&store).unwrap().unwrap_err();
    assert_eq!(broken.seq, 1);
    assert!(
        broken.reason.contains("cost record 1 was deleted"),
        "{broken}"
    );
}
