use ao_budget::{CostRecord, Ledger};
use ao_store::{SqliteStore, StoreError};
use ao_types::BackendProvider;

use crate::TempStore;

#[test]
fn sqlite_ledger_conforms() {
    ao_budget::conformance::run_all(TempStore::new);
}

#[test]
fn records_survive_reopening_the_file() {
    let temp = TempStore::new();
    let record = CostRecord {
        agent_name: "a".into(),
        backend: BackendProvider::GptOss,
        input_tokens: 1,
        output_tokens: 2,
        cost_sats: 3,
        timestamp: 4,
    };
    temp.store.append(std::slice::from_ref(&record)).unwrap();
    drop(temp.store);
    let store = SqliteStore::open(temp.dir.path().join("ao.db")).unwrap();
    assert_eq!(store.load_range(0, u64::MAX).unwrap(), [record]);
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "this is not a database, it is a shopping list\n".repeat(200),
    )
    .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.txt"));
    // Nothing was overwritten.
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("this is not a database")
    );
}

#[test]
fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY);")
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::ForeignDatabase { found: 0, .. }),
        "{err:?}"
    );

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "application_id", 1234).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains("is not an agent-orchestrator database"),
        "{err}"
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let temp = TempStore::new();
    let path = temp.db_path();
    drop(temp.store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found: 999, .. }),
        "{err:?}"
    );
}

#[test]
fn out_of_range_values_are_refused_and_nothing_is_written() {
    let temp = TempStore::new();
    let ok = CostRecord {
        agent_name: "a".into(),
        backend: BackendProvider::Codex,
        input_tokens: 1,
        output_tokens: 1,
        cost_sats: 1,
        timestamp: 1,
    };
    let mut bad = ok.clone();
    bad.cost_sats = u64::MAX;
    assert!(temp.store.append(&[ok, bad]).is_err());
    assert!(temp.store.load_range(0, u64::MAX).unwrap().is_empty());
}

#[test]
fn api_keys_are_stored_as_hashes_and_revoked_once() {
    let temp = crate::TempStore::new();
    let row = ao_store::ApiKeyRow {
        id: "k1".into(),
        agent: "oracle".into(),
        sha256: "ab".repeat(32),
        created_at: 10,
        revoked_at: None,
    };
    temp.store.add_api_key(&row).unwrap();
    assert!(
        temp.store.add_api_key(&row).is_err(),
        "ids and hashes are unique"
    );
    assert_eq!(temp.store.api_keys().unwrap(), std::slice::from_ref(&row));
    assert!(temp.store.revoke_api_key("k1", 20).unwrap());
    assert!(!temp.store.revoke_api_key("k1", 30).unwrap());
    assert!(!temp.store.revoke_api_key("nope", 30).unwrap());
    assert_eq!(temp.store.api_keys().unwrap()[0].revoked_at, Some(20));
}

#[cfg(unix)]
#[test]
fn a_new_database_and_its_wal_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    let temp = TempStore::new();
    // A write, so that the write-ahead log and its index exist.
    temp.store
        .append(&[CostRecord {
            agent_name: "a".into(),
            backend: BackendProvider::Codex,
            input_tokens: 1,
            output_tokens: 1,
            cost_sats: 1,
            timestamp: 1,
        }])
        .unwrap();
    let db = temp.db_path();
    for suffix in ["", "-wal", "-shm"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
    }
}
