//! The agent as the adversary of its own approvals: flooding its operator, reusing an approval
//! for another request or long after, and writing to the store its coordinator reads.

use std::sync::Arc;
use std::time::Duration;

use ao_approvals::{
    ApprovalError, ApprovalStatus, ApprovalStore, Decision, MemoryApprovalStore,
    SolverAgentCoordinator, Verdict, Vote, build_decision_event,
};
use ao_types::TestClock;
use nostr::Keys;

use crate::{T0, audit_len, coordinator, identity};

#[test]
fn an_agent_cannot_file_more_requests_than_its_pending_limit() {
    let (c, _) = coordinator(None);
    let c = c.with_max_pending(3);
    let ids: Vec<String> = (0..3)
        .map(|i| {
            c.try_request_approval("a", &format!("n{i}"), 5_000)
                .unwrap()
        })
        .collect();
    let refused = c.try_request_approval("a", "one too many", 5_000);
    assert!(
        matches!(refused, Err(ApprovalError::TooManyPending { max: 3, retry_after_secs, .. }) if retry_after_secs > 0),
        "{refused:?}"
    );
    assert_eq!(
        c.list_pending().len(),
        3,
        "the refused request was not filed"
    );
    // A decision frees a place.
    c.reject(&ids[0]).unwrap();
    assert!(c.try_request_approval("a", "room again", 5_000).is_ok());
}

#[test]
fn settled_requests_leave_memory_and_listing_writes_nothing() {
    let (c, clock) = coordinator(None);
    let c = c
        .with_expiry(Duration::from_secs(60))
        .with_max_pending(1_000);
    for i in 0..200 {
        c.try_request_approval("a", &format!("abandoned {i}"), 5_000)
            .unwrap();
    }
    assert_eq!(c.held(), 200);
    clock.advance(61);
    let audited = audit_len(&c);
    assert!(c.list_pending().is_empty());
    assert_eq!(audit_len(&c), audited, "listing wrote nothing");
    assert_eq!(c.held(), 0, "expired requests left memory");
    let decided = c.try_request_approval("a", "decided", 5_000).unwrap();
    c.reject(&decided).unwrap();
    assert_eq!(c.held(), 0, "a rejected request leaves memory");
    // Forgotten is not lost: the store still answers for it.
    assert_eq!(c.status(&decided), Some(ApprovalStatus::Rejected));
}

#[test]
fn listing_pages_through_pending_requests_oldest_first() {
    let (c, clock) = coordinator(None);
    let ids: Vec<String> = (0..5)
        .map(|i| {
            clock.advance(1);
            c.try_request_approval("a", &format!("n{i}"), 1).unwrap()
        })
        .collect();
    let first = c.pending_page(None, 2).unwrap();
    assert_eq!(
        first.iter().map(|p| &p.request_id).collect::<Vec<_>>(),
        [&ids[0], &ids[1]]
    );
    let second = c.pending_page(Some(&ids[1]), 2).unwrap();
    assert_eq!(
        second.iter().map(|p| &p.request_id).collect::<Vec<_>>(),
        [&ids[2], &ids[3]]
    );
    assert_eq!(c.pending_page(Some(&ids[4]), 2).unwrap().len(), 0);
}

#[test]
fn an_approval_covers_only_the_request_it_was_filed_for() {
    let (c, _) = coordinator(None);
    let id = c
        .try_request_approval_for("chat", "the agent's request", 5_000, "hash-of-request-a")
        .unwrap();
    c.approve(&id).unwrap();
    let other = c.consume_for(&id, "chat", 5_000, Some("hash-of-request-b"));
    assert!(
        matches!(other, Err(ApprovalError::Mismatch { .. })),
        "{other:?}"
    );
    c.consume_for(&id, "chat", 5_000, Some("hash-of-request-a"))
        .unwrap();
}

#[test]
fn an_approval_not_used_within_its_window_lapses() {
    let (c, clock) = coordinator(None);
    let c = c.with_approval_usable_for(Duration::from_secs(3_600));
    let id = c.try_request_approval("chat", "later", 5_000).unwrap();
    c.approve(&id).unwrap();
    clock.advance(3_600);
    let lapsed = c.consume(&id, "chat", 5_000);
    assert!(
        matches!(lapsed, Err(ApprovalError::Lapsed { .. })),
        "{lapsed:?}"
    );
}

