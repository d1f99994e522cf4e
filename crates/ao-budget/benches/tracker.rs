//! `reserve` + `settle` against history size, compared in the same run with the spec's original
//! design (`RwLock<Vec<CostRecord>>` scanned on every check), and throughput on two threads.
//!
//! Run with `cargo bench -p ao-budget --bench tracker`. Besides criterion's own report, the bench
//! prints a summary of ratios measured in this run.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    missing_docs,
    reason = "benchmark code"
)]

use std::hint::black_box;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ao_budget::{BudgetConfig, CostRecord, CostTracker};
use ao_types::{BackendProvider, TestClock, utc_day_start};
use criterion::{BenchmarkId, Criterion};

/// 2026-11-29T12:00:00Z.
const NOW: u64 = 1_795_953_600;
const SESSION: u64 = NOW - 3_600;
const UNLIMITED: BudgetConfig = BudgetConfig {
    daily_limit_sats: u64::MAX,
    session_limit_sats: u64::MAX,
    warn_threshold_pct: 100,
};
const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];

fn rec(agent: &str, i: usize) -> CostRecord {
    CostRecord {
        agent_name: agent.to_owned(),
        backend: BackendProvider::Codex,
        input_tokens: 1_000,
        output_tokens: 200,
        cost_sats: 6,
        // Spread over the last six days, so the history is in the tracker's index.
        timestamp: NOW - (i as u64 * 7) % (6 * 86_400),
    }
}

fn tracker_with_history(n: usize) -> CostTracker {
    let tracker = CostTracker::new()
        .with_clock(Arc::new(TestClock::new(NOW)))
        .with_default_budget(UNLIMITED)
        // A day-long lease: the bench's reservations never expire mid-run.
        .with_reservation_lease(Duration::from_secs(86_400));
    for i in 0..n {
        tracker.record(rec("agent", i)).unwrap();
    }
    tracker
}

fn ours(tracker: &CostTracker, agent: &str) {
    let id = tracker.reserve(agent, SESSION, 6).unwrap();
    tracker
        .settle(
            id,
            CostRecord {
                agent_name: agent.to_owned(),
                backend: BackendProvider::Codex,
                input_tokens: 1_000,
                output_tokens: 200,
                cost_sats: 6,
                timestamp: NOW,
            },
        )
        .unwrap();
}

/// The spec's original design: one list of every record, scanned by every check.
struct Baseline {
    records: RwLock<Vec<CostRecord>>,
    budget: BudgetConfig,
}

impl Baseline {
    fn with_history(n: usize) -> Self {
        Self {
            records: RwLock::new((0..n).map(|i| rec("agent", i)).collect()),
            budget: UNLIMITED,
        }
    }

    fn check_then_record(&self, agent: &str) {
        let day = utc_day_start(NOW);
        let (session, daily) = {
            let records = self.records.read().unwrap();
            let session: u64 = records
                .iter()
                .filter(|r| r.agent_name == agent && r.timestamp >= SESSION)
                .map(|r| r.cost_sats)
                .sum();
            let daily: u64 = records
                .iter()
                .filter(|r| r.agent_name == agent && utc_day_start(r.timestamp) == day)
                .map(|r| r.cost_sats)
                .sum();
            (session, daily)
        };
        assert!(session < self.budget.session_limit_sats && daily < self.budget.daily_limit_sats);
        self.records.write().unwrap().push(rec(agent, 0));
    }
}

fn time_per_op(ops: usize, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..ops {
        f();
    }
    start.elapsed() / u32::try_from(ops).unwrap()
}

fn bench_history(c: &mut Criterion) {
    let mut group = c.benchmark_group("reserve_settle");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let tracker = tracker_with_history(n);
        group.bench_with_input(BenchmarkId::new("tracker", n), &n, |b, _| {
            b.iter(|| ours(black_box(&tracker), "agent"));
        });
    }
    for n in SIZES {
        let baseline = Baseline::with_history(n);
        group.sample_size(10);
        group.bench_with_input(BenchmarkId::new("baseline_rwlock_vec", n), &n, |b, _| {
            b.iter(|| baseline.check_then_record(black_box("agent")));
        });
    }
    group.finish();
}

fn bench_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("reserve_settle_threads");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    let tracker = tracker_with_history(1_000);
    for threads in [1usize, 2] {
        group.bench_with_input(
            BenchmarkId::new("agents_per_thread", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|scope| {
                        for t in 0..threads {
                            let tracker = &tracker;
                            scope.spawn(move || {
                                let agent = format!("agent-{t}");
                                for _ in 0..iters {
                                    ours(tracker, &agent);
                                }
                            });
                        }
                    });
                    // Time per operation, all threads together.
                    start.elapsed() / u32::try_from(threads).unwrap()
                });
            },
        );
    }
    group.finish();
}

/// Ratios measured in this run with plain timing loops, printed for the record.
fn summary() {
    println!("\n== summary (ratios measured in this run) ==");
    let mut ours_at = Vec::new();
    for n in SIZES {
        let tracker = tracker_with_history(n);
        let baseline = Baseline::with_history(n);
        let ours_t = time_per_op(20_000, || ours(&tracker, "agent"));
        let base_ops = (20_000_000 / n).clamp(20, 20_000);
        let base_t = time_per_op(base_ops, || baseline.check_then_record("agent"));
        ours_at.push(ours_t);
        println!(
            "history {n:>9}: tracker {:>9.2?}/op, baseline {:>10.2?}/op, tracker is {:.0}x faster",
            ours_t,
            base_t,
            base_t.as_secs_f64() / ours_t.as_secs_f64()
        );
    }
    println!(
        "flatness: 1M history costs {:.2}x the 1k history per op (goal: within 2x)",
        ours_at[2].as_secs_f64() / ours_at[0].as_secs_f64()
    );
    let tracker = tracker_with_history(1_000);
    let ops = 200_000;
    let one = {
        let start = Instant::now();
        for _ in 0..ops {
            ours(&tracker, "solo");
        }
        start.elapsed()
    };
    let two = {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..2 {
                let tracker = &tracker;
                scope.spawn(move || {
                    let agent = format!("pair-{t}");
                    for _ in 0..ops {
                        ours(tracker, &agent);
                    }
                });
            }
        });
        start.elapsed()
    };
    let one_rate = ops as f64 / one.as_secs_f64();
    let two_rate = 2.0 * ops as f64 / two.as_secs_f64();
    println!(
        "throughput: 1 thread {one_rate:.0} ops/s, 2 threads (different agents) {two_rate:.0} ops/s: {:.2}x (goal: at least 1.5x)",
        two_rate / one_rate
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_history(&mut criterion);
    bench_threads(&mut criterion);
    criterion.final_summary();
    summary();
}
