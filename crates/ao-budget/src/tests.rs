use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ao_types::{BackendProvider, TestClock, TokenUsage};
use proptest::prelude::*;

use super::*;

/// 2026-11-29T00:00:00Z.
const MIDNIGHT: u64 = 1_795_910_400;

fn budget(daily: u64, session: u64, warn: u8) -> BudgetConfig {
    BudgetConfig {
        daily_limit_sats: daily,
        session_limit_sats: session,
        warn_threshold_pct: warn,
    }
}

fn rec(agent: &str, cost: u64, timestamp: u64) -> CostRecord {
    CostRecord {
        agent_name: agent.into(),
        backend: BackendProvider::Codex,
        input_tokens: 100,
        output_tokens: 50,
        cost_sats: cost,
        timestamp,
    }
}

fn tracker_at(now: u64) -> (CostTracker, TestClock) {
    let clock = TestClock::new(now);
    let tracker = CostTracker::new().with_clock(Arc::new(clock.clone()));
    (tracker, clock)
}

/// A ledger whose writes can be switched off, standing in for a full or locked disk.
#[derive(Debug, Clone, Default)]
struct SwitchableLedger {
    inner: MemoryLedger,
    broken: Arc<AtomicBool>,
}

impl Ledger for SwitchableLedger {
    fn append(&self, records: &[CostRecord]) -> Result<(), LedgerError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(LedgerError::write("disk full"));
        }
        self.inner.append(records)
    }

    fn load_range(&self, from: u64, until: u64) -> Result<Vec<CostRecord>, LedgerError> {
        self.inner.load_range(from, until)
    }

    fn health_check(&self) -> Result<(), LedgerError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(LedgerError::write("disk full"));
        }
        Ok(())
    }

    fn hold(&self, hold: &Hold) -> Result<(), LedgerError> {
        self.health_check()?;
        self.inner.hold(hold)
    }

    fn settle_holds(&self, ids: &[String], records: &[CostRecord]) -> Result<(), LedgerError> {
        self.health_check()?;
        self.inner.settle_holds(ids, records)
    }

    fn holds(&self) -> Result<Vec<Hold>, LedgerError> {
        self.inner.holds()
    }
}

#[test]
fn default_budget_is_the_spec_one() {
    assert_eq!(BudgetConfig::default(), budget(100_000, 10_000, 80));
    let tracker = CostTracker::new();
    assert_eq!(tracker.budget_for("anyone"), budget(100_000, 10_000, 80));
}

#[test]
fn record_counts_in_session_and_day() {
    let (tracker, _) = tracker_at(MIDNIGHT + 3_600);
    let session = MIDNIGHT + 1_000;
    tracker
        .record(rec("sisyphus", 105, MIDNIGHT + 2_000))
        .unwrap();
    tracker.record(rec("sisyphus", 7, MIDNIGHT + 500)).unwrap();
    assert_eq!(tracker.session_total("sisyphus", session), 105);
    assert_eq!(tracker.daily_total("sisyphus"), 112);
    assert_eq!(tracker.daily_tokens("sisyphus").unwrap(), 300);
    assert_eq!(tracker.daily_total("other"), 0);
    // A record of yesterday counts in no total of today.
    tracker
        .record(rec("sisyphus", 1_000, MIDNIGHT - 1))
        .unwrap();
    assert_eq!(tracker.daily_total("sisyphus"), 112);
    assert_eq!(tracker.session_total("sisyphus", MIDNIGHT - 10), 1_112);
}

#[test]
fn status_precedence_and_percentages() {
    let (tracker, _) = tracker_at(MIDNIGHT + 10);
    let tracker = tracker.with_default_budget(budget(1_000, 100, 80));
    let s = MIDNIGHT;
    assert_eq!(tracker.check_budget("a", s), BudgetStatus::Ok);
    tracker.record(rec("a", 79, s + 1)).unwrap();
    assert_eq!(tracker.check_budget("a", s), BudgetStatus::Ok);
    tracker.record(rec("a", 1, s + 1)).unwrap();
    assert_eq!(
        tracker.check_budget("a", s),
        BudgetStatus::Warning {
            session_pct: 80,
            daily_pct: 8
        }
    );
    tracker.record(rec("a", 20, s + 1)).unwrap();
    // `>=` means exceeded.
    assert_eq!(tracker.check_budget("a", s), BudgetStatus::SessionExceeded);
    // A new session starts afresh, but the day keeps counting.
    assert_eq!(tracker.check_budget("a", s + 2), BudgetStatus::Ok);
    tracker.record(rec("a", 2_000, s + 3)).unwrap();
    // Daily wins over session; percentages cap at 100.
    assert_eq!(tracker.check_budget("a", s), BudgetStatus::DailyExceeded);
    assert_eq!(
        tracker.check_budget("a", s + 3),
        BudgetStatus::DailyExceeded
    );
    assert!(tracker.check_budget("a", s).is_exceeded());
}

