//! The audit log on PostgreSQL vouches for the same rows as on SQLite (cost records, API keys,
//! checkpoints), while several gateways settle and append at once; a row changed behind the
//! stores' backs is found.

use std::time::Duration;

use ao_audit::{AuditEvent, AuditLog, parse_checkpoint, sign_checkpoint};
use ao_budget::{BudgetConfig, CostRecord, Ledger, Limits};
use ao_store::pg::SharedBudgets;
use ao_store::{ApiKeyRow, AuditedRow, Finding, PgOptions, PgStore, Store, StoreError};
use ao_types::{BackendProvider, TokenUsage};
use nostr::Keys;
use serde_json::json;

use crate::pg::scratch;

const NOW: u64 = 1_800_000_000;

fn record(agent: &str, cost_sats: u64) -> CostRecord {
    CostRecord {
        agent_name: agent.into(),
        backend: BackendProvider::Codex,
        input_tokens: 100,
        output_tokens: 20,
        cost_sats,
        timestamp: NOW,
    }
}

/// Four gateways settle 25 calls each and append an entry after each, all at once: one chain,
/// with an entry for every cost record, that verifies.
#[test]
fn four_gateways_settling_at_once_keep_one_chain_that_vouches_for_every_cost() {
    let Some((first, schema)) = scratch() else {
        return;
    };
    let limits = Limits {
        default_budget: BudgetConfig {
            daily_limit_sats: 1_000_000,
            session_limit_sats: 1_000_000,
            warn_threshold_pct: 80,
        },
        ..Limits::default()
    };
    let gateways: Vec<(PgStore, SharedBudgets)> = (0..4)
        .map(|i| {
            let store = if i == 0 {
                first.clone()
            } else {
                PgStore::connect(schema.url(), PgOptions::default()).unwrap()
            };
            let budgets =
                SharedBudgets::new(store.clone(), limits.clone(), Duration::from_secs(600));
            (store, budgets)
        })
        .collect();
    std::thread::scope(|s| {
        for (i, (store, budgets)) in gateways.iter().enumerate() {
            s.spawn(move || {
                for n in 0..25u64 {
                    let hold = futures_executor(budgets.reserve(
                        "oracle",
                        NOW - 60,
                        10,
                        TokenUsage::new(100, 20),
                        BackendProvider::Codex,
                        NOW,
                    ))
                    .unwrap();
                    assert!(
                        budgets
                            .settle_blocking(&hold, Some(&record("oracle", n + 1)))
                            .unwrap()
                    );
                    let event = AuditEvent::new(NOW, "completion", "oracle", json!({"gateway": i}));
                    AuditLog::append(store, event).unwrap();
                }
            });
        }
    });
    let report = first.audit_report().unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    assert_eq!((report.cost_records, report.entries), (100, 200));
    assert_eq!(first.load_range(0, u64::MAX).unwrap().len(), 100);
}

/// Polls a future to completion on a runtime of its own (each test thread its own).
fn futures_executor<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Deleting a cost record (to reset a budget) or un-revoking a key in the database is found.
#[test]
fn rows_changed_behind_the_stores_back_are_found() {
    let Some((pg, schema)) = scratch() else {
        return;
    };
    let store = Store::from(pg);
    Ledger::append(&store, &[record("a", 40), record("a", 50)]).unwrap();
    let key = ApiKeyRow {
        id: "k1".into(),
        agent: "a".into(),
        sha256: "0".repeat(64),
        created_at: NOW,
        revoked_at: None,
    };
    store.add_api_key(&key).unwrap();
    assert!(store.revoke_api_key("k1", NOW + 1).unwrap());
    assert!(
        !store.revoke_api_key("k1", NOW + 2).unwrap(),
        "revoked once"
    );
    let report = store.audit_report().unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    assert_eq!(
        (report.cost_records, report.api_keys, report.entries),
        (2, 1, 4)
    );

    schema
        .execute("DELETE FROM cost_records WHERE seq = 2")
        .unwrap();
    schema
        .execute("UPDATE api_keys SET revoked_at = NULL")
        .unwrap();
    let findings = store.audit_report().unwrap().findings;
    assert!(
        findings.contains(&Finding::Deleted {
            row: AuditedRow::CostRecord(2),
            entry: 2
        }),
        "{findings:?}"
    );
    assert!(
        findings.iter().any(|f| matches!(
            f,
            Finding::Edited { row: AuditedRow::ApiKey(id), field: "revoked_at", .. } if id == "k1"
        )),
        "{findings:?}"
    );
    assert!(store.verify().unwrap().is_err());
}

/// A checkpoint signed over the head is stored with its entry; one of another log is refused.
#[test]
fn a_checkpoint_is_stored_with_its_entry_and_checked_against_the_chain() {
    let Some((pg, schema)) = scratch() else {
        return;
    };
    let store = Store::from(pg);
    for i in 0..3 {
        AuditLog::append(&store, AuditEvent::new(i, "completion", "a", json!(i))).unwrap();
    }
    let operator = Keys::generate();
    let head = store.head().unwrap().unwrap();
    assert_eq!(head.seq, 3);
    let app = store.application_id().unwrap();
    assert_eq!(app, 0x414F_5331, "AOS1, as in a SQLite file");
    let signed =
        parse_checkpoint(&sign_checkpoint(&operator, &head, app, "test", NOW).unwrap()).unwrap();
    assert!(store.add_checkpoint(&signed).unwrap());
    assert!(!store.add_checkpoint(&signed).unwrap(), "stored once");
    let report = store.audit_report().unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    assert_eq!(report.checkpoints, std::slice::from_ref(&signed));
    assert_eq!(store.check_checkpoint(&signed).unwrap(), Ok(()));

    let mut ahead = head.clone();
    ahead.seq = 9;
    let ahead =
        parse_checkpoint(&sign_checkpoint(&operator, &ahead, app, "test", NOW).unwrap()).unwrap();
    assert!(matches!(
        store.add_checkpoint(&ahead),
        Err(StoreError::Checkpoint(_))
    ));

    // The chain rewritten from entry 2 on no longer matches the checkpoint.
    schema
        .execute("UPDATE audit_log SET detail = '\"x\"' WHERE seq = 2")
        .unwrap();
    assert!(!store.audit_report().unwrap().is_intact());
}
