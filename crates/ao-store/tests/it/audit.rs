//! Every row that restrains an agent (its cost records, its API keys) is in the hash chain,
//! written in the same transaction as the row; `verify` finds a row that was deleted, edited or
//! inserted behind the store's back, as an agent that can write to the database would.

use ao_audit::AuditLog;
use ao_budget::{CostRecord, Ledger};
use ao_store::{ApiKeyRow, Finding};
use ao_types::BackendProvider;

use crate::TempStore;

fn record(agent: &str, cost_sats: u64, timestamp: u64) -> CostRecord {
    CostRecord {
        agent_name: agent.into(),
        backend: BackendProvider::Codex,
        input_tokens: 1_000,
        output_tokens: 200,
        cost_sats,
        timestamp,
    }
}

fn key(id: &str, agent: &str, created_at: u64) -> ApiKeyRow {
    ApiKeyRow {
        id: id.into(),
        agent: agent.into(),
        sha256: format!("{:0>64}", id),
        created_at,
        revoked_at: None,
    }
}

/// Runs `sql` on the file directly, as the agent would.
fn tamper(temp: &TempStore, sql: &str) {
    let raw = rusqlite::Connection::open(temp.db_path()).unwrap();
    let changed = raw.execute(sql, []).unwrap();
    assert!(changed > 0, "{sql} changed nothing");
}

/// The first thing `verify` finds wrong, as it says it.
fn broken(temp: &TempStore) -> String {
    temp.store.verify().unwrap().unwrap_err().to_string()
}

#[test]
fn every_cost_record_is_chained_with_its_row_id_and_content() {
    let temp = TempStore::new();
    Ledger::append(&temp.store, &[record("a", 5, 100), record("b", 7, 101)]).unwrap();
    temp.store
        .settle_holds(&["no-such-hold".into()], &[record("a", 9, 102)])
        .unwrap();
    let entries = temp.store.entries(1, usize::MAX).unwrap();
    let costs: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == "cost.recorded")
        .collect();
    assert_eq!(costs.len(), 3, "{entries:#?}");
    let detail = costs[1].detail_json().unwrap();
    assert_eq!(costs[1].agent, "b");
    assert_eq!(detail["seq"], 2);
    assert_eq!(detail["backend"], "codex");
    assert_eq!(detail["input_tokens"], 1_000);
    assert_eq!(detail["output_tokens"], 200);
    assert_eq!(detail["cost_sats"], 7);
    assert_eq!(detail["timestamp"], 101);
    assert_eq!(costs[2].detail_json().unwrap()["seq"], 3);
    assert_eq!(temp.store.verify().unwrap(), Ok(3));
    let report = temp.store.audit_report().unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    assert_eq!(report.cost_records, 3);
}

#[test]
fn deleting_cost_records_to_reset_a_budget_is_found_by_verify() {
    let temp = TempStore::new();
    for (i, cost) in [40, 50, 60].into_iter().enumerate() {
        Ledger::append(&temp.store, &[record("a", cost, 100 + i as u64)]).unwrap();
    }
    assert_eq!(temp.store.verify().unwrap(), Ok(3));
    tamper(
        &temp,
        "DELETE FROM cost_records WHERE agent = 'a' AND seq >= 2",
    );
    let link = temp.store.verify().unwrap().unwrap_err();
    assert_eq!(link.seq, 2, "the first entry whose row is gone");
    assert!(
        link.reason.contains("cost record 2") && link.reason.contains("deleted"),
        "{link}"
    );
    let report = temp.store.audit_report().unwrap();
    assert_eq!(
        report.findings.len(),
        2,
        "each deleted row is reported: {:?}",
        report.findings
    );
    assert!(
        report
            .findings
            .iter()
            .all(|f| matches!(f, Finding::Deleted { .. }))
    );
}

