//! "Approval Workflow (NIP-SA)".

// The spec discards the `Result` of `approve`; that sample must compile as written.
#![allow(unused_must_use)]

use agent_orchestrator::ApprovalStatus;

#[test]
fn solver_agent_coordinator_usage() {
    let mut approved_id = None;

    // --- spec: SolverAgentCoordinator
    use agent_orchestrator::{AgentIdentity, SolverAgentCoordinator, AutonomyLevel};

    let identity = AgentIdentity::new("pk", "Agent", "model")
        .with_autonomy(AutonomyLevel::SemiAutonomous);

    let coordinator = SolverAgentCoordinator::new(identity);

    // Check if approval needed
    if coordinator.requires_approval("purchase_skill", 5000) {
        // Request approval
        let request_id = coordinator.request_approval(
            "purchase_skill",
            "Buy web-scraper skill for data extraction",
            5000,  // cost estimate in sats
        );
        
        // List pending approvals
        let pending = coordinator.list_pending();
        for p in pending {
            println!("{}: {} ({} sats)", p.request_id, p.description, p.cost_estimate_sats);
        }
        
        // Operator approves or rejects
        coordinator.approve(&request_id);
        // or: coordinator.reject(&request_id);
        approved_id = Some(request_id); // (test only: keeps the id for the checks below)
    }
    // --- end spec

    let id = approved_id.expect("5000 sats needs approval at SemiAutonomous");
    assert_eq!(coordinator.status(&id), Some(ApprovalStatus::Approved));
    assert!(coordinator.list_pending().is_empty());
    assert_eq!(id.len(), 32);
    // Approve and reject are different decisions; deciding twice is refused.
    assert!(coordinator.reject(&id).is_err());
    assert!(!coordinator.requires_approval("purchase_skill", 1000));
}

#[test]
fn pending_approval_fields() {
    use agent_orchestrator::{AgentIdentity, SolverAgentCoordinator};
    let coordinator = SolverAgentCoordinator::new(AgentIdentity::new("pk", "Agent", "model"));
    let id = coordinator.request_approval("purchase_skill", "Buy", 5000);
    // --- spec: PendingApproval struct
    let agent_orchestrator::PendingApproval {
        request_id,
        action_type,
        description,
        cost_estimate_sats,
        created_at,
    } = coordinator.list_pending().remove(0);
    // --- end spec
    assert_eq!(request_id, id);
    assert_eq!(action_type, "purchase_skill");
    assert_eq!(description, "Buy");
    assert_eq!(cost_estimate_sats, 5000);
    assert!(created_at > 1_700_000_000);
}

#[test]
fn approval_logic_by_autonomy_level() {
    use agent_orchestrator::{AgentIdentity, AutonomyLevel, SolverAgentCoordinator};
    let coordinator = |level| SolverAgentCoordinator::new(AgentIdentity::new("pk", "Agent", "model").with_autonomy(level));
    // | Supervised | Always `true` |
    // | SemiAutonomous | `true` if cost > 1000 sats |
    // | FullyAutonomous | Always `false` |
    let supervised = coordinator(AutonomyLevel::Supervised);
    let semi = coordinator(AutonomyLevel::SemiAutonomous);
    let fully = coordinator(AutonomyLevel::FullyAutonomous);
    for cost in [0, 1, 999, 1000, 1001, 5000, u64::MAX] {
        assert!(supervised.requires_approval("any", cost));
        assert_eq!(semi.requires_approval("any", cost), cost > 1000);
        assert!(!fully.requires_approval("any", cost));
    }
    let strict = coordinator(AutonomyLevel::SemiAutonomous).with_approval_above_sats(100);
    assert!(strict.requires_approval("any", 101));
    assert!(!strict.requires_approval("any", 100));
}
