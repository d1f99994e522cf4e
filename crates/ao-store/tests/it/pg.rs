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
fn postgres_payment_ledger_conforms() {
    let Some((fresh, _schemas)) = fresh_stores() else {
        return;
    };
    ao_dvm::conformance::run_all(fresh);
}

/// Two gateways on one database see the same invoice: exactly one of them is told to pay it.
#[test]
fn of_two_gateways_beginning_one_invoice_exactly_one_pays() {
    use ao_dvm::{Begun, PaymentLedger, PaymentRecord, PaymentState};
    let Some((first, schema)) = scratch() else {
        return;
    };
    let second = PgStore::connect(schema.url(), PgOptions::default()).unwrap();
    let payment = PaymentRecord {
        payment_hash: "9".repeat(64),
        job_id: "job".into(),
        amount_msats: 21_000,
        fee_msats: None,
        state: PaymentState::Paying,
    };
    let begun = std::thread::scope(|scope| {
        let a = scope.spawn(|| first.begin_payment(&payment).unwrap());
        let b = scope.spawn(|| second.begin_payment(&payment).unwrap());
        [a.join().unwrap(), b.join().unwrap()]
    });
    let go = begun.iter().filter(|b| **b == Begun::Go).count();
    assert_eq!(go, 1, "{begun:?}");
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

mod shared_budgets {
    use std::time::Duration;

    use ao_budget::{BudgetConfig, BudgetError, CostRecord, Ledger, Limits};
    use ao_store::pg::SharedBudgets;
    use ao_store::{PgOptions, PgStore};
    use ao_types::{BackendProvider, TokenUsage};

    use super::scratch;

    const NOW: u64 = 1_795_910_400 + 3_600;

    fn limits(daily: u64, session: u64) -> Limits {
        Limits {
            default_budget: BudgetConfig {
                daily_limit_sats: daily,
                session_limit_sats: session,
                warn_threshold_pct: 80,
            },
            ..Limits::default()
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Four gateways (four pools) on one database, 200 concurrent reservations of 10 sats
    /// against a 1,000-sat day: exactly 100 are admitted.
    #[test]
    fn concurrent_reservations_on_several_gateways_admit_exactly_the_limit() {
        let Some((first, schema)) = scratch() else {
            return;
        };
        let gateways: Vec<SharedBudgets> = (0..4)
            .map(|i| {
                let store = if i == 0 {
                    first.clone()
                } else {
                    PgStore::connect(schema.url(), PgOptions::default()).unwrap()
                };
                SharedBudgets::new(store, limits(1_000, u64::MAX), Duration::from_secs(600))
            })
            .collect();
        let admitted = runtime().block_on(async {
            let calls = (0..200).map(|i| {
                let budgets = gateways[i % 4].clone();
                tokio::spawn(async move {
                    budgets
                        .reserve(
                            "oracle",
                            NOW - 60,
                            10,
                            TokenUsage::new(5, 5),
                            BackendProvider::OpenAI,
                            NOW,
                        )
                        .await
                })
            });
            let results = futures_util::future::join_all(calls).await;
            let mut admitted = 0;
            for result in results {
                match result.unwrap() {
                    Ok(_) => admitted += 1,
                    Err(BudgetError::DailyExceeded {
                        limit_sats: 1_000, ..
                    }) => {}
                    Err(other) => panic!("{other}"),
                }
            }
            admitted
        });
        assert_eq!(admitted, 100);
    }

    #[test]
    fn settling_charges_once_and_releasing_frees_the_reservation() {
        let Some((store, _schema)) = scratch() else {
            return;
        };
        let budgets = SharedBudgets::new(store.clone(), limits(100, 100), Duration::from_secs(600));
        runtime().block_on(async {
            let usage = TokenUsage::new(10, 10);
            let a = budgets
                .reserve("oracle", NOW - 60, 60, usage, BackendProvider::OpenAI, NOW)
                .await
                .unwrap();
            let refused = budgets
                .reserve("oracle", NOW - 60, 60, usage, BackendProvider::OpenAI, NOW)
                .await;
            assert!(
                matches!(
                    refused,
                    Err(BudgetError::DailyExceeded { spent_sats: 60, .. })
                ),
                "{refused:?}"
            );
            let record = CostRecord {
                agent_name: "oracle".into(),
                backend: BackendProvider::OpenAI,
                input_tokens: 7,
                output_tokens: 3,
                cost_sats: 25,
                timestamp: NOW,
            };
            assert!(budgets.settle(&a, Some(&record)).await.unwrap());
            assert!(
                !budgets.settle(&a, Some(&record)).await.unwrap(),
                "charged once"
            );
            assert_eq!(budgets.spend("oracle", NOW).await.unwrap().sats, 25);
            let b = budgets
                .reserve("oracle", NOW - 60, 60, usage, BackendProvider::OpenAI, NOW)
                .await
                .unwrap();
            assert!(budgets.settle(&b, None).await.unwrap());
            assert_eq!(
                budgets.spend("oracle", NOW).await.unwrap().sats,
                25,
                "released"
            );
        });
        assert_eq!(
            store.load_range(0, u64::MAX).unwrap(),
            vec![CostRecord {
                agent_name: "oracle".into(),
                backend: BackendProvider::OpenAI,
                input_tokens: 7,
                output_tokens: 3,
                cost_sats: 25,
                timestamp: NOW,
            }]
        );
    }

    /// A gateway dies with a call in flight: once the hold's lease runs out, another gateway
    /// charges it at its estimate, once.
    #[test]
    fn a_dead_gateways_hold_is_charged_by_another_after_its_lease() {
        let Some((store, schema)) = scratch() else {
            return;
        };
        let dying = SharedBudgets::new(store, limits(1_000, 1_000), Duration::from_secs(1));
        let survivor = SharedBudgets::new(
            PgStore::connect(schema.url(), PgOptions::default()).unwrap(),
            limits(1_000, 1_000),
            Duration::from_secs(600),
        );
        runtime().block_on(async {
            dying
                .reserve(
                    "oracle",
                    NOW - 60,
                    40,
                    TokenUsage::new(3, 4),
                    BackendProvider::Codex,
                    NOW,
                )
                .await
                .unwrap();
            drop(dying);
            assert!(
                survivor.recover_expired().await.unwrap().is_empty(),
                "not before its lease"
            );
            tokio::time::sleep(Duration::from_millis(2_100)).await;
            let recovered = survivor.recover_expired().await.unwrap();
            assert_eq!(recovered.len(), 1);
            assert_eq!(recovered[0].cost_sats, 40);
            assert!(
                survivor.recover_expired().await.unwrap().is_empty(),
                "charged once"
            );
            let spend = survivor.spend("oracle", NOW).await.unwrap();
            assert_eq!((spend.sats, spend.outstanding), (40, 0));
        });
    }

    fn deadlocks(store: &PgStore) -> i64 {
        store
            .call(|client| async move {
                Ok(client
                    .query_one(
                        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
                        &[],
                    )
                    .await?
                    .get::<_, i64>(0))
            })
            .unwrap()
    }

    /// Reservations and settlements of two agents, batched on four gateways at once, never
    /// deadlock: every batch locks budget rows in one order (agent, then day before session).
    #[test]
    fn reservations_and_settlements_on_four_gateways_never_deadlock() {
        let Some((first, schema)) = scratch() else {
            return;
        };
        let before = deadlocks(&first);
        let gateways: Vec<SharedBudgets> = (0..4)
            .map(|_| {
                let store = PgStore::connect(schema.url(), PgOptions::default()).unwrap();
                SharedBudgets::new(store, limits(u64::MAX, u64::MAX), Duration::from_secs(600))
            })
            .collect();
        runtime().block_on(async {
            let calls = (0..800).map(|i| {
                let budgets = gateways[i % 4].clone();
                let agent = if i % 3 == 0 { "oracle" } else { "sisyphus" };
                tokio::spawn(async move {
                    let usage = TokenUsage::new(5, 5);
                    let hold = budgets
                        .reserve(agent, NOW - 3_600, 10, usage, BackendProvider::OpenAI, NOW)
                        .await
                        .unwrap();
                    let record = CostRecord {
                        agent_name: agent.into(),
                        backend: BackendProvider::OpenAI,
                        input_tokens: 5,
                        output_tokens: 5,
                        cost_sats: 3,
                        timestamp: NOW,
                    };
                    let charge = (i % 2 == 0).then_some(&record);
                    assert!(budgets.settle(&hold, charge).await.unwrap());
                })
            });
            for call in futures_util::future::join_all(calls).await {
                call.unwrap();
            }
        });
        // The server's statistics reach the view within a second.
        std::thread::sleep(Duration::from_millis(1_500));
        assert_eq!(deadlocks(&first), before, "no deadlock was detected");
        let spend = runtime()
            .block_on(gateways[0].spend("sisyphus", NOW))
            .unwrap();
        let charged = (0..800u64).filter(|i| i % 3 != 0 && i % 2 == 0).count() as u64 * 3;
        assert_eq!((spend.sats, spend.outstanding), (charged, 0));
    }

    /// A reservation lost with the server (committed asynchronously, never written) still gets
    /// its call charged when the call settles; a hold charged after its lease is not charged
    /// again by its call's settlement.
    #[test]
    fn a_charge_whose_hold_was_lost_is_made_and_none_is_made_twice() {
        let Some((store, schema)) = scratch() else {
            return;
        };
        let budgets =
            SharedBudgets::new(store.clone(), limits(1_000, 1_000), Duration::from_secs(1));
        let record = |cost_sats| CostRecord {
            agent_name: "oracle".into(),
            backend: BackendProvider::OpenAI,
            input_tokens: 7,
            output_tokens: 3,
            cost_sats,
            timestamp: NOW,
        };
        runtime().block_on(async {
            let usage = TokenUsage::new(10, 10);
            let lost = budgets
                .reserve("oracle", NOW - 60, 60, usage, BackendProvider::OpenAI, NOW)
                .await
                .unwrap();
            // The server lost the reservation: neither the hold nor the reserved sats remain.
            schema
                .execute("DELETE FROM holds; UPDATE budget_windows SET reserved_sats = 0")
                .unwrap();
            assert!(budgets.settle(&lost, Some(&record(25))).await.unwrap());
            assert_eq!(budgets.spend("oracle", NOW).await.unwrap().sats, 25);
            assert!(
                !budgets.settle(&lost, Some(&record(25))).await.unwrap(),
                "once"
            );

            // Charged by another gateway after its lease: the late settlement charges nothing.
            let late = budgets
                .reserve("oracle", NOW - 60, 40, usage, BackendProvider::OpenAI, NOW)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(2_100)).await;
            assert_eq!(budgets.recover_expired().await.unwrap().len(), 1);
            assert!(!budgets.settle(&late, Some(&record(30))).await.unwrap());
            assert_eq!(budgets.spend("oracle", NOW).await.unwrap().sats, 25 + 40);
        });
        assert!(store.audit_report().unwrap().is_intact());
    }
}