#[test]
fn editing_or_inserting_cost_records_is_found_by_verify() {
    let temp = TempStore::new();
    Ledger::append(&temp.store, &[record("a", 40, 100), record("a", 50, 101)]).unwrap();
    tamper(&temp, "UPDATE cost_records SET cost_sats = 0 WHERE seq = 2");
    let said = broken(&temp);
    assert!(
        said.contains("cost record 2") && said.contains("cost_sats is 0") && said.contains("50"),
        "{said}"
    );
    tamper(
        &temp,
        "UPDATE cost_records SET cost_sats = 50 WHERE seq = 2",
    );
    assert_eq!(temp.store.verify().unwrap(), Ok(2));
    tamper(
        &temp,
        "UPDATE cost_records SET agent = 'someone-else' WHERE seq = 1",
    );
    assert!(broken(&temp).contains("agent"), "{}", broken(&temp));
    tamper(&temp, "UPDATE cost_records SET agent = 'a' WHERE seq = 1");
    tamper(
        &temp,
        "INSERT INTO cost_records (agent, backend, input_tokens, output_tokens, cost_sats, timestamp)
         VALUES ('rival', 'codex', 1, 1, 99999, 102)",
    );
    let said = broken(&temp);
    assert!(
        said.contains("cost record 3") && said.contains("no audit entry"),
        "{said}"
    );
}

#[test]
fn a_deleted_cost_record_whose_row_id_is_reused_is_found() {
    let temp = TempStore::new();
    Ledger::append(&temp.store, &[record("a", 40, 100), record("a", 500, 101)]).unwrap();
    // The last row deleted, SQLite gives its id to the next record, which the store audits.
    tamper(&temp, "DELETE FROM cost_records WHERE seq = 2");
    Ledger::append(&temp.store, &[record("a", 1, 102)]).unwrap();
    let said = broken(&temp);
    assert!(said.contains("cost record 2"), "{said}");
    assert!(said.contains("entries 2 and 3"), "{said}");
}

#[test]
fn api_key_creation_and_revocation_are_chained() {
    let temp = TempStore::new();
    temp.store.add_api_key(&key("k1", "oracle", 10)).unwrap();
    assert!(temp.store.revoke_api_key("k1", 20).unwrap());
    assert!(!temp.store.revoke_api_key("k1", 30).unwrap());
    let entries = temp.store.entries(1, usize::MAX).unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["api_key.created", "api_key.revoked"]);
    assert_eq!(entries[0].agent, "oracle");
    assert_eq!(entries[0].detail_json().unwrap()["id"], "k1");
    assert_eq!(
        entries[0].detail_json().unwrap()["sha256"],
        format!("{:0>64}", "k1")
    );
    assert_eq!(entries[1].detail_json().unwrap()["revoked_at"], 20);
    assert_eq!(temp.store.verify().unwrap(), Ok(2));
}

#[test]
fn tampering_with_api_keys_is_found_by_verify() {
    let temp = TempStore::new();
    temp.store.add_api_key(&key("k1", "oracle", 10)).unwrap();
    temp.store.add_api_key(&key("k2", "sly", 11)).unwrap();
    assert!(temp.store.revoke_api_key("k1", 20).unwrap());
    assert_eq!(temp.store.verify().unwrap(), Ok(3));

    // A revoked key brought back to life.
    tamper(
        &temp,
        "UPDATE api_keys SET revoked_at = NULL WHERE id = 'k1'",
    );
    let said = broken(&temp);
    assert!(
        said.contains("API key `k1`") && said.contains("revoked_at"),
        "{said}"
    );
    tamper(&temp, "UPDATE api_keys SET revoked_at = 20 WHERE id = 'k1'");
    assert_eq!(temp.store.verify().unwrap(), Ok(3));

    // A key moved to another agent.
    tamper(
        &temp,
        "UPDATE api_keys SET agent = 'oracle' WHERE id = 'k2'",
    );
    assert!(broken(&temp).contains("agent"), "{}", broken(&temp));
    tamper(&temp, "UPDATE api_keys SET agent = 'sly' WHERE id = 'k2'");

    // A key the agent made itself.
    tamper(
        &temp,
        "INSERT INTO api_keys (id, agent, sha256, created_at) VALUES ('k3', 'oracle', 'ff', 12)",
    );
    assert!(
        broken(&temp).contains("API key `k3` has no audit entry"),
        "{}",
        broken(&temp)
    );
    tamper(&temp, "DELETE FROM api_keys WHERE id = 'k3'");

    // A key deleted.
    tamper(&temp, "DELETE FROM api_keys WHERE id = 'k2'");
    let said = broken(&temp);
    assert!(
        said.contains("API key `k2`") && said.contains("deleted"),
        "{said}"
    );
}

mod checkpoints {
    use ao_audit::{
        AuditEntry, AuditEvent, AuditLog, ChainHead, Checkpoint, CheckpointMismatch,
        parse_checkpoint, sign_checkpoint,
    };
    use ao_store::{Finding, StoreError};
    use nostr::Keys;
    use serde_json::json;

    use super::tamper;
    use crate::TempStore;

