use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ao_budget::{BudgetConfig, BudgetError, CostRecord, CostTracker, Ledger};
use ao_store::{SqliteStore, StoreOptions};
use ao_types::{BackendProvider, Report, TestClock};

use crate::TempStore;

/// 2026-11-29T00:00:00Z.
const MIDNIGHT: u64 = 1_795_910_400;

fn rec(agent: &str, cost: u64, timestamp: u64) -> CostRecord {
    CostRecord {
        agent_name: agent.into(),
        backend: BackendProvider::Codex,
        input_tokens: 10,
        output_tokens: 10,
        cost_sats: cost,
        timestamp,
    }
}

#[test]
fn eight_threads_admit_exactly_the_limit_with_sqlite() {
    let temp = TempStore::new();
    let clock = TestClock::new(MIDNIGHT + 60);
    let tracker = CostTracker::new()
        .with_clock(Arc::new(clock.clone()))
        .with_default_budget(BudgetConfig {
            daily_limit_sats: 1_000_000,
            session_limit_sats: 10_000,
            warn_threshold_pct: 80,
        })
        .with_ledger(temp.store.clone())
        .unwrap();
    let admitted: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let tracker = &tracker;
                scope.spawn(move || {
                    let mut admitted = 0;
                    for _ in 0..1_000 {
                        if let Ok(id) = tracker.reserve("hot", MIDNIGHT, 10) {
                            tracker.settle(id, rec("hot", 10, MIDNIGHT + 60)).unwrap();
                            admitted += 1;
                        }
                    }
                    admitted
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 1_000);
    assert_eq!(tracker.session_total("hot", MIDNIGHT), 10_000);
    let rows = temp.store.load_range(0, u64::MAX).unwrap();
    assert_eq!(rows.len(), 1_000);
    assert_eq!(rows.iter().map(|r| r.cost_sats).sum::<u64>(), 10_000);
}

#[test]
fn restart_keeps_todays_total() {
    let temp = TempStore::new();
    let clock = TestClock::new(MIDNIGHT + 3_600);
    let budget = BudgetConfig {
        daily_limit_sats: 100,
        session_limit_sats: 1_000,
        warn_threshold_pct: 80,
    };
    {
        let tracker = CostTracker::new()
            .with_clock(Arc::new(clock.clone()))
            .with_default_budget(budget)
            .with_ledger(SqliteStore::open(temp.db_path()).unwrap())
            .unwrap();
        let id = tracker.reserve("a", MIDNIGHT, 90).unwrap();
        tracker.settle(id, rec("a", 90, MIDNIGHT + 3_600)).unwrap();
    }
    let tracker = CostTracker::new()
        .with_clock(Arc::new(clock.clone()))
        .with_default_budget(budget)
        .with_ledger(SqliteStore::open(temp.db_path()).unwrap())
        .unwrap();
    assert_eq!(tracker.daily_total("a"), 90);
    assert_eq!(tracker.session_total("a", MIDNIGHT), 90);
    assert!(matches!(
        tracker.reserve("a", MIDNIGHT + 3_000, 20),
        Err(BudgetError::DailyExceeded { spent_sats: 90, .. })
    ));
    // The next UTC day starts afresh, even across the restart.
    clock.set(MIDNIGHT + 86_400);
    tracker.reserve("a", MIDNIGHT + 86_400, 20).unwrap();
}

#[test]
fn a_locked_database_makes_reserve_refuse_until_it_recovers() {
    let temp = TempStore::new();
    let store = SqliteStore::open_with(
        temp.db_path(),
        StoreOptions {
            busy_timeout: Duration::from_millis(50),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let clock = TestClock::new(MIDNIGHT);
    let tracker = CostTracker::new()
        .with_clock(Arc::new(clock))
        .with_ledger(store.clone())
        .unwrap();
    let id = tracker.reserve("a", MIDNIGHT, 10).unwrap();

    // Another process holds the write lock: writes fail with "database is locked".
    let other = rusqlite::Connection::open(temp.db_path()).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let err = tracker.settle(id, rec("a", 10, MIDNIGHT)).unwrap_err();
    assert!(matches!(err, BudgetError::NotDurable { .. }), "{err}");
    // The message states what failed; SQLite's "database is locked" is in the chain.
    let report = Report::new(&err).to_string();
    assert!(report.contains("locked"), "{report}");
    let err = tracker.reserve("a", MIDNIGHT, 1).unwrap_err();
    assert!(
        matches!(err, BudgetError::LedgerUnavailable { pending: 1, .. }),
        "{err}"
    );
    assert_eq!(tracker.session_total("a", MIDNIGHT), 10);

    other.execute_batch("COMMIT;").unwrap();
    tracker.reserve("a", MIDNIGHT, 1).unwrap();
    assert_eq!(tracker.pending_records().unwrap(), 0);
    assert_eq!(store.load_range(0, u64::MAX).unwrap().len(), 1);
}

const CHILD_DB: &str = "AO_STORE_KILL_TEST_DB";

/// Run only as the child of `an_acknowledged_record_survives_kill_9`: records costs and prints each
/// acknowledgement, until it is killed.
#[test]
#[ignore = "runs as a child process of an_acknowledged_record_survives_kill_9"]
fn kill_9_child() {
    let path = std::env::var(CHILD_DB).unwrap();
    let tracker = CostTracker::new()
        .with_ledger(SqliteStore::open(path).unwrap())
        .unwrap();
    for i in 0u64.. {
        tracker
            .record(rec("survivor", 1, 1_795_910_400 + i % 1_000))
            .unwrap();
        println!("acked {}", i + 1);
    }
}

#[test]
fn an_acknowledged_record_survives_kill_9() {
    let temp = TempStore::new();
    drop(temp.store);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tracker::kill_9_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, temp.dir.path().join("ao.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = 0u64;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("acked ") {
            acked = n.parse().unwrap();
            if acked >= 200 {
                break;
            }
        }
    }
    // SIGKILL: no destructor, no flush, no goodbye.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(acked >= 200, "the child acknowledged only {acked} records");
    let store = SqliteStore::open(temp.dir.path().join("ao.db")).unwrap();
    let rows = store.load_agent_range("survivor", 0, u64::MAX).unwrap();
    assert!(
        rows.len() as u64 >= acked,
        "{} records on disk, {acked} acknowledged",
        rows.len()
    );
}

const HOLD_CHILD_DB: &str = "AO_TEST_HOLD_CHILD_DB";

/// Reserves and holds calls of 3 sats, printing each hold once it is acknowledged (as a call is
/// dispatched), and never settles one, until it is killed.
#[test]
#[ignore = "runs as a child process of a_held_call_survives_kill_9_and_is_charged"]
fn hold_kill_9_child() {
    let path = std::env::var(HOLD_CHILD_DB).unwrap();
    let tracker = CostTracker::new()
        .with_default_budget(BudgetConfig {
            daily_limit_sats: u64::MAX,
            session_limit_sats: u64::MAX,
            warn_threshold_pct: 100,
        })
        .with_ledger(SqliteStore::open(path).unwrap())
        .unwrap();
    for i in 0u64.. {
        let id = tracker.reserve("dispatched", 0, 3).unwrap();
        tracker
            .hold(id, BackendProvider::OpenAI, ao_types::TokenUsage::new(7, 5))
            .unwrap();
        println!("held {}", i + 1);
    }
}

#[test]
fn a_held_call_survives_kill_9_and_is_charged() {
    let temp = TempStore::new();
    drop(temp.store);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tracker::hold_kill_9_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_CHILD_DB, temp.dir.path().join("ao.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut held = 0u64;
    for line in BufReader::new(stdout).lines() {
        if let Some(n) = line.unwrap().strip_prefix("held ") {
            held = n.parse().unwrap();
            if held >= 100 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(held >= 100, "the child held only {held} calls");
    let store = SqliteStore::open(temp.dir.path().join("ao.db")).unwrap();
    let tracker = CostTracker::new().with_ledger(store.clone()).unwrap();
    let recovered = tracker.take_recovered();
    assert!(
        recovered.len() as u64 >= held,
        "{} holds recovered, {held} acknowledged",
        recovered.len()
    );
    assert!(
        recovered
            .iter()
            .all(|h| h.cost_sats == 3 && h.input_tokens == 7)
    );
    assert_eq!(
        tracker.daily_total("dispatched"),
        3 * recovered.len() as u64,
        "every dispatched call is charged at its estimate"
    );
    assert!(store.holds().unwrap().is_empty());
    let rows = store.load_agent_range("dispatched", 0, u64::MAX).unwrap();
    assert_eq!(rows.len(), recovered.len());
}
