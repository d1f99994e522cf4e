//! The conformance suite every [`ApprovalStore`] runs: call [`run_all`] with a function that makes
//! a fresh, empty store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a conformance failure is a panic, by design"
)]

use ao_audit::AuditEvent;
use serde_json::json;

use crate::{
    ApprovalPolicy, ApprovalRecord, ApprovalStatus, ApprovalStore, ApprovalStoreError, Decision,
    PendingApproval, Verdict, Vote,
};

fn record(id: &str, agent: &str, created_at: u64) -> ApprovalRecord {
    ApprovalRecord {
        request: PendingApproval {
            request_id: id.into(),
            action_type: "purchase_skill".into(),
            description: "Buy web-scraper skill — ünïcode".into(),
            cost_estimate_sats: 5_000,
            created_at,
        },
        agent: agent.into(),
        expires_at: created_at + 86_400,
        policy: ApprovalPolicy {
            approvers: vec!["aa".repeat(32)],
            required: 1,
            allow_unsigned: false,
            max_event_age_secs: 3_600,
        },
        votes: vec![],
        decision: None,
        used_at: None,
        request_hash: Some("cc".repeat(32)),
        version: 1,
    }
}

/// Runs every check against fresh stores made by `fresh`.
pub fn run_all<S, F>(fresh: F)
where
    S: ApprovalStore + 'static,
    F: Fn() -> S,
{
    records_round_trip_and_update_in_place(fresh());
    a_stale_copy_cannot_overwrite_a_newer_save(fresh());
    agents_are_kept_apart_oldest_first(fresh());
    every_save_is_audited_in_one_chain(fresh());
}

/// A saved record comes back exactly; saving it again replaces it.
pub fn records_round_trip_and_update_in_place(store: impl ApprovalStore) {
    let mut r = record("r1", "agent", 100);
    store
        .save(
            &r,
            AuditEvent::new(100, "approval.requested", "agent", json!({})),
        )
        .unwrap();
    assert_eq!(store.load("r1").unwrap(), Some(r.clone()));
    assert_eq!(store.load("nope").unwrap(), None);
    r.votes.push(Vote {
        pubkey: "aa".repeat(32),
        verdict: Verdict::Approve,
        event_id: "bb".repeat(32),
        signed_at: 101,
        reason: Some("ok".into()),
        event: Some("{\"a\": \"signed event\"}".into()),
    });
    r.decision = Some(Decision {
        status: ApprovalStatus::Approved,
        decided_by: vec!["aa".repeat(32)],
        decided_at: 102,
        reason: None,
    });
    r.version = 2;
    store
        .save(
            &r,
            AuditEvent::new(102, "approval.approved", "agent", json!({})),
        )
        .unwrap();
    assert_eq!(store.load("r1").unwrap(), Some(r));
    assert_eq!(
        store.load_all().unwrap().len(),
        1,
        "an update does not add a record"
    );
}

/// `load_agent` returns one agent's records, oldest first.
pub fn agents_are_kept_apart_oldest_first(store: impl ApprovalStore) {
    for (id, agent, t) in [
        ("a2", "a", 200),
        ("b1", "b", 150),
        ("a1", "a", 100),
        ("a3", "a", 300),
    ] {
        store
            .save(
                &record(id, agent, t),
                AuditEvent::new(t, "approval.requested", agent, json!({})),
            )
            .unwrap();
    }
    let ids: Vec<String> = store
        .load_agent("a")
        .unwrap()
        .into_iter()
        .map(|r| r.request.request_id)
        .collect();
    assert_eq!(ids, ["a1", "a2", "a3"]);
    assert_eq!(store.load_agent("b").unwrap().len(), 1);
    assert!(store.load_agent("c").unwrap().is_empty());
    assert_eq!(store.load_all().unwrap().len(), 4);
}

/// Each save appends one audit entry, all in one sound chain.
pub fn every_save_is_audited_in_one_chain(store: impl ApprovalStore) {
    let first = store
        .save(
            &record("x", "a", 1),
            AuditEvent::new(1, "approval.requested", "a", json!({"n": 1})),
        )
        .unwrap();
    let second = store
        .save(
            &record("y", "a", 2),
            AuditEvent::new(2, "approval.requested", "a", json!({"n": 2})),
        )
        .unwrap();
    assert_eq!(second.prev_hash, first.hash);
    assert_eq!(store.verify().unwrap(), Ok(2));
}

/// Saves are compare-and-swap: a record saved from a stale copy (its version is not one past
/// the stored one) is refused, writes nothing and appends no audit entry.
pub fn a_stale_copy_cannot_overwrite_a_newer_save(store: impl ApprovalStore) {
    let filed = record("cas", "agent", 10);
    store
        .save(
            &filed,
            AuditEvent::new(10, "approval.requested", "agent", json!({})),
        )
        .unwrap();
    // Two processes read version 1; one rejects first.
    let mut rejected = filed.clone();
    rejected.version = 2;
    rejected.decision = Some(Decision {
        status: ApprovalStatus::Rejected,
        decided_by: vec!["guardian".into()],
        decided_at: 11,
        reason: Some("no".into()),
    });
    store
        .save(
            &rejected,
            AuditEvent::new(11, "approval.rejected", "agent", json!({})),
        )
        .unwrap();
    let mut stale = filed.clone();
    stale.version = 2;
    stale.decision = Some(Decision {
        status: ApprovalStatus::Approved,
        decided_by: vec!["aa".repeat(32)],
        decided_at: 12,
        reason: None,
    });
    let refused = store.save(
        &stale,
        AuditEvent::new(12, "approval.approved", "agent", json!({})),
    );
    assert!(
        matches!(refused, Err(ApprovalStoreError::Conflict { .. })),
        "a stale save must be refused: {refused:?}"
    );
    assert_eq!(
        store.load("cas").unwrap(),
        Some(rejected),
        "the denial stands"
    );
    assert_eq!(
        store.verify().unwrap(),
        Ok(2),
        "the refused save appended nothing"
    );
    let mut next = store.load("cas").unwrap().unwrap();
    next.version = 3;
    store
        .save(
            &next,
            AuditEvent::new(13, "approval.note", "agent", json!({})),
        )
        .unwrap();
}
