//! Settled records per second on the SQLite ledger with durability on (`synchronous = FULL`, an
//! `fsync` per commit), one writer and eight concurrent writers (group commit), against the same
//! tracker with no ledger in the same run.
//!
//! Run with `cargo bench -p ao-store --bench ledger`.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    missing_docs,
    reason = "benchmark code"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ao_budget::{BudgetConfig, CostRecord, CostTracker};
use ao_store::{Durability, SqliteStore, StoreOptions};
use ao_types::{BackendProvider, TestClock};
use criterion::{BenchmarkId, Criterion, Throughput};

const NOW: u64 = 1_795_953_600;

fn tracker(store: Option<SqliteStore>) -> CostTracker {
    let tracker = CostTracker::new()
        .with_clock(Arc::new(TestClock::new(NOW)))
        .with_default_budget(BudgetConfig {
            daily_limit_sats: u64::MAX,
            session_limit_sats: u64::MAX,
            warn_threshold_pct: 100,
        });
    match store {
        Some(store) => tracker.with_ledger(store).unwrap(),
        None => tracker,
    }
}

fn settle_one(tracker: &CostTracker, agent: &str) {
    let id = tracker.reserve(agent, NOW - 60, 6).unwrap();
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

/// Runs `per_thread` settles on each of `threads` threads (one agent each); returns the time.
fn run(tracker: &CostTracker, threads: usize, per_thread: u64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            scope.spawn(move || {
                let agent = format!("agent-{t}");
                for _ in 0..per_thread {
                    settle_one(tracker, &agent);
                }
            });
        }
    });
    start.elapsed()
}

fn open(dir: &tempfile::TempDir, durability: Durability) -> SqliteStore {
    SqliteStore::open_with(
        dir.path().join(format!("{durability:?}.db")),
        StoreOptions {
            durability,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("sqlite_settle");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    for durability in [Durability::Full, Durability::Normal] {
        let tracker = tracker(Some(open(&dir, durability)));
        for threads in [1usize, 8] {
            group.throughput(Throughput::Elements(threads as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{durability:?}"), format!("{threads}_threads")),
                &threads,
                |b, &threads| b.iter_custom(|iters| run(&tracker, threads, iters)),
            );
        }
    }
    group.finish();
}

fn summary() {
    println!("\n== summary (records settled per second, measured in this run) ==");
    let dir = tempfile::tempdir().unwrap();
    let memory = tracker(None);
    let mem_rate = 100_000.0 / run(&memory, 1, 100_000).as_secs_f64();
    println!("no ledger (memory only), 1 thread: {mem_rate:>10.0} records/s");
    for durability in [Durability::Full, Durability::Normal] {
        let tracker = tracker(Some(open(&dir, durability)));
        for (threads, per_thread) in [(1usize, 2_000u64), (8, 1_000)] {
            let elapsed = run(&tracker, threads, per_thread);
            let rate = (threads as u64 * per_thread) as f64 / elapsed.as_secs_f64();
            println!(
                "SQLite {durability:?}, {threads} thread(s): {rate:>10.0} records/s ({:.1}x slower than memory)",
                mem_rate / rate
            );
        }
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    summary();
}
