//! The hook manager and the built-in hooks, at the boundary a runtime uses them.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]
#![allow(missing_docs, reason = "test code")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ao_approvals::SolverAgentCoordinator;
use ao_audit::{AuditLog, MemoryAuditLog};
use ao_budget::{BudgetConfig, CostTracker};
use ao_hooks::{
    ApprovalHook, AuditHook, CostTrackingHook, Hook, HookError, HookManager, HookResult, ToolCall,
    ToolOutput,
};
use ao_identity::{AgentIdentity, AutonomyLevel};
use ao_routing::{BackendConfig, BackendProvider, MultiBackendRouter};
use ao_types::{AgentName, TestClock, TokenUsage};
use async_trait::async_trait;
use serde_json::json;

/// 2026-11-29T12:00:00Z.
const NOW: u64 = 1_795_953_600;
const SESSION: u64 = NOW - 600;

fn router() -> Arc<MultiBackendRouter> {
    Arc::new(
        MultiBackendRouter::new(BackendProvider::Codex)
            .add_backend(BackendConfig::codex("sonnet-4"))
            .add_backend(BackendConfig::openai("gpt-4"))
            .route_agent("oracle", BackendProvider::OpenAI),
    )
}

fn tracker(session_limit: u64) -> Arc<CostTracker> {
    Arc::new(
        CostTracker::new()
            .with_clock(Arc::new(TestClock::new(NOW)))
            .with_default_budget(BudgetConfig {
                daily_limit_sats: 1_000_000,
                session_limit_sats: session_limit,
                warn_threshold_pct: 80,
            }),
    )
}

/// The cost hook; it dates records with the tracker's (test) clock.
fn cost_hook(tracker: &Arc<CostTracker>) -> CostTrackingHook {
    CostTrackingHook::new(tracker.clone(), router())
}

fn call(agent: &str, tool: &str) -> ToolCall {
    ToolCall::new(AgentName::new(agent).unwrap(), tool, json!({"q": "rust"}))
        .with_session_start(SESSION)
}

/// Runs a call through the hooks the way a runtime does; counts tool runs.
async fn run(
    hooks: &HookManager,
    mut call: ToolCall,
    usage: Option<TokenUsage>,
    runs: &AtomicUsize,
) -> (HookResult, Option<ToolOutput>) {
    let before = hooks.dispatch_before_tool(&mut call).await;
    if before.is_blocked() {
        return (before, None);
    }
    runs.fetch_add(1, Ordering::SeqCst);
    let mut output = ToolOutput::new("result");
    output.usage = usage;
    let after = hooks.dispatch_after_tool(&call, &mut output).await;
    (after, Some(output))
}

struct Blocker;

#[async_trait]
impl Hook for Blocker {
    fn name(&self) -> &str {
        "blocker"
    }
    fn priority(&self) -> i32 {
        10
    }
    async fn before_tool(&self, _call: &mut ToolCall) -> Result<HookResult, HookError> {
        Ok(HookResult::block("blocked by policy"))
    }
}

struct Panicker {
    calls: AtomicUsize,
}

#[async_trait]
impl Hook for Panicker {
    fn name(&self) -> &str {
        "panicker"
    }
    async fn before_tool(&self, _call: &mut ToolCall) -> Result<HookResult, HookError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("boom");
        }
        Ok(HookResult::Continue)
    }
}

struct Failing;

#[async_trait]
impl Hook for Failing {
    fn name(&self) -> &str {
        "failing"
    }
    async fn before_tool(&self, _call: &mut ToolCall) -> Result<HookResult, HookError> {
        // An error with a cause: the block reason must carry the whole chain.
        Err(HookError::new(ao_audit::AuditError::read(
            "policy store unreachable",
        )))
    }
}