    /// A log of three entries that concern no row.
    fn three() -> TempStore {
        let temp = TempStore::new();
        for i in 0..3 {
            AuditLog::append(&temp.store, AuditEvent::new(i, "completion", "a", json!(i))).unwrap();
        }
        temp
    }

    fn checkpoint(temp: &TempStore, keys: &Keys, head: &ChainHead) -> Checkpoint {
        let app = temp.store.application_id().unwrap();
        parse_checkpoint(&sign_checkpoint(keys, head, app, "test", 1_800_000_000).unwrap()).unwrap()
    }

    #[test]
    fn a_checkpoint_of_the_head_is_stored_with_its_entry() {
        let temp = three();
        let operator = Keys::generate();
        let head = temp.store.head().unwrap().unwrap();
        assert_eq!(head.seq, 3);
        let signed = checkpoint(&temp, &operator, &head);
        assert!(temp.store.add_checkpoint(&signed).unwrap());
        assert!(!temp.store.add_checkpoint(&signed).unwrap(), "stored once");
        let last = temp.store.entries(4, 1).unwrap().remove(0);
        assert_eq!(last.kind, "audit.checkpoint");
        assert_eq!(last.detail_json().unwrap()["seq"], 3);
        let report = temp.store.audit_report().unwrap();
        assert!(report.is_intact(), "{:?}", report.findings);
        assert_eq!(report.checkpoints, std::slice::from_ref(&signed));
        assert_eq!(report.head.unwrap().seq, 4);
        assert_eq!(temp.store.check_checkpoint(&signed).unwrap(), Ok(()));

        // A checkpoint that names entry 2 with entry 3's hash is not of this log.
        let wrong = checkpoint(
            &temp,
            &operator,
            &ChainHead {
                seq: 2,
                hash: head.hash.clone(),
            },
        );
        let err = temp.store.add_checkpoint(&wrong).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Checkpoint(CheckpointMismatch::Rewritten { seq: 2, .. })
            ),
            "{err:?}"
        );
        // Neither is one past the end.
        let ahead = checkpoint(
            &temp,
            &operator,
            &ChainHead {
                seq: 9,
                hash: head.hash,
            },
        );
        assert!(matches!(
            temp.store.add_checkpoint(&ahead).unwrap_err(),
            StoreError::Checkpoint(CheckpointMismatch::Cut { seq: 9, len: 4 })
        ));
    }

    #[test]
    fn entries_cut_from_the_end_are_found_against_a_checkpoint() {
        let temp = three();
        let head = temp.store.head().unwrap().unwrap();
        let kept_elsewhere = checkpoint(&temp, &Keys::generate(), &head);
        assert!(temp.store.add_checkpoint(&kept_elsewhere).unwrap());
        // The agent cuts the last entries, the checkpoint's own among them, and its row.
        tamper(&temp, "DELETE FROM audit_log WHERE seq >= 3");
        tamper(&temp, "DELETE FROM checkpoints");
        assert_eq!(
            temp.store.verify().unwrap(),
            Ok(2),
            "a shorter chain is still a sound chain"
        );
        assert_eq!(
            temp.store.check_checkpoint(&kept_elsewhere).unwrap(),
            Err(CheckpointMismatch::Cut { seq: 3, len: 2 })
        );
    }

    #[test]
    fn a_chain_rewritten_whole_is_found_against_a_checkpoint() {
        let temp = three();
        let head = temp.store.head().unwrap().unwrap();
        let signed = checkpoint(&temp, &Keys::generate(), &head);
        assert!(temp.store.add_checkpoint(&signed).unwrap());
        // The agent edits entry 2 and recomputes every hash from there: the chain is sound again.
        let mut entries = temp.store.entries(1, usize::MAX).unwrap();
        entries[1].detail = json!("nothing happened").to_string();
        let raw = rusqlite::Connection::open(temp.db_path()).unwrap();
        for i in 1..entries.len() {
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
        let report = temp.store.audit_report().unwrap();
        assert!(
            matches!(
                report.findings.as_slice(),
                [Finding::CheckpointMismatch {
                    seq: 3,
                    mismatch: CheckpointMismatch::Rewritten { .. },
                    ..
                }]
            ),
            "the stored checkpoint catches it: {:?}",
            report.findings
        );
        assert!(matches!(
            temp.store.check_checkpoint(&signed).unwrap(),
            Err(CheckpointMismatch::Rewritten { seq: 3, .. })
        ));
    }
}