#[test]
fn warning_percentages_are_capped_and_rounded_down() {
    assert_eq!(config::percent(999, 1_000), 99);
    assert_eq!(config::percent(5_000, 1_000), 100);
    assert_eq!(config::percent(0, 0), 100);
    assert_eq!(config::percent(u64::MAX, 1), 100);
    assert_eq!(
        config::status_of(budget(1_000, 1_000, 50), 999, 500),
        BudgetStatus::Warning {
            session_pct: 99,
            daily_pct: 50
        }
    );
}

#[test]
fn zero_limit_admits_nothing() {
    let (tracker, _) = tracker_at(MIDNIGHT);
    let tracker = tracker
        .with_budget("frozen", budget(0, 10, 80))
        .with_budget("no-session", budget(10, 0, 80));
    assert!(matches!(
        tracker.reserve("frozen", MIDNIGHT, 0),
        Err(BudgetError::DailyExceeded { .. })
    ));
    assert!(matches!(
        tracker.reserve("no-session", MIDNIGHT, 0),
        Err(BudgetError::SessionExceeded { .. })
    ));
    assert_eq!(
        tracker.check_budget("frozen", MIDNIGHT),
        BudgetStatus::DailyExceeded
    );
}

#[test]
fn reservations_count_and_refuse_atomically() {
    let (tracker, _) = tracker_at(MIDNIGHT + 10);
    let tracker = tracker.with_default_budget(budget(1_000, 100, 80));
    let s = MIDNIGHT;
    let a = tracker.reserve("a", s, 60).unwrap();
    assert_eq!(tracker.session_total("a", s), 60);
    assert_eq!(tracker.daily_total("a"), 60);
    let err = tracker.reserve("a", s, 41).unwrap_err();
    match err {
        BudgetError::SessionExceeded {
            ref agent,
            limit_sats,
            spent_sats,
            requested_sats,
        } => {
            assert_eq!(
                (agent.as_str(), limit_sats, spent_sats, requested_sats),
                ("a", 100, 60, 41)
            );
        }
        ref other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("60 of 100 sats spent or reserved, 41 requested")
    );
    // Exactly up to the limit is admitted; then the limit is reached and even 0 is refused.
    let b = tracker.reserve("a", s, 40).unwrap();
    assert!(tracker.reserve("a", s, 0).is_err());
    tracker.release(b).unwrap();
    assert_eq!(tracker.session_total("a", s), 60);
    // The real cost may be higher than the estimate: it is recorded.
    tracker.settle(a, rec("a", 90, s + 5)).unwrap();
    assert_eq!(tracker.session_total("a", s), 90);
    assert_eq!(tracker.outstanding_reservations("a").unwrap(), 0);
}

