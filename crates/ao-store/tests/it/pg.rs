//! The PostgreSQL store against a real server (`AO_TEST_DATABASE_URL`, default the local one),
//! each check in a schema of its own: the ledger, approval-store and audit conformance suites,
//! and what several processes on one database need (one chain, compare-and-swap).
//!
//! Under CI (`CI` set) a server that cannot be reached is a failure; elsewhere the tests say
//! loudly that they were skipped.

use std::sync::Arc;

use ao_audit::{AuditEvent, AuditLog};
use ao_budget::{CostRecord, Ledger};
use ao_store::pg::{ScratchSchema, test_server_url};
use ao_store::{PgOptions, PgStore};
use ao_types::BackendProvider;

/// A store in a fresh schema, or `None` (with a loud note) when no server is there outside CI.
pub(crate) fn scratch() -> Option<(PgStore, ScratchSchema)> {
    let schema = match ScratchSchema::create(&test_server_url()) {
        Ok(schema) => schema,
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "SKIPPED: no PostgreSQL at {} ({}); set AO_TEST_DATABASE_URL to run these tests",
                test_server_url(),
                ao_types::Report::new(&error)
            );
            return None;
        }
        Err(error) => panic!(
            "PostgreSQL is required under CI and cannot be reached at {}: {}",
            test_server_url(),
            ao_types::Report::new(&error)
        ),
    };
    let store = PgStore::connect(schema.url(), PgOptions::default()).unwrap();
    Some((store, schema))
}

/// Schemas made for one test, dropped when it ends.
type Kept = Arc<std::sync::Mutex<Vec<ScratchSchema>>>;

/// Fresh stores for a conformance suite; their schemas are dropped at the end of the test.
fn fresh_stores() -> Option<(impl Fn() -> PgStore, Kept)> {
    scratch()?;
    let schemas: Kept = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = Arc::clone(&schemas);
    Some((
        move || {
            let (store, schema) = scratch().unwrap();
            kept.lock().unwrap().push(schema);
            store
        },
        schemas,
    ))
}

#[test]
fn postgres_ledger_conforms() {
    let Some((fresh, _schemas)) = fresh_stores() else {
        return;
    };
    ao_budget::conformance::run_all(fresh);
}

#[test]
fn postgres_approval_store_conforms() {
    let Some((fresh, _schemas)) = fresh_stores() else {
        return;
    };
    ao_approvals::conformance::run_all(fresh);
}

#[test]
fn postgres_audit_log_conforms() {
    let Some((fresh, _schemas)) = fresh_stores() else {
        return;
    };
    ao_audit::conformance::run_all(fresh);
}

#[test]
fn a_second_store_on_the_same_database_sees_every_write() {
    let Some((first, schema)) = scratch() else {
        return;
    };
    // Another gateway, another pool, the same database: migrations are not applied twice.
    let second = PgStore::connect(schema.url(), PgOptions::default()).unwrap();
    Ledger::append(
        &first,
        &[CostRecord {
            agent_name: "oracle".into(),
            backend: BackendProvider::OpenAI,
            input_tokens: 1,
            output_tokens: 2,
            cost_sats: 3,
            timestamp: 4,
        }],
    )
    .unwrap();
    assert_eq!(second.load_range(0, u64::MAX).unwrap().len(), 1);
}

#[test]
fn concurrent_appends_from_several_stores_keep_one_chain() {
    let Some((first, schema)) = scratch() else {
        return;
    };
    let stores: Vec<PgStore> = (0..4)
        .map(|_| PgStore::connect(schema.url(), PgOptions::default()).unwrap())
        .chain(std::iter::once(first.clone()))
        .collect();
    std::thread::scope(|s| {
        for (i, store) in stores.iter().enumerate() {
            s.spawn(move || {
                for n in 0..25 {
                    let event = AuditEvent::new(
                        n,
                        "test",
                        format!("gateway-{i}"),
                        serde_json::json!({"n": n}),
                    );
                    AuditLog::append(store, event).unwrap();
                }
            });
        }
    });
    assert_eq!(
        first.verify().unwrap(),
        Ok(125),
        "one sound chain of every append"
    );
}