#[test]
fn the_policy_in_force_decides_whether_a_signature_is_needed() {
    let store = MemoryApprovalStore::new();
    let clock = TestClock::new(T0);
    // Filed while no operator was configured: unsigned approvals counted then.
    let before = SolverAgentCoordinator::new(identity(None))
        .with_clock(Arc::new(clock.clone()))
        .with_store(store.clone())
        .unwrap();
    let id = before.try_request_approval("chat", "x", 5_000).unwrap();
    // The operator configures a key and restarts: from now on only a signed decision counts.
    let operator = Keys::generate();
    let now = SolverAgentCoordinator::new(identity(Some(&operator)))
        .with_clock(Arc::new(clock.clone()))
        .with_store(store)
        .unwrap();
    let unsigned = now.approve(&id);
    assert!(
        matches!(unsigned, Err(ApprovalError::SignatureRequired { .. })),
        "{unsigned:?}"
    );
    now.approve_signed(&build_decision_event(&operator, &id, Verdict::Approve, None, T0).unwrap())
        .unwrap();
    assert_eq!(now.status(&id), Some(ApprovalStatus::Approved));
}

#[test]
fn a_decision_the_agent_writes_into_the_store_does_not_count() {
    let operator = Keys::generate();
    let store = MemoryApprovalStore::new();
    let clock = TestClock::new(T0);
    let c = SolverAgentCoordinator::new(identity(Some(&operator)))
        .with_clock(Arc::new(clock.clone()))
        .with_store(store.clone())
        .unwrap();
    let id = c.try_request_approval("chat", "x", 5_000).unwrap();
    // The agent can write the store: it marks its request approved by the operator, with a
    // vote whose event it cannot sign (it signs with its own key instead).
    let agent = Keys::generate();
    let mut forged = store.load(&id).unwrap().unwrap();
    let own = build_decision_event(&agent, &id, Verdict::Approve, None, T0).unwrap();
    forged.votes.push(Vote {
        pubkey: operator.public_key().to_hex(),
        verdict: Verdict::Approve,
        event_id: own.id.to_hex(),
        signed_at: T0,
        reason: None,
        event: Some(nostr::JsonUtil::as_json(&own)),
    });
    forged.decision = Some(Decision {
        status: ApprovalStatus::Approved,
        decided_by: vec![operator.public_key().to_hex()],
        decided_at: T0,
        reason: None,
    });
    forged.version += 1;
    store
        .save(
            &forged,
            ao_audit::AuditEvent::new(T0, "approval.approved", "Agent", serde_json::json!({})),
        )
        .unwrap();
    let used = c.consume(&id, "chat", 5_000);
    assert!(
        matches!(
            used,
            Err(ApprovalError::NotApproved {
                status: ApprovalStatus::Pending,
                ..
            })
        ),
        "{used:?}"
    );
    // Nor after a restart, which reads everything back from the store.
    let restarted = SolverAgentCoordinator::new(identity(Some(&operator)))
        .with_clock(Arc::new(clock))
        .with_store(store)
        .unwrap();
    assert_eq!(restarted.status(&id), Some(ApprovalStatus::Pending));
    assert!(restarted.consume(&id, "chat", 5_000).is_err());
}

#[test]
fn a_guardians_denial_recorded_elsewhere_is_never_overwritten() {
    let guardians: Vec<Keys> = (0..3).map(|_| Keys::generate()).collect();
    let store = MemoryApprovalStore::new();
    let clock = TestClock::new(T0);
    let server = SolverAgentCoordinator::new(identity(None))
        .with_clock(Arc::new(clock))
        .with_guardians(guardians.iter().map(|k| k.public_key().to_hex()), 2)
        .unwrap()
        .with_store(store.clone())
        .unwrap();
    let id = server.try_request_approval("chat", "x", 5_000).unwrap();
    // Guardian 0 denies through the CLI, on the same store, while the server still holds the
    // request as pending.
    let mut cli = store.load(&id).unwrap().unwrap();
    let denial = build_decision_event(&guardians[0], &id, Verdict::Reject, None, T0).unwrap();
    let (status, audit) = cli
        .apply_signed(&denial, Some(Verdict::Reject), T0)
        .unwrap();
    assert_eq!(status, ApprovalStatus::Rejected);
    cli.version += 1;
    store.save(&cli, audit).unwrap();
    // The server's stale copy then collects two approvals.
    for guardian in &guardians[1..] {
        let vote = build_decision_event(guardian, &id, Verdict::Approve, None, T0).unwrap();
        let refused = server.approve_signed(&vote);
        assert!(
            matches!(refused, Err(ApprovalError::AlreadyDecided { .. })),
            "{refused:?}"
        );
    }
    assert_eq!(server.status(&id), Some(ApprovalStatus::Rejected));
    assert_eq!(
        store.load(&id).unwrap().unwrap().decision.unwrap().status,
        ApprovalStatus::Rejected,
        "one denial rejects, always"
    );
}