#[test]
fn daily_refusal_names_the_reset_and_wins() {
    let (tracker, _) = tracker_at(MIDNIGHT + 10);
    let tracker = tracker.with_default_budget(budget(50, 40, 80));
    let err = tracker.reserve("a", MIDNIGHT, 60).unwrap_err();
    match err {
        BudgetError::DailyExceeded {
            limit_sats,
            spent_sats,
            requested_sats,
            resets_at,
            ..
        } => {
            assert_eq!((limit_sats, spent_sats, requested_sats), (50, 0, 60));
            assert_eq!(resets_at, MIDNIGHT + 86_400);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn settle_and_release_exactly_once() {
    let (tracker, _) = tracker_at(MIDNIGHT);
    let id = tracker.reserve("a", MIDNIGHT, 10).unwrap();
    tracker.settle(id, rec("a", 10, MIDNIGHT)).unwrap();
    assert!(matches!(
        tracker.settle(id, rec("a", 10, MIDNIGHT)),
        Err(BudgetError::ReservationFinished { .. })
    ));
    assert!(matches!(
        tracker.release(id),
        Err(BudgetError::ReservationFinished { .. })
    ));
    assert_eq!(tracker.session_total("a", MIDNIGHT), 10);

    let id = tracker.reserve("a", MIDNIGHT, 10).unwrap();
    tracker.release(id).unwrap();
    assert!(matches!(
        tracker.release(id),
        Err(BudgetError::ReservationFinished { .. })
    ));
    assert!(matches!(
        tracker.settle(id, rec("a", 1, MIDNIGHT)),
        Err(BudgetError::ReservationFinished { .. })
    ));
    assert_eq!(tracker.session_total("a", MIDNIGHT), 10);

    // An id of another tracker is unknown here.
    let (other, _) = tracker_at(MIDNIGHT);
    let foreign = other.reserve("a", MIDNIGHT, 1).unwrap();
    assert!(matches!(
        tracker.release(foreign),
        Err(BudgetError::UnknownReservation { .. })
    ));
    assert!(matches!(
        tracker.settle(foreign, rec("a", 1, MIDNIGHT)),
        Err(BudgetError::UnknownReservation { .. })
    ));
    assert_eq!(tracker.session_total("a", MIDNIGHT), 10);
}

#[test]
fn settling_with_another_agents_record_changes_nothing() {
    let (tracker, _) = tracker_at(MIDNIGHT);
    let id = tracker.reserve("a", MIDNIGHT, 10).unwrap();
    let err = tracker.settle(id, rec("b", 10, MIDNIGHT)).unwrap_err();
    assert!(matches!(err, BudgetError::ReservationAgentMismatch { .. }));
    assert_eq!(tracker.session_total("a", MIDNIGHT), 10);
    assert_eq!(tracker.daily_total("b"), 0);
    tracker.settle(id, rec("a", 4, MIDNIGHT)).unwrap();
    assert_eq!(tracker.session_total("a", MIDNIGHT), 4);
}

#[test]
fn bad_input_is_a_clear_error() {
    let (tracker, _) = tracker_at(MIDNIGHT);
    let err = tracker.reserve("evil agent", MIDNIGHT, 1).unwrap_err();
    assert!(matches!(err, BudgetError::InvalidAgent(_)));
    let err = tracker.record(rec("", 1, MIDNIGHT)).unwrap_err();
    assert!(matches!(err, BudgetError::InvalidAgent(_)));
    let mut huge = rec("a", u64::MAX, MIDNIGHT);
    let err = tracker.record(huge.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cost record field `cost_sats` is {}, above the largest storable amount 2^63-1",
            u64::MAX
        )
    );
    huge.cost_sats = 1;
    huge.input_tokens = MAX_STORED_AMOUNT;
    assert!(tracker.record(huge).is_err());
    assert_eq!(tracker.daily_total("a"), 0);
}

#[test]
fn unsettled_reservations_expire_after_the_lease() {
    let (tracker, clock) = tracker_at(MIDNIGHT + 100);
    let tracker = tracker
        .with_default_budget(budget(1_000, 100, 80))
        .with_reservation_lease(std::time::Duration::from_secs(600));
    let s = MIDNIGHT;
    let stale = tracker.reserve("a", s, 100).unwrap();
    assert!(tracker.reserve("a", s, 1).is_err());
    clock.advance(599);
    assert!(tracker.reserve("a", s, 1).is_err());
    clock.advance(1);
    assert_eq!(tracker.session_total("a", s), 0);
    let fresh = tracker.reserve("a", s, 50).unwrap();
    // The stale caller's spend did happen: settling it late still records it.
    tracker.settle(stale, rec("a", 30, MIDNIGHT + 120)).unwrap();
    assert_eq!(tracker.session_total("a", s), 80);
    assert!(matches!(
        tracker.settle(stale, rec("a", 30, MIDNIGHT + 120)),
        Err(BudgetError::ReservationFinished { .. })
    ));
    tracker.release(fresh).unwrap();
    assert_eq!(tracker.session_total("a", s), 30);
}

#[test]
fn the_daily_budget_rolls_over_at_utc_midnight() {
    let (tracker, clock) = tracker_at(MIDNIGHT - 60);
    let tracker = tracker.with_default_budget(budget(100, 1_000, 80));
    let s = MIDNIGHT - 3_600;
    tracker.record(rec("a", 100, MIDNIGHT - 30)).unwrap();
    assert!(matches!(
        tracker.reserve("a", s, 1),
        Err(BudgetError::DailyExceeded { .. })
    ));
    clock.set(MIDNIGHT - 1);
    assert_eq!(tracker.check_budget("a", s), BudgetStatus::DailyExceeded);
    clock.set(MIDNIGHT);
    assert_eq!(tracker.daily_total("a"), 0);
    // The session spans midnight and keeps its spend.
    assert_eq!(tracker.session_total("a", s), 100);
    let id = tracker.reserve("a", s, 100).unwrap();
    tracker.settle(id, rec("a", 100, MIDNIGHT + 5)).unwrap();
    assert_eq!(tracker.daily_total("a"), 100);
    assert_eq!(tracker.session_total("a", s), 200);
}

#[test]
fn daily_token_cap_limits_free_backends() {
    let (tracker, clock) = tracker_at(MIDNIGHT + 10);
    let tracker = tracker
        .with_default_daily_token_cap(1_000)
        .with_daily_token_cap("big", 1_000_000);
    let free = |agent: &str, tokens: u64| CostRecord {
        agent_name: agent.into(),
        backend: BackendProvider::Local,
        input_tokens: tokens,
        output_tokens: 0,
        cost_sats: 0,
        timestamp: MIDNIGHT + 10,
    };
    let id = tracker.reserve_with_tokens("a", MIDNIGHT, 0, 600).unwrap();
    assert!(matches!(
        tracker.reserve_with_tokens("a", MIDNIGHT, 0, 401),
        Err(BudgetError::DailyTokensExceeded {
            limit_tokens: 1_000,
            used_tokens: 600,
            requested_tokens: 401,
            ..
        })
    ));
    tracker.settle(id, free("a", 1_000)).unwrap();
    assert_eq!(tracker.daily_tokens("a").unwrap(), 1_000);
    // Cap reached: even a call estimated at nothing is refused.
    assert!(matches!(
        tracker.reserve("a", MIDNIGHT, 0),
        Err(BudgetError::DailyTokensExceeded { .. })
    ));
    assert!(tracker.reserve("big", MIDNIGHT, 0).is_ok());
    clock.set(MIDNIGHT + 86_400);
    assert!(tracker.reserve("a", MIDNIGHT, 0).is_ok());
}

#[test]
fn restart_with_a_ledger_keeps_day_and_sessions() {
    let ledger = MemoryLedger::new();
    let clock = TestClock::new(MIDNIGHT + 7_200);
    let s1 = MIDNIGHT - 3_600;
    let s2 = MIDNIGHT + 3_600;
    {
        let tracker = CostTracker::new()
            .with_clock(Arc::new(clock.clone()))
            .with_ledger(ledger.clone())
            .unwrap();
        tracker.record(rec("a", 5, MIDNIGHT - 100)).unwrap();
        let id = tracker.reserve("a", s2, 20).unwrap();
        tracker.settle(id, rec("a", 20, MIDNIGHT + 4_000)).unwrap();
        tracker.record(rec("b", 7, MIDNIGHT + 10)).unwrap();
        // An outstanding reservation is not spend: it is not carried over.
        tracker.reserve("a", s2, 1_000).unwrap();
    }
    assert_eq!(ledger.len().unwrap(), 3);
    let tracker = CostTracker::new()
        .with_clock(Arc::new(clock.clone()))
        .with_ledger(ledger.clone())
        .unwrap();
    assert_eq!(tracker.daily_total("a"), 20);
    assert_eq!(tracker.daily_total("b"), 7);
    assert_eq!(tracker.session_total("a", s1), 25);
    assert_eq!(tracker.session_total("a", s2), 20);
}

#[test]
fn old_sessions_come_from_the_ledger_or_are_refused() {
    let horizon = std::time::Duration::from_secs(86_400);
    let ledger = MemoryLedger::new();
    ledger
        .append(&[rec("a", 11, MIDNIGHT - 5 * 86_400)])
        .unwrap();
    let (tracker, _) = tracker_at(MIDNIGHT + 100);
    let tracker = tracker
        .with_session_horizon(horizon)
        .with_ledger(ledger)
        .unwrap();
    tracker.record(rec("a", 2, MIDNIGHT + 50)).unwrap();
    assert_eq!(
        tracker
            .try_session_total("a", MIDNIGHT - 6 * 86_400)
            .unwrap(),
        13
    );

    // Without a ledger, nothing older than the tracker's own history can be answered: refuse.
    let (tracker, clock) = tracker_at(MIDNIGHT);
    let tracker = tracker.with_session_horizon(horizon);
    tracker.record(rec("a", 2, MIDNIGHT)).unwrap();
    clock.advance(3 * 86_400);
    tracker.record(rec("a", 3, MIDNIGHT + 3 * 86_400)).unwrap();
    let err = tracker.try_session_total("a", MIDNIGHT).unwrap_err();
    assert!(matches!(err, BudgetError::SessionBeforeHistory { .. }));
    assert_eq!(tracker.session_total("a", MIDNIGHT), u64::MAX);
    assert!(tracker.reserve("a", MIDNIGHT, 1).is_err());
    // A session the tracker already follows keeps being answered exactly.
    assert_eq!(tracker.session_total("a", MIDNIGHT + 2 * 86_400 + 10), 3);
}

#[test]
fn a_ledger_that_cannot_be_written_refuses_new_spend_and_loses_nothing() {
    let ledger = SwitchableLedger::default();
    let (tracker, _) = tracker_at(MIDNIGHT);
    let tracker = tracker.with_ledger(ledger.clone()).unwrap();
    let id = tracker.reserve("a", MIDNIGHT, 10).unwrap();
    ledger.broken.store(true, Ordering::SeqCst);
    let err = tracker.settle(id, rec("a", 10, MIDNIGHT)).unwrap_err();
    assert!(matches!(err, BudgetError::NotDurable { .. }), "{err}");
    // The message states what happened; the ledger's "disk full" is its cause, in the chain.
    assert!(!err.to_string().contains("disk full"), "{err}");
    let report = ao_types::Report::new(&err).to_string();
    assert!(report.contains("disk full"), "{report}");
    // Counted, though not yet durable.
    assert_eq!(tracker.session_total("a", MIDNIGHT), 10);
    assert_eq!(tracker.pending_records().unwrap(), 1);
    let err = tracker.reserve("a", MIDNIGHT, 1).unwrap_err();
    assert!(
        matches!(err, BudgetError::LedgerUnavailable { pending: 1, .. }),
        "{err}"
    );
    assert!(tracker.reserve("b", MIDNIGHT, 1).is_err());
    assert!(matches!(
        tracker.record(rec("a", 3, MIDNIGHT)),
        Err(BudgetError::NotDurable { .. })
    ));
    assert_eq!(ledger.inner.len().unwrap(), 0);

    ledger.broken.store(false, Ordering::SeqCst);
    tracker.reserve("a", MIDNIGHT, 1).unwrap();
    assert_eq!(tracker.pending_records().unwrap(), 0);
    assert_eq!(ledger.inner.len().unwrap(), 2);
}

#[test]
fn failing_health_check_refuses_even_with_nothing_pending() {
    let ledger = SwitchableLedger::default();
    let (tracker, _) = tracker_at(MIDNIGHT);
    let tracker = tracker.with_ledger(ledger.clone()).unwrap();
    ledger.broken.store(true, Ordering::SeqCst);
    assert!(tracker.record(rec("a", 1, MIDNIGHT)).is_err());
    ledger.broken.store(false, Ordering::SeqCst);
    tracker.flush().unwrap();
    assert!(tracker.reserve("a", MIDNIGHT, 1).is_ok());
}

#[test]
fn zero_estimates_are_still_bounded_by_the_budget() {
    let (tracker, _) = tracker_at(MIDNIGHT);
    let tracker = tracker.with_default_budget(budget(100, 100, 80));
    let admitted = (0..1_000)
        .filter(|_| tracker.reserve("a", MIDNIGHT, 0).is_ok())
        .count();
    assert_eq!(admitted, 100);
}

#[test]
fn a_clock_that_jumps_forward_and_back_forgets_no_spend() {
    let (tracker, clock) = tracker_at(MIDNIGHT + 3_600);
    let tracker = tracker.with_default_budget(budget(1_000, 100_000, 80));
    let running = tracker.reserve("a", MIDNIGHT, 50).unwrap();
    tracker.record(rec("a", 900, MIDNIGHT + 3_600)).unwrap();
    // A bad clock reads three days later for one call, then comes back.
    clock.set(MIDNIGHT + 3 * 86_400);
    let _ = tracker.check_budget("a", MIDNIGHT);
    clock.set(MIDNIGHT + 3_660);
    assert_eq!(tracker.daily_total("a"), 900);
    assert!(tracker.reserve("a", MIDNIGHT, 200).is_err());
    // The call that was running when the clock jumped still records what it spent.
    tracker
        .settle(running, rec("a", 40, MIDNIGHT + 3_660))
        .unwrap();
    assert_eq!(tracker.daily_total("a"), 940);
}

#[test]
fn a_renewed_lease_keeps_a_long_call_counted() {
    let (tracker, clock) = tracker_at(MIDNIGHT);
    let tracker = tracker
        .with_default_budget(budget(1_000, 100, 80))
        .with_reservation_lease(std::time::Duration::from_secs(600));
    let long = tracker.reserve("a", MIDNIGHT, 100).unwrap();
    clock.advance(500);
    tracker.renew(long).unwrap();
    clock.advance(500);
    assert!(
        tracker.reserve("a", MIDNIGHT, 1).is_err(),
        "the renewed reservation still counts"
    );
    clock.advance(200);
    assert!(tracker.reserve("a", MIDNIGHT, 1).is_ok());
    assert!(matches!(
        tracker.renew(long),
        Err(BudgetError::ReservationFinished { .. })
    ));
}

#[test]
fn eight_threads_admit_exactly_the_limit() {
    let (tracker, _) = tracker_at(MIDNIGHT);
    let tracker = Arc::new(tracker.with_default_budget(budget(1_000_000, 10_000, 80)));
    let admitted: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let tracker = &tracker;
                scope.spawn(move || {
                    (0..1_000)
                        .filter(|_| tracker.reserve("hot", MIDNIGHT, 10).is_ok())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 1_000);
    assert_eq!(tracker.session_total("hot", MIDNIGHT), 10_000);
}

#[test]
fn tracker_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<CostTracker>();
    check::<BudgetError>();
}

#[test]
fn memory_ledger_conforms() {
    crate::conformance::run_all(MemoryLedger::new);
}

#[derive(Debug, Clone)]
enum Op {
    Reserve {
        agent: usize,
        session: usize,
        sats: u64,
    },
    Settle {
        pick: usize,
        fraction: u8,
    },
    Release {
        pick: usize,
    },
    Record {
        agent: usize,
        sats: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..3, 0usize..2, 0u64..400).prop_map(|(agent, session, sats)| Op::Reserve { agent, session, sats }),
        3 => (any::<usize>(), 0u8..=100).prop_map(|(pick, fraction)| Op::Settle { pick, fraction }),
        2 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        1 => (0usize..3, 0u64..50).prop_map(|(agent, sats)| Op::Record { agent, sats }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// For any interleaving of reserve, settle (at most the estimate), release and record, admitted
    /// spend never passes a limit through reservations, and totals are the sum of settled records
    /// plus outstanding reservations.
    #[test]
    fn reservations_never_overspend(ops in proptest::collection::vec(op(), 1..120)) {
        let agents = ["a", "b", "c"];
        let now = MIDNIGHT + 1_000;
        let sessions = [MIDNIGHT, MIDNIGHT + 500];
        let (tracker, _) = tracker_at(now);
        let tracker = tracker
            .with_default_budget(budget(3_000, 1_000, 80))
            .with_budget("c", budget(500, 800, 50));
        let mut open: Vec<(ReservationId, usize, u64)> = Vec::new();
        let mut settled = [[0u64; 2]; 3];
        let mut reserved = [0u64; 3];
        let mut recorded_extra = [[0u64; 2]; 3];
        for op in ops {
            match op {
                Op::Reserve { agent, session, sats } => {
                    // Every reservation holds at least 1 sat.
                    let held = sats.max(1);
                    let limit = tracker.budget_for(agents[agent]);
                    let spent_session = settled[agent][session] + recorded_extra[agent][session] + reserved[agent];
                    let spent_day = settled[agent][0] + recorded_extra[agent][0] + reserved[agent];
                    let result = tracker.reserve(agents[agent], sessions[session], sats);
                    let admissible = config::admits(spent_day, held, limit.daily_limit_sats)
                        && config::admits(spent_session, held, limit.session_limit_sats);
                    prop_assert_eq!(result.is_ok(), admissible);
                    if let Ok(id) = result {
                        open.push((id, agent, held));
                        reserved[agent] += held;
                    }
                }
                Op::Settle { pick, fraction } if !open.is_empty() => {
                    let (id, agent, sats) = open.swap_remove(pick % open.len());
                    let cost = sats * u64::from(fraction) / 100;
                    tracker.settle(id, rec(agents[agent], cost, now)).unwrap();
                    reserved[agent] -= sats;
                    settled[agent][0] += cost;
                    settled[agent][1] += cost;
                }
                Op::Release { pick } if !open.is_empty() => {
                    let (id, agent, sats) = open.swap_remove(pick % open.len());
                    tracker.release(id).unwrap();
                    reserved[agent] -= sats;
                }
                Op::Record { agent, sats } => {
                    // Spend recorded without a reservation lands before the second session.
                    tracker.record(rec(agents[agent], sats, MIDNIGHT + 100)).unwrap();
                    recorded_extra[agent][0] += sats;
                }
                _ => {}
            }
            for (i, agent) in agents.iter().enumerate() {
                let limit = tracker.budget_for(agent);
                let day = tracker.daily_total(agent);
                prop_assert_eq!(day, settled[i][0] + recorded_extra[i][0] + reserved[i]);
                prop_assert_eq!(tracker.session_total(agent, sessions[1]), settled[i][1] + reserved[i]);
                // Spend admitted through reservations alone never passes a limit.
                let through_reservations = settled[i][1] + reserved[i];
                prop_assert!(through_reservations <= limit.session_limit_sats || recorded_extra[i][0] > 0);
                prop_assert!(day <= limit.daily_limit_sats.max(recorded_extra[i][0] + through_reservations));
            }
        }
    }
}

#[test]
fn a_held_reservation_left_by_a_crash_is_charged_at_its_estimate_on_restart() {
    let ledger = MemoryLedger::new();
    let clock = TestClock::new(MIDNIGHT + 100);
    let tracker = CostTracker::new()
        .with_clock(Arc::new(clock.clone()))
        .with_ledger(ledger.clone())
        .unwrap();
    let settled = tracker.reserve("oracle", MIDNIGHT, 40).unwrap();
    tracker
        .hold(settled, BackendProvider::OpenAI, TokenUsage::new(300, 200))
        .unwrap();
    let in_flight = tracker.reserve("oracle", MIDNIGHT, 30).unwrap();
    tracker
        .hold(
            in_flight,
            BackendProvider::OpenAI,
            TokenUsage::new(100, 100),
        )
        .unwrap();
    let never_sent = tracker.reserve("oracle", MIDNIGHT, 20).unwrap();
    tracker
        .settle(settled, rec("oracle", 12, MIDNIGHT + 101))
        .unwrap();
    assert_eq!(ledger.holds().unwrap().len(), 1, "the settled hold is gone");
    // The process dies: `in_flight` was dispatched and never settled, `never_sent` never left.
    let _ = never_sent;
    drop(tracker);
    let restarted = CostTracker::new()
        .with_clock(Arc::new(clock.clone()))
        .with_ledger(ledger.clone())
        .unwrap();
    assert_eq!(restarted.daily_total("oracle"), 12 + 30);
    let recovered = restarted.take_recovered();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].cost_sats, 30);
    assert_eq!(
        (recovered[0].input_tokens, recovered[0].output_tokens),
        (100, 100)
    );
    assert!(restarted.take_recovered().is_empty(), "taken once");
    assert!(ledger.holds().unwrap().is_empty());
    // A second restart charges nothing twice.
    let again = CostTracker::new()
        .with_clock(Arc::new(clock))
        .with_ledger(ledger)
        .unwrap();
    assert_eq!(again.daily_total("oracle"), 42);
}

#[test]
fn releasing_a_held_reservation_removes_its_hold() {
    let ledger = MemoryLedger::new();
    let (tracker, _) = tracker_at(MIDNIGHT + 100);
    let tracker = tracker.with_ledger(ledger.clone()).unwrap();
    let id = tracker.reserve("oracle", MIDNIGHT, 40).unwrap();
    tracker
        .hold(id, BackendProvider::Codex, TokenUsage::new(1, 1))
        .unwrap();
    assert_eq!(ledger.holds().unwrap().len(), 1);
    tracker.release(id).unwrap();
    assert!(ledger.holds().unwrap().is_empty());
    assert!(ledger.is_empty().unwrap(), "a release charges nothing");
}

#[test]
fn a_hold_that_cannot_be_written_is_an_error_and_the_reservation_still_counts() {
    let ledger = SwitchableLedger::default();
    let (tracker, _) = tracker_at(MIDNIGHT + 100);
    let tracker = tracker.with_ledger(ledger.clone()).unwrap();
    let id = tracker.reserve("oracle", MIDNIGHT, 40).unwrap();
    ledger.broken.store(true, Ordering::SeqCst);
    let error = tracker
        .hold(id, BackendProvider::Codex, TokenUsage::new(1, 1))
        .unwrap_err();
    assert!(matches!(error, BudgetError::NotDurable { .. }), "{error}");
    assert_eq!(tracker.daily_total("oracle"), 40);
}

fn limiter(limits: RateLimits) -> RateLimiter {
    RateLimiter::new().with_default(limits)
}

#[test]
fn requests_per_minute_admit_exactly_the_limit_under_concurrency() {
    let limiter = Arc::new(limiter(RateLimits {
        requests_per_minute: Some(50),
        ..RateLimits::default()
    }));
    let admitted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                s.spawn(move || {
                    (0..100)
                        .filter(|_| limiter.admit("oracle", 1, MIDNIGHT).is_ok())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 50);
    let refused = limiter.admit("oracle", 1, MIDNIGHT + 59).unwrap_err();
    assert!(
        matches!(refused, RateError::RequestsPerMinute { .. }),
        "{refused}"
    );
    assert_eq!(refused.retry_after_secs(), 1);
    assert!(
        limiter.admit("oracle", 1, MIDNIGHT + 60).is_ok(),
        "the window moved on"
    );
    assert!(
        limiter.admit("another", 1, MIDNIGHT).is_ok(),
        "agents are apart"
    );
}

#[test]
fn tokens_per_minute_count_reserved_tokens_and_cannot_be_raced() {
    let limiter = Arc::new(limiter(RateLimits {
        tokens_per_minute: Some(1_000),
        ..RateLimits::default()
    }));
    let admitted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                s.spawn(move || {
                    (0..20)
                        .filter(|_| limiter.admit("oracle", 30, MIDNIGHT + 5).is_ok())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(
        admitted, 33,
        "33 x 30 = 990 tokens fit in 1,000; a 34th does not"
    );
    let refused = limiter.admit("oracle", 30, MIDNIGHT + 10).unwrap_err();
    assert!(
        matches!(
            refused,
            RateError::TokensPerMinute {
                used: 990,
                requested: 30,
                ..
            }
        ),
        "{refused}"
    );
    assert_eq!(refused.retry_after_secs(), 55);
}

#[test]
fn concurrent_calls_are_capped_until_one_ends() {
    let limiter = limiter(RateLimits {
        concurrent: Some(3),
        ..RateLimits::default()
    });
    let permits: Vec<RatePermit> = (0..3)
        .map(|_| limiter.admit("oracle", 1, MIDNIGHT).unwrap())
        .collect();
    assert!(matches!(
        limiter.admit("oracle", 1, MIDNIGHT),
        Err(RateError::Concurrent { limit: 3, .. })
    ));
    drop(permits);
    assert!(limiter.admit("oracle", 1, MIDNIGHT).is_ok());
}
