//! The cost of the hooks: `dispatch_before_tool` + `dispatch_after_tool` with the three built-in
//! hooks (cost tracking on an in-memory ledger, approvals, audit in memory) against calling the
//! same tool with no hooks, in the same run.
//!
//! Run with `cargo bench -p ao-hooks --bench dispatch`. Besides criterion's report it prints the
//! added time per call at the median and the 99th percentile.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    missing_docs,
    reason = "benchmark code"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ao_approvals::SolverAgentCoordinator;
use ao_audit::MemoryAuditLog;
use ao_budget::{BudgetConfig, CostTracker, MemoryLedger};
use ao_hooks::{ApprovalHook, AuditHook, CostTrackingHook, HookManager, ToolCall, ToolOutput};
use ao_identity::{AgentIdentity, AutonomyLevel};
use ao_routing::{BackendConfig, BackendProvider, MultiBackendRouter};
use ao_types::{AgentName, TokenUsage};
use criterion::Criterion;

fn hooks() -> HookManager {
    let tracker = Arc::new(
        CostTracker::new()
            .with_default_budget(BudgetConfig {
                daily_limit_sats: u64::MAX,
                session_limit_sats: u64::MAX,
                warn_threshold_pct: 100,
            })
            .with_ledger(MemoryLedger::new())
            .unwrap(),
    );
    let router = Arc::new(
        MultiBackendRouter::new(BackendProvider::Codex)
            .add_backend(BackendConfig::codex("sonnet-4")),
    );
    // Semi-autonomous: the approval hook checks every call; these cost less than the threshold.
    let coordinator = Arc::new(SolverAgentCoordinator::new(
        AgentIdentity::new("pk", "agent", "sonnet-4").with_autonomy(AutonomyLevel::SemiAutonomous),
    ));
    let mut hooks = HookManager::new();
    hooks.register(CostTrackingHook::new(tracker, router));
    hooks.register(ApprovalHook::new(coordinator));
    hooks.register(AuditHook::new(Arc::new(MemoryAuditLog::new())));
    hooks
}

/// The tool: returns a small output with usage.
async fn tool(call: &ToolCall) -> ToolOutput {
    black_box(&call.parameters);
    ToolOutput::new("ok").with_usage(TokenUsage::new(1_000, 200))
}

fn new_call(agent: &AgentName) -> ToolCall {
    ToolCall::new(agent.clone(), "search", serde_json::Value::Null).with_cost_estimate(10)
}

async fn with_hooks(hooks: &HookManager, agent: &AgentName) {
    let mut call = new_call(agent);
    assert!(!hooks.dispatch_before_tool(&mut call).await.is_blocked());
    let mut output = tool(&call).await;
    hooks.dispatch_after_tool(&call, &mut output).await;
    black_box(output);
}

async fn without_hooks(agent: &AgentName) {
    let call = new_call(agent);
    black_box(tool(&call).await);
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let hooks = hooks();
    let agent = AgentName::new("agent").unwrap();
    let mut group = c.benchmark_group("tool_call");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("no_hooks", |b| {
        b.to_async(&rt).iter(|| without_hooks(&agent))
    });
    group.bench_function("three_builtin_hooks", |b| {
        b.to_async(&rt).iter(|| with_hooks(&hooks, &agent))
    });
    group.finish();
}

/// The `per_mille`-th thousandth of `sorted`.
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[(sorted.len() - 1) * per_mille / 1_000]
}

/// Times calls one by one and prints the added time at p50 and p99.
fn summary() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let hooks = hooks();
    let agent = AgentName::new("agent").unwrap();
    let n = 200_000;
    let (mut plain, mut hooked) = rt.block_on(async {
        // Warm up both paths.
        for _ in 0..20_000 {
            without_hooks(&agent).await;
            with_hooks(&hooks, &agent).await;
        }
        let mut plain = Vec::with_capacity(n);
        let mut hooked = Vec::with_capacity(n);
        for _ in 0..n {
            let start = Instant::now();
            without_hooks(&agent).await;
            plain.push(start.elapsed());
            let start = Instant::now();
            with_hooks(&hooks, &agent).await;
            hooked.push(start.elapsed());
        }
        (plain, hooked)
    });
    plain.sort();
    hooked.sort();
    println!("\n== summary ({n} calls each, interleaved, timed one by one) ==");
    for (name, p) in [("p50", 500), ("p90", 900), ("p99", 990)] {
        let a = percentile(&plain, p);
        let b = percentile(&hooked, p);
        println!(
            "{name}: no hooks {a:>9.2?}, three built-in hooks {b:>9.2?}, added {:>9.2?}",
            b.saturating_sub(a)
        );
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    summary();
}
