//! "CostTrackingHook".

use agent_orchestrator::types::{AgentName, TokenUsage};
use agent_orchestrator::{
    BackendConfig, BackendProvider, BudgetConfig, CostTracker, HookManager, HookResult,
    MultiBackendRouter, ToolCall, ToolOutput,
};

#[tokio::test]
async fn cost_tracking_hook_usage() {
    let tracker = CostTracker::new().with_default_budget(BudgetConfig {
        daily_limit_sats: 100_000,
        session_limit_sats: 200,
        warn_threshold_pct: 80,
    });
    let router = MultiBackendRouter::new(BackendProvider::Codex)
        .add_backend(BackendConfig::codex("sonnet-4"));
    let mut hooks = HookManager::new();

    // --- spec: CostTrackingHook
    use agent_orchestrator::CostTrackingHook;
    use std::sync::Arc;

    let hook = CostTrackingHook::new(
        Arc::new(tracker),
        Arc::new(router),
    );

    hooks.register(hook);
    // --- end spec

    assert_eq!(hooks.list()[0].name, "cost-tracking");
    let agent = AgentName::new("sisyphus").unwrap();
    let session = 0;

    // 2. after_tool: calculate cost, record to tracker.
    let mut call = ToolCall::new(agent.clone(), "complete", serde_json::json!({}))
        .with_session_start(session)
        .with_cost_estimate(150);
    assert_eq!(hooks.dispatch_before_tool(&mut call).await, HookResult::Continue);
    let mut output = ToolOutput::new("done").with_usage(TokenUsage::new(10_000, 5_000));
    assert_eq!(hooks.dispatch_after_tool(&call, &mut output).await, HookResult::Continue);
    assert_eq!(output.cost_sats, Some(105));

    // 1. before_tool: check budget, block if exceeded (105 + 100 > 200).
    let mut call = ToolCall::new(agent, "complete", serde_json::json!({}))
        .with_session_start(session)
        .with_cost_estimate(100);
    let blocked = hooks.dispatch_before_tool(&mut call).await;
    assert!(blocked.is_blocked(), "{blocked:?}");
}
