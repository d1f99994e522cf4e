//! 2-of-3 signing over a loopback relay (a coordinator holding no share, three signer nodes, a
//! relay, all in this process and speaking real websockets), beside 2-of-3 signing with both
//! shares in one process, in the same run: the cost of the relays, NIP-44 and the two round
//! trips. Prints p50 and p99 of each, then criterion's own figures.
//!
//! Run with `cargo xtask bench signing-remote` (or `cargo bench -p ao-signer --bench
//! signing_remote`). The goal: remote p50 under 25 ms.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    missing_docs,
    reason = "benchmark code"
)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ao_signer::{
    ContributionLog, Coordinator, CoordinatorConfig, NodeConfig, NodePolicy, Relay, Relays,
    SignerNode,
};
use ao_threshold::{GroupPublic, KeygenConfig, KeygenSession, SignerShare, sign_message};
use criterion::Criterion;
use nostr::Keys;
use tokio::runtime::Runtime;

const MESSAGE: [u8; 32] = [7; 32];

struct Setup {
    group: GroupPublic,
    /// Copies of shares 1 and 2, for local signing.
    local: Vec<SignerShare>,
    coordinator: Coordinator,
    _relay: Relay,
    _logs: tempfile::TempDir,
}

async fn setup() -> Setup {
    let out = KeygenSession::new(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .complete()
    .unwrap();
    let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], 0)), u32::MAX)
        .await
        .unwrap();
    let urls = vec![relay.url().to_owned()];
    let transport: Vec<Keys> = (0..3).map(|_| Keys::generate()).collect();
    let keys: Vec<_> = transport.iter().map(Keys::public_key).collect();
    let boss = Keys::generate();
    let logs = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        policy: NodePolicy {
            raw_messages: true,
            per_minute: u32::MAX,
            ..NodePolicy::default()
        },
        coordinators: vec![boss.public_key()],
        ..NodeConfig::default()
    };
    let fast = ao_threshold::KdfParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
    let mut local = Vec::new();
    for (share, key) in out.shares.into_iter().zip(&transport) {
        if share.index() <= 2 {
            let copy = ao_threshold::ShareFile::seal(&share, "p", fast).unwrap();
            local.push(copy.open("p").unwrap());
        }
        let log =
            ContributionLog::open(&logs.path().join(format!("{}.log", share.index()))).unwrap();
        let node =
            SignerNode::new(out.group.clone(), share, &keys, config.clone(), Some(log)).unwrap();
        let relays = Relays::connect(key.clone(), &urls, Duration::from_secs(5))
            .await
            .unwrap();
        tokio::spawn(async move { node.run(relays).await });
    }
    let relays = Relays::connect(boss, &urls, Duration::from_secs(5))
        .await
        .unwrap();
    let coordinator = Coordinator::start(
        out.group.clone(),
        keys,
        relays,
        CoordinatorConfig::default(),
        None,
    )
    .await
    .unwrap();
    // Let the nodes' subscriptions reach the relay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Setup {
        group: out.group,
        local,
        coordinator,
        _relay: relay,
        _logs: logs,
    }
}

fn remote(runtime: &Runtime, setup: &Setup) -> [u8; 64] {
    runtime
        .block_on(setup.coordinator.sign_message(black_box(MESSAGE)))
        .unwrap()
}

fn local(setup: &Setup) -> [u8; 64] {
    let shares: Vec<&SignerShare> = setup.local.iter().collect();
    sign_message(&setup.group, &shares, black_box(&MESSAGE)).unwrap()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// p50 and p99 of `rounds` signings each way, interleaved so that both see the same machine.
fn summary(runtime: &Runtime, setup: &Setup, rounds: usize) {
    let mut remote_times = Vec::with_capacity(rounds);
    let mut local_times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let signature = remote(runtime, setup);
        remote_times.push(start.elapsed());
        assert!(setup.group.verify(&MESSAGE, &signature));
        let start = Instant::now();
        black_box(local(setup));
        local_times.push(start.elapsed());
    }
    remote_times.sort();
    local_times.sort();
    let (r50, r99) = (percentile(&remote_times, 50), percentile(&remote_times, 99));
    let (l50, l99) = (percentile(&local_times, 50), percentile(&local_times, 99));
    println!("\n== 2-of-3 signing, {rounds} signings each, in this run ==");
    println!("remote (coordinator + 3 nodes over a loopback relay): p50 {r50:.2?}, p99 {r99:.2?}");
    println!("local (both shares in this process):                  p50 {l50:.2?}, p99 {l99:.2?}");
    println!(
        "remote / local at p50: {:.1}x; goal p50 < 25 ms: {}",
        r50.as_secs_f64() / l50.as_secs_f64(),
        if r50 < Duration::from_millis(25) {
            "met"
        } else {
            "NOT met"
        }
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let setup = runtime.block_on(setup());
    // Warm up connections and caches.
    for _ in 0..20 {
        remote(&runtime, &setup);
    }
    summary(&runtime, &setup, 500);
    let mut criterion = Criterion::default().configure_from_args();
    let mut g = criterion.benchmark_group("sign_2_of_3");
    g.sample_size(50).measurement_time(Duration::from_secs(5));
    g.bench_function("remote_over_loopback_relay", |b| {
        b.iter(|| remote(&runtime, &setup))
    });
    g.bench_function("local_shares", |b| b.iter(|| local(&setup)));
    g.finish();
    criterion.final_summary();
}
