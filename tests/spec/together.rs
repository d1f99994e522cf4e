//! "Putting It All Together".

use agent_orchestrator::types::{AgentName, TokenUsage};
use agent_orchestrator::{HookResult, ToolCall, ToolOutput};
use nostr::Keys;

#[tokio::test]
async fn putting_it_all_together() {
    let hex = |k: &Keys| k.public_key().to_hex();
    let (s1, s2, s3, group, operator) = (Keys::generate(), Keys::generate(), Keys::generate(), Keys::generate(), Keys::generate());
    let (pk1, pk2, pk3, group_pk) = (hex(&s1), hex(&s2), hex(&s3), hex(&group));
    let agent_pk = group_pk.clone();
    let operator_pk = hex(&operator);

    // --- spec: Putting It All Together
    use agent_orchestrator::{
        AgentIdentity, AutonomyLevel, ThresholdConfig,
        MultiBackendRouter, BackendProvider, BackendConfig,
        CostTracker, BudgetConfig, CostTrackingHook,
        SolverAgentCoordinator, HookManager,
    };
    use std::sync::Arc;

    // 1. Create threshold-protected identity
    let threshold = ThresholdConfig::new(2, 3)
        .with_signers(vec![pk1, pk2, pk3])
        .with_group_pubkey(group_pk);

    let identity = AgentIdentity::new(&agent_pk, "ProductionAgent", "codex-sonnet-4")
        .with_threshold(threshold)
        .with_autonomy(AutonomyLevel::SemiAutonomous)
        .with_operator(&operator_pk);

    // 2. Configure multi-backend routing
    let router = Arc::new(
        MultiBackendRouter::new(BackendProvider::Codex)
            .add_backend(BackendConfig::codex("sonnet-4"))
            .add_backend(BackendConfig::openai("gpt-4"))
            .add_backend(BackendConfig::local("llama3", "http://localhost:11434"))
            .route_agent("oracle", BackendProvider::OpenAI)
    );

    // 3. Configure cost tracking
    let tracker = Arc::new(
        CostTracker::new()
            .with_default_budget(BudgetConfig {
                daily_limit_sats: 100_000,
                session_limit_sats: 10_000,
                warn_threshold_pct: 80,
            })
    );

    // 4. Create approval coordinator
    let coordinator = SolverAgentCoordinator::new(identity);

    // 5. Wire up hooks
    let mut hooks = HookManager::new();
    hooks.register(CostTrackingHook::new(tracker.clone(), router.clone()));

    // 6. Run agent with full infrastructure
    // - Identity is threshold-protected
    // - Requests route to appropriate backends
    // - Costs are tracked and budgets enforced
    // - High-cost actions require approval
    // --- end spec

    // - Identity is threshold-protected (real keys; the agent's key is the group key).
    assert!(coordinator.identity().is_threshold_protected());
    // - Requests route to appropriate backends.
    assert_eq!(router.get_backend("oracle").unwrap().provider, BackendProvider::OpenAI);
    assert_eq!(router.get_backend("ProductionAgent").unwrap().provider, BackendProvider::Codex);
    // - Costs are tracked and budgets enforced.
    let agent = AgentName::new("ProductionAgent").unwrap();
    let mut call = ToolCall::new(agent.clone(), "complete", serde_json::json!({"prompt": "hi"})).with_max_tokens(5_000);
    assert_eq!(hooks.dispatch_before_tool(&mut call).await, HookResult::Continue);
    let mut output = ToolOutput::new("hello").with_usage(TokenUsage::new(10_000, 5_000));
    hooks.dispatch_after_tool(&call, &mut output).await;
    assert_eq!(output.cost_sats, Some(105));
    assert_eq!(tracker.session_total("ProductionAgent", 0), 105);
    let mut huge = ToolCall::new(agent, "complete", serde_json::json!({})).with_cost_estimate(20_000);
    assert!(hooks.dispatch_before_tool(&mut huge).await.is_blocked());
    // - High-cost actions require approval, and only the operator's signature approves them.
    assert!(coordinator.requires_approval("purchase_skill", 5_000));
    assert!(!coordinator.requires_approval("search", 100));
    let id = coordinator.request_approval("purchase_skill", "Buy a skill", 5_000);
    assert!(coordinator.approve(&id).is_err());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let event = agent_orchestrator::approvals::build_decision_event(&operator, &id, agent_orchestrator::approvals::Verdict::Approve, None, now).unwrap();
    assert_eq!(coordinator.approve_signed(&event).unwrap(), agent_orchestrator::ApprovalStatus::Approved);
}
