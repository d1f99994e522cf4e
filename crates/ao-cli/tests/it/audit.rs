//! `ao audit` and `ao approvals verify-log` against a database an agent wrote to.

use std::path::PathBuf;

use agent_orchestrator::BackendProvider;
use agent_orchestrator::CostRecord;
use agent_orchestrator::budget::Ledger;
use agent_orchestrator::store::SqliteStore;

use crate::{ao, path_str, stderr, stdout};

/// A database holding three cost records of agent `a`.
fn charged() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ao.db");
    let store = SqliteStore::open(&db).unwrap();
    for (i, cost) in [40u64, 50, 60].into_iter().enumerate() {
        store
            .append(&[CostRecord {
                agent_name: "a".into(),
                backend: BackendProvider::Codex,
                input_tokens: 1_000,
                output_tokens: 200,
                cost_sats: cost,
                timestamp: 1_800_000_000 + i as u64,
            }])
            .unwrap();
    }
    (dir, db)
}

/// Runs `sql` on the database file directly, as an agent that can reach it would.
fn tamper(db: &std::path::Path, sql: &str) {
    let raw = rusqlite::Connection::open(db).unwrap();
    assert!(raw.execute(sql, []).unwrap() > 0, "{sql} changed nothing");
}

#[test]
fn verify_log_finds_cost_records_deleted_to_reset_a_budget() {
    let (_dir, db) = charged();
    let out = ao(&["approvals", "--db", path_str(&db), "verify-log"], &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    tamper(&db, "DELETE FROM cost_records WHERE agent = 'a'");
    let out = ao(&["approvals", "--db", path_str(&db), "verify-log"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let said = stdout(&out);
    assert!(
        said.contains("cost record 1")
            && said.contains("cost record 3")
            && said.contains("deleted"),
        "{said}"
    );
}

/// `charged()`, then three entries that concern no row, and the operator's key in a file.
fn with_operator() -> (tempfile::TempDir, PathBuf, nostr::Keys, PathBuf) {
    use agent_orchestrator::audit::{AuditEvent, AuditLog};
    use nostr::ToBech32;

    let (dir, db) = charged();
    let store = SqliteStore::open(&db).unwrap();
    for i in 0..3 {
        AuditLog::append(
            &store,
            AuditEvent::new(1_800_000_100 + i, "completion", "a", serde_json::json!(i)),
        )
        .unwrap();
    }
    let operator = nostr::Keys::generate();
    let key_file = dir.path().join("operator.nsec");
    std::fs::write(&key_file, operator.secret_key().to_bech32().unwrap()).unwrap();
    (dir, db, operator, key_file)
}

/// `ao audit checkpoint` on `db`: the event it printed, saved to a file beside it.
fn checkpoint(db: &std::path::Path, key_file: &std::path::Path) -> PathBuf {
    let out = ao(
        &[
            "audit",
            "checkpoint",
            "--db",
            path_str(db),
            "--key-file",
            path_str(key_file),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let saved = db.with_file_name("checkpoint.json");
    std::fs::write(&saved, stdout(&out)).unwrap();
    saved
}

fn verify_against(
    db: &std::path::Path,
    kept: &std::path::Path,
    operator: &str,
) -> std::process::Output {
    ao(
        &[
            "audit",
            "verify",
            "--db",
            path_str(db),
            "--checkpoint",
            path_str(kept),
            "--operator",
            operator,
        ],
        &[],
    )
}

#[test]
fn audit_checkpoint_signs_the_head_and_verify_finds_entries_cut_after_it() {
    let (_dir, db, operator, key_file) = with_operator();
    let kept = checkpoint(&db, &key_file);
    let event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&kept).unwrap()).unwrap();
    assert_eq!(event["kind"], 30078);
    assert_eq!(event["pubkey"], operator.public_key().to_hex());
    let tags = event["tags"].to_string();
    assert!(tags.contains(r#"["seq","6"]"#), "{tags}");
    assert!(
        tags.contains(r#"["application_id","0x414f5331"]"#),
        "{tags}"
    );

    let npub = nostr::ToBech32::to_bech32(&operator.public_key()).unwrap();
    let out = verify_against(&db, &kept, &npub);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("entry 6 has the hash the operator signed"),
        "{}",
        stdout(&out)
    );

    // The agent cuts the last entries, the checkpoint's own and its row among them.
    tamper(&db, "DELETE FROM audit_log WHERE seq >= 5");
    tamper(&db, "DELETE FROM checkpoints");
    let out = ao(&["approvals", "--db", path_str(&db), "verify-log"], &[]);
    assert!(out.status.success(), "the shorter chain alone is sound");
    let out = verify_against(&db, &kept, &npub);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("the log ends at entry 4, before the checkpoint's entry 6"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn audit_verify_finds_a_log_rewritten_before_the_checkpoint() {
    use agent_orchestrator::audit::{AuditEntry, AuditLog};

    let (_dir, db, operator, key_file) = with_operator();
    let kept = checkpoint(&db, &key_file);
    // The agent rewrites entry 5 and every hash after it, and drops the stored checkpoint: the
    // chain and the tables agree again.
    let mut entries = AuditLog::entries(&SqliteStore::open(&db).unwrap(), 1, usize::MAX).unwrap();
    entries.truncate(6);
    entries[4].detail = "\"nothing happened\"".into();
    let raw = rusqlite::Connection::open(&db).unwrap();
    raw.execute("DELETE FROM audit_log WHERE seq > 6", [])
        .unwrap();
    raw.execute("DELETE FROM checkpoints", []).unwrap();
    for i in 4..entries.len() {
        let prev = entries[i - 1].hash.clone();
        let e = &mut entries[i];
        e.prev_hash = prev;
        e.hash = AuditEntry::compute_hash(
            e.seq,
            e.timestamp,
            &e.kind,
            &e.agent,
            &e.detail,
            &e.prev_hash,
        );
        raw.execute(
            "UPDATE audit_log SET detail = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![e.detail, e.prev_hash, e.hash, e.seq as i64],
        )
        .unwrap();
    }
    drop(raw);
    let out = ao(&["approvals", "--db", path_str(&db), "verify-log"], &[]);
    assert!(out.status.success(), "{}", stdout(&out));
    let out = verify_against(&db, &kept, &operator.public_key().to_hex());
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("the log was rewritten at or before entry 6"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_checkpoint_by_another_key_proves_nothing() {
    let (_dir, db, _operator, key_file) = with_operator();
    let kept = checkpoint(&db, &key_file);
    let someone = nostr::Keys::generate().public_key().to_hex();
    let out = verify_against(&db, &kept, &someone);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("not by the operator"),
        "{}",
        stdout(&out)
    );
    // Without --operator there is nobody to trust it for.
    let out = ao(
        &[
            "audit",
            "verify",
            "--db",
            path_str(&db),
            "--checkpoint",
            path_str(&kept),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn audit_checkpoint_refuses_to_sign_a_log_that_does_not_verify() {
    let (_dir, db, _operator, key_file) = with_operator();
    tamper(&db, "DELETE FROM cost_records WHERE seq = 2");
    let out = ao(
        &[
            "audit",
            "checkpoint",
            "--db",
            path_str(&db),
            "--key-file",
            path_str(&key_file),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("cost record 2 was deleted"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("so none was signed"),
        "{}",
        stderr(&out)
    );
    let raw = rusqlite::Connection::open(&db).unwrap();
    let stored: i64 = raw
        .query_row("SELECT count(*) FROM checkpoints", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0);
}

#[test]
fn audit_checkpoint_signs_a_head_from_the_gateway_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let operator = nostr::Keys::generate();
    let key_file = dir.path().join("operator.nsec");
    std::fs::write(&key_file, operator.secret_key().to_secret_hex()).unwrap();
    let head = dir.path().join("head.json");
    let hash = "ab".repeat(32);
    std::fs::write(
        &head,
        format!(r#"{{"seq": 7, "hash": "{hash}", "application_id": "0x414f5331", "kind": 30078}}"#),
    )
    .unwrap();
    let out = ao(
        &[
            "audit",
            "checkpoint",
            "--head",
            path_str(&head),
            "--key-file",
            path_str(&key_file),
            "--label",
            "prod",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let signed = agent_orchestrator::audit::parse_checkpoint_json(&stdout(&out)).unwrap();
    assert_eq!(
        (signed.head.seq, signed.head.hash.as_str()),
        (7, hash.as_str())
    );
    assert_eq!(signed.signer, operator.public_key());
    assert_eq!(signed.label, "prod");
}