#[tokio::test]
async fn over_budget_blocks_before_the_tool_runs() {
    let tracker = tracker(100);
    let mut hooks = HookManager::new();
    hooks.register(cost_hook(&tracker));
    let runs = AtomicUsize::new(0);
    let (result, _) = run(
        &hooks,
        call("sisyphus", "search").with_cost_estimate(101),
        None,
        &runs,
    )
    .await;
    match result {
        HookResult::Block { reason } => {
            assert!(
                reason.contains("would exceed its session budget"),
                "{reason}"
            );
            assert!(reason.contains("101 requested"), "{reason}");
        }
        other => panic!("expected a block, got {other:?}"),
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(tracker.session_total("sisyphus", SESSION), 0);
}

#[tokio::test]
async fn the_recorded_cost_is_the_backends_prices_times_reported_usage() {
    let tracker = tracker(10_000);
    let mut hooks = HookManager::new();
    hooks.register(cost_hook(&tracker));
    let runs = AtomicUsize::new(0);
    let usage = TokenUsage::new(10_000, 5_000);
    let (result, output) = run(
        &hooks,
        call("sisyphus", "complete").with_max_tokens(5_000),
        Some(usage),
        &runs,
    )
    .await;
    assert_eq!(result, HookResult::Continue);
    // Codex: 3 and 15 sats per 1,000.
    assert_eq!(output.unwrap().cost_sats, Some(105));
    assert_eq!(tracker.session_total("sisyphus", SESSION), 105);
    // `oracle` is routed to OpenAI: 5 and 15 sats per 1,000.
    run(&hooks, call("oracle", "complete"), Some(usage), &runs).await;
    assert_eq!(tracker.session_total("oracle", SESSION), 125);
    // After a fallback, the answering backend's prices apply.
    let mut c = call("oracle", "complete");
    assert_eq!(
        hooks.dispatch_before_tool(&mut c).await,
        HookResult::Continue
    );
    let mut out = ToolOutput::new("x")
        .with_usage(usage)
        .with_backend(BackendProvider::Codex);
    hooks.dispatch_after_tool(&c, &mut out).await;
    assert_eq!(out.cost_sats, Some(105));
    assert_eq!(tracker.session_total("oracle", SESSION), 230);
    assert_eq!(tracker.outstanding_reservations("oracle").unwrap(), 0);
}

#[tokio::test]
async fn nothing_spent_releases_the_reservation() {
    let tracker = tracker(10_000);
    let mut hooks = HookManager::new();
    hooks.register(cost_hook(&tracker));
    let runs = AtomicUsize::new(0);
    let (_, output) = run(
        &hooks,
        call("sisyphus", "read_file").with_cost_estimate(50),
        None,
        &runs,
    )
    .await;
    assert_eq!(output.unwrap().cost_sats, Some(0));
    assert_eq!(tracker.session_total("sisyphus", SESSION), 0);
    assert_eq!(tracker.outstanding_reservations("sisyphus").unwrap(), 0);
}

#[tokio::test]
async fn naming_another_agent_in_parameters_still_charges_the_runtime_agent() {
    let tracker = tracker(10_000);
    let mut hooks = HookManager::new();
    hooks.register(cost_hook(&tracker));
    let runs = AtomicUsize::new(0);
    let sneaky = ToolCall::new(
        AgentName::new("sisyphus").unwrap(),
        "complete",
        json!({"agent": "victim", "agent_name": "victim", "input_tokens": 0, "output_tokens": 0}),
    )
    .with_session_start(SESSION);
    run(&hooks, sneaky, Some(TokenUsage::new(1_000, 1_000)), &runs).await;
    assert_eq!(tracker.session_total("sisyphus", SESSION), 18);
    assert_eq!(tracker.session_total("victim", SESSION), 0);
}

#[tokio::test]
async fn a_blocking_hook_after_cost_tracking_releases_its_reservation() {
    let tracker = tracker(10_000);
    let mut hooks = HookManager::new();
    hooks.register(cost_hook(&tracker));
    hooks.register(Blocker);
    let runs = AtomicUsize::new(0);
    let (result, _) = run(
        &hooks,
        call("sisyphus", "search").with_cost_estimate(500),
        None,
        &runs,
    )
    .await;
    assert_eq!(result, HookResult::block("blocked by policy"));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(tracker.outstanding_reservations("sisyphus").unwrap(), 0);
    assert_eq!(tracker.session_total("sisyphus", SESSION), 0);
}

#[tokio::test]
async fn a_panicking_or_failing_hook_blocks_and_the_manager_keeps_working() {
    let tracker = tracker(10_000);
    let mut hooks = HookManager::new();
    hooks.register(cost_hook(&tracker));
    hooks.register(Panicker {
        calls: AtomicUsize::new(0),
    });
    let runs = AtomicUsize::new(0);
    let (result, _) = run(
        &hooks,
        call("sisyphus", "search").with_cost_estimate(5),
        None,
        &runs,
    )
    .await;
    assert_eq!(result, HookResult::block("hook `panicker` panicked: boom"));
    assert_eq!(tracker.outstanding_reservations("sisyphus").unwrap(), 0);
    let (result, _) = run(
        &hooks,
        call("sisyphus", "search").with_cost_estimate(5),
        None,
        &runs,
    )
    .await;
    assert_eq!(result, HookResult::Continue);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    hooks.register(Failing);
    let (result, _) = run(
        &hooks,
        call("sisyphus", "search").with_cost_estimate(5),
        None,
        &runs,
    )
    .await;
    assert_eq!(
        result,
        HookResult::block(
            "hook `failing` failed: the audit log cannot be read: policy store unreachable"
        )
    );
    assert_eq!(tracker.outstanding_reservations("sisyphus").unwrap(), 0);
}

#[tokio::test]
async fn a_hook_disabled_mid_call_still_settles_what_it_reserved() {
    let tracker = tracker(10_000);
    let mut hooks = HookManager::new();
    hooks.register(cost_hook(&tracker));
    let mut c = call("sisyphus", "complete").with_cost_estimate(200);
    assert_eq!(
        hooks.dispatch_before_tool(&mut c).await,
        HookResult::Continue
    );
    assert!(hooks.disable("cost-tracking"));
    let mut out = ToolOutput::new("x").with_usage(TokenUsage::new(10_000, 5_000));
    hooks.dispatch_after_tool(&c, &mut out).await;
    assert_eq!(tracker.session_total("sisyphus", SESSION), 105);
    assert_eq!(tracker.outstanding_reservations("sisyphus").unwrap(), 0);
    // Disabled, it does not run on new calls.
    let mut c = call("sisyphus", "complete").with_cost_estimate(1_000_000);
    assert_eq!(
        hooks.dispatch_before_tool(&mut c).await,
        HookResult::Continue
    );
    assert!(hooks.enable("cost-tracking"));
    assert!(!hooks.enable("nope"));
    let names: Vec<_> = hooks
        .list()
        .into_iter()
        .map(|h| (h.name, h.enabled))
        .collect();
    assert_eq!(names, [("cost-tracking".to_string(), true)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_never_overspend() {
    let tracker = tracker(5_000);
    let mut hooks = HookManager::new();
    hooks.register(cost_hook(&tracker));
    let hooks = Arc::new(hooks);
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1_000)
        .map(|i| {
            let hooks = Arc::clone(&hooks);
            let runs = Arc::clone(&runs);
            tokio::spawn(async move {
                // Estimate 10 sats; the real cost is 10 sats for even calls and 4 for odd ones.
                let usage = if i % 2 == 0 {
                    TokenUsage::new(1_000, 467)
                } else {
                    TokenUsage::new(1_000, 67)
                };
                run(
                    &hooks,
                    call("swarm", "complete").with_cost_estimate(10),
                    Some(usage),
                    &runs,
                )
                .await
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        if task.await.unwrap().0 == HookResult::Continue {
            admitted += 1;
        }
    }
    let spent = tracker.session_total("swarm", SESSION);
    assert!(spent <= 5_000, "spent {spent}");
    assert!(admitted >= 500, "only {admitted} admitted");
    assert_eq!(runs.load(Ordering::SeqCst), admitted);
    assert_eq!(tracker.outstanding_reservations("swarm").unwrap(), 0);
}

fn coordinator(level: AutonomyLevel) -> Arc<SolverAgentCoordinator> {
    Arc::new(SolverAgentCoordinator::new(
        AgentIdentity::new("pk", "sisyphus", "sonnet-4").with_autonomy(level),
    ))
}

/// A semi-autonomous `sisyphus` behind the cost, approval and audit hooks.
struct ApprovalFlow {
    tracker: Arc<CostTracker>,
    coordinator: Arc<SolverAgentCoordinator>,
    audit: Arc<MemoryAuditLog>,
    hooks: HookManager,
    runs: AtomicUsize,
}

impl ApprovalFlow {
    fn new() -> Self {
        let tracker = tracker(100_000);
        let coordinator = coordinator(AutonomyLevel::SemiAutonomous);
        let audit = Arc::new(MemoryAuditLog::new());
        let mut hooks = HookManager::new();
        hooks.register(cost_hook(&tracker));
        hooks.register(ApprovalHook::new(coordinator.clone()));
        hooks.register(AuditHook::new(audit.clone()));
        ApprovalFlow {
            tracker,
            coordinator,
            audit,
            hooks,
            runs: AtomicUsize::new(0),
        }
    }

    async fn run(
        &self,
        call: ToolCall,
        usage: Option<TokenUsage>,
    ) -> (HookResult, Option<ToolOutput>) {
        run(&self.hooks, call, usage, &self.runs).await
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    /// A 500-sat search: under the approval threshold.
    async fn cheap_search(&self) -> HookResult {
        self.run(call("sisyphus", "search").with_cost_estimate(500), None)
            .await
            .0
    }

    /// A 5,000-sat purchase, which needs approval; returns the request it filed.
    async fn purchase_needing_approval(&self) -> String {
        let (result, _) = self
            .run(
                call("sisyphus", "purchase_skill").with_cost_estimate(5_000),
                None,
            )
            .await;
        let HookResult::NeedsApproval { request_id } = result else {
            panic!("expected NeedsApproval, got {result:?}")
        };
        request_id
    }

    /// The purchase again, carrying the approval `request_id`.
    async fn retry(
        &self,
        request_id: &str,
        usage: Option<TokenUsage>,
    ) -> (HookResult, Option<ToolOutput>) {
        let retry = call("sisyphus", "purchase_skill")
            .with_cost_estimate(5_000)
            .with_approval(request_id.to_owned());
        self.run(retry, usage).await
    }

    /// Another tool, carrying the purchase's approval `request_id`.
    async fn other_tool(&self, request_id: &str) -> HookResult {
        let other = call("sisyphus", "delete_everything")
            .with_cost_estimate(5_000)
            .with_approval(request_id.to_owned());
        self.run(other, None).await.0
    }
}

#[tokio::test]
async fn a_call_within_the_approval_amount_goes_ahead() {
    let flow = ApprovalFlow::new();
    assert_eq!(flow.cheap_search().await, HookResult::Continue);
    assert_eq!(flow.runs(), 1);
}

#[tokio::test]
async fn a_costly_call_files_a_request_and_neither_runs_nor_reserves() {
    let flow = ApprovalFlow::new();
    let request_id = flow.purchase_needing_approval().await;
    assert_eq!(flow.runs(), 0);
    assert_eq!(
        flow.tracker.outstanding_reservations("sisyphus").unwrap(),
        0
    );
    let pending = flow.coordinator.list_pending();
    assert_eq!(pending[0].request_id, request_id);
    assert_eq!(pending[0].cost_estimate_sats, 5_000);
}

#[tokio::test]
async fn retrying_before_the_decision_is_blocked() {
    let flow = ApprovalFlow::new();
    let request_id = flow.purchase_needing_approval().await;
    assert!(flow.retry(&request_id, None).await.0.is_blocked());
    assert_eq!(flow.runs(), 0);
}

#[tokio::test]
async fn an_approval_does_not_cover_another_tool() {
    let flow = ApprovalFlow::new();
    let request_id = flow.purchase_needing_approval().await;
    flow.coordinator.approve(&request_id).unwrap();
    assert!(flow.other_tool(&request_id).await.is_blocked());
    assert_eq!(flow.runs(), 0);
}

#[tokio::test]
async fn once_approved_the_retry_goes_ahead_and_is_charged() {
    let flow = ApprovalFlow::new();
    let request_id = flow.purchase_needing_approval().await;
    flow.coordinator.approve(&request_id).unwrap();
    let (result, output) = flow
        .retry(&request_id, Some(TokenUsage::new(100_000, 100_000)))
        .await;
    assert_eq!(result, HookResult::Continue);
    assert_eq!(output.unwrap().cost_sats, Some(1_800));
}

#[tokio::test]
async fn an_approval_allows_one_call() {
    let flow = ApprovalFlow::new();
    let request_id = flow.purchase_needing_approval().await;
    flow.coordinator.approve(&request_id).unwrap();
    assert_eq!(flow.retry(&request_id, None).await.0, HookResult::Continue);
    assert!(flow.retry(&request_id, None).await.0.is_blocked());
}

#[tokio::test]
async fn the_audit_log_records_every_step_of_an_approval() {
    let flow = ApprovalFlow::new();
    assert_eq!(flow.cheap_search().await, HookResult::Continue);
    let request_id = flow.purchase_needing_approval().await;
    // Refused attempts before and after the decision do not use the approval up.
    assert!(flow.retry(&request_id, None).await.0.is_blocked());
    flow.coordinator.approve(&request_id).unwrap();
    assert!(flow.other_tool(&request_id).await.is_blocked());
    let usage = Some(TokenUsage::new(100_000, 100_000));
    assert_eq!(flow.retry(&request_id, usage).await.0, HookResult::Continue);
    assert!(flow.retry(&request_id, None).await.0.is_blocked());

    let entries = flow.audit.entries(1, usize::MAX).unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "tool.completed",
            "tool.needs_approval",
            "tool.blocked",
            "tool.blocked",
            "tool.completed",
            "tool.blocked"
        ]
    );
    let completed = entries[4].detail_json().unwrap();
    assert_eq!(completed["cost_sats"], 1_800);
    assert_eq!(completed["tool"], "purchase_skill");
    assert_eq!(entries[4].agent, "sisyphus");
    assert_eq!(flow.audit.verify().unwrap(), Ok(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_approval_hook_continues_or_blocks_on_the_decision() {
    let coordinator = coordinator(AutonomyLevel::Supervised);
    let mut hooks = HookManager::new();
    hooks.register(ApprovalHook::new(coordinator.clone()).waiting(Duration::from_secs(10)));
    let hooks = Arc::new(hooks);
    let runs = Arc::new(AtomicUsize::new(0));
    for approve in [true, false] {
        let task = {
            let hooks = Arc::clone(&hooks);
            let runs = Arc::clone(&runs);
            tokio::spawn(async move {
                run(
                    &hooks,
                    call("sisyphus", "deploy").with_cost_estimate(1),
                    None,
                    &runs,
                )
                .await
                .0
            })
        };
        let id = loop {
            if let Some(p) = coordinator.list_pending().first() {
                break p.request_id.clone();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if approve {
            coordinator.approve(&id).unwrap()
        } else {
            coordinator.reject(&id).unwrap()
        }
        let result = task.await.unwrap();
        assert_eq!(result.is_blocked(), !approve, "{result:?}");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_agent_without_an_approval_policy_is_blocked() {
    let mut hooks = HookManager::new();
    hooks.register(ApprovalHook::new(coordinator(
        AutonomyLevel::FullyAutonomous,
    )));
    let runs = AtomicUsize::new(0);
    let (result, _) = run(&hooks, call("stranger", "search"), None, &runs).await;
    assert!(
        matches!(result, HookResult::Block { ref reason } if reason.contains("no approval policy"))
    );
    let (result, _) = run(&hooks, call("sisyphus", "search"), None, &runs).await;
    assert_eq!(result, HookResult::Continue);
}

#[tokio::test]
async fn hooks_run_in_priority_order() {
    let mut hooks = HookManager::new();
    hooks.register(Blocker);
    hooks.register(AuditHook::new(Arc::new(MemoryAuditLog::new())));
    hooks.register(CostTrackingHook::new(tracker(1), router()));
    let order: Vec<_> = hooks.list().into_iter().map(|h| h.name).collect();
    assert_eq!(order, ["audit", "cost-tracking", "blocker"]);
}
