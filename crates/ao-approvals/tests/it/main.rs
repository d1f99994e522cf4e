//! The approval coordinator at its boundary: decisions, expiry, signed and guardian decisions,
//! restart, audit, and waiting for a decision.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]
#![allow(missing_docs, reason = "test code")]

mod adversary;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ao_approvals::{
    ApprovalError, ApprovalStatus, ApprovalStore, ApprovalStoreError, MemoryApprovalStore,
    SolverAgentCoordinator, Verdict, build_decision_event,
};
use ao_audit::{AuditError, AuditLog};
use ao_identity::{AgentIdentity, AutonomyLevel};
use ao_types::{Report, TestClock};
use nostr::{Event, JsonUtil, Keys};

/// 2026-11-29T00:00:00Z.
const T0: u64 = 1_795_910_400;

fn identity(operator: Option<&Keys>) -> AgentIdentity {
    let identity =
        AgentIdentity::new("pk", "Agent", "model").with_autonomy(AutonomyLevel::SemiAutonomous);
    match operator {
        Some(keys) => identity.with_operator(keys.public_key().to_hex()),
        None => identity,
    }
}

fn coordinator(operator: Option<&Keys>) -> (SolverAgentCoordinator, TestClock) {
    let clock = TestClock::new(T0);
    let c = SolverAgentCoordinator::new(identity(operator)).with_clock(Arc::new(clock.clone()));
    (c, clock)
}

fn audit_len(c: &SolverAgentCoordinator) -> u64 {
    c.verify_audit_log().unwrap().unwrap()
}

#[test]
fn approve_and_reject_are_different_decisions() {
    let (c, clock) = coordinator(None);
    let a = c.request_approval("purchase_skill", "buy", 5_000);
    let b = c.request_approval("purchase_skill", "buy again", 6_000);
    clock.advance(30);
    c.approve(&a).unwrap();
    c.reject(&b).unwrap();
    assert_eq!(c.status(&a), Some(ApprovalStatus::Approved));
    assert_eq!(c.status(&b), Some(ApprovalStatus::Rejected));
    assert!(c.status(&a).unwrap().allows());
    assert!(!c.status(&b).unwrap().allows());
    let decision = c.record(&a).unwrap().decision.unwrap();
    assert_eq!(decision.decided_by, ["local operator"]);
    assert_eq!(decision.decided_at, T0 + 30);
    c.decide(
        &c.request_approval("x", "y", 1),
        Verdict::Reject,
        "alice",
        Some("too pricey"),
    )
    .unwrap();
    assert!(c.list_pending().is_empty());
}

#[test]
fn deciding_twice_unknown_or_expired_fails_and_changes_nothing() {
    let (c, clock) = coordinator(None);
    let c = c.with_expiry(Duration::from_secs(3_600));
    let id = c.request_approval("a", "d", 5_000);
    c.approve(&id).unwrap();
    let before = audit_len(&c);
    assert!(matches!(
        c.reject(&id),
        Err(ApprovalError::AlreadyDecided {
            status: ApprovalStatus::Approved,
            ..
        })
    ));
    assert!(matches!(
        c.approve(&id),
        Err(ApprovalError::AlreadyDecided { .. })
    ));
    assert_eq!(c.status(&id), Some(ApprovalStatus::Approved));
    assert_eq!(audit_len(&c), before);

    assert!(matches!(
        c.approve("feedbeef"),
        Err(ApprovalError::NotFound { .. })
    ));
    assert_eq!(c.status("feedbeef"), None);

    let late = c.request_approval("a", "d", 5_000);
    clock.advance(3_599);
    assert_eq!(c.status(&late), Some(ApprovalStatus::Pending));
    clock.advance(1);
    let err = c.approve(&late).unwrap_err();
    assert!(
        matches!(err, ApprovalError::Expired { expired_at, .. } if expired_at == T0 + 3_600),
        "{err}"
    );
    assert_eq!(c.status(&late), Some(ApprovalStatus::Expired));
    assert!(!c.status(&late).unwrap().allows());
    assert!(c.reject(&late).is_err());
    assert!(c.list_pending().is_empty());
}

#[test]
fn pending_is_oldest_first_with_the_spec_fields() {
    let (c, clock) = coordinator(None);
    let first = c.request_approval("purchase_skill", "Buy web-scraper skill", 5_000);
    clock.advance(1);
    let second = c.request_approval("deploy", "Ship it", 2_000);
    let third = c.request_approval("deploy", "Ship it again", 3_000);
    let pending = c.list_pending();
    let ids: Vec<&str> = pending.iter().map(|p| p.request_id.as_str()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str(), third.as_str()]);
    assert_eq!(pending[0].action_type, "purchase_skill");
    assert_eq!(pending[0].description, "Buy web-scraper skill");
    assert_eq!(pending[0].cost_estimate_sats, 5_000);
    assert_eq!(pending[0].created_at, T0);
}

#[test]
fn ids_are_128_random_bits() {
    let (c, _) = coordinator(None);
    let ids: HashSet<String> = (0..5_000)
        .map(|_| c.request_approval("a", "d", 1))
        .collect();
    assert_eq!(ids.len(), 5_000);
    assert!(
        ids.iter()
            .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
    );
}

#[test]
fn with_an_operator_key_only_a_signed_approval_counts() {
    let operator = Keys::generate();
    let (c, clock) = coordinator(Some(&operator));
    let id = c.request_approval("purchase_skill", "buy", 5_000);
    let err = c.approve(&id).unwrap_err();
    assert!(
        matches!(err, ApprovalError::SignatureRequired { .. }),
        "{err}"
    );
    assert_eq!(c.status(&id), Some(ApprovalStatus::Pending));
    clock.advance(10);
    let event =
        build_decision_event(&operator, &id, Verdict::Approve, Some("looks fine"), T0 + 5).unwrap();
    assert_eq!(c.approve_signed(&event).unwrap(), ApprovalStatus::Approved);
    let record = c.record(&id).unwrap();
    let decision = record.decision.unwrap();
    assert_eq!(decision.decided_by, [operator.public_key().to_hex()]);
    assert_eq!(decision.reason.as_deref(), Some("looks fine"));
    assert_eq!(record.votes[0].event_id, event.id.to_hex());
    // Refusing needs no signature: it is always safe.
    let other = c.request_approval("purchase_skill", "buy", 5_000);
    c.reject(&other).unwrap();
}

fn tamper(event: &Event, edit: impl FnOnce(&mut serde_json::Value)) -> Event {
    let mut json: serde_json::Value = serde_json::from_str(&event.as_json()).unwrap();
    edit(&mut json);
    Event::from_json(json.to_string()).unwrap()
}

/// A coordinator supervised by `operator`, with one pending request `id`.
fn pending_for_operator() -> (Keys, SolverAgentCoordinator, String) {
    let operator = Keys::generate();
    let (c, _) = coordinator(Some(&operator));
    let id = c.request_approval("purchase_skill", "buy", 5_000);
    (operator, c, id)
}

/// Hands `forged` to `approve_signed` and returns its error, after checking that the refusal
/// changed nothing: `id` is still pending with no vote, the audit log did not grow, and the
/// operator's genuine approval still goes through.
fn refused_without_a_trace(
    c: &SolverAgentCoordinator,
    operator: &Keys,
    id: &str,
    forged: &Event,
) -> ApprovalError {
    let before = audit_len(c);
    let err = c.approve_signed(forged).unwrap_err();
    assert_eq!(c.status(id), Some(ApprovalStatus::Pending));
    assert!(c.record(id).unwrap().votes.is_empty());
    assert_eq!(audit_len(c), before, "a refused decision is not logged");
    let good = build_decision_event(operator, id, Verdict::Approve, None, T0).unwrap();
    assert_eq!(c.approve_signed(&good).unwrap(), ApprovalStatus::Approved);
    err
}

#[test]
fn a_decision_signed_by_a_stranger_is_refused() {
    let (operator, c, id) = pending_for_operator();
    let wrong_key =
        build_decision_event(&Keys::generate(), &id, Verdict::Approve, None, T0).unwrap();
    assert!(matches!(
        refused_without_a_trace(&c, &operator, &id, &wrong_key),
        ApprovalError::UnauthorizedSigner { .. }
    ));
}

#[test]
fn a_decision_for_an_unknown_request_is_refused() {
    let (operator, c, id) = pending_for_operator();
    let unknown_request = build_decision_event(
        &operator,
        "00112233445566778899aabbccddeeff",
        Verdict::Approve,
        None,
        T0,
    )
    .unwrap();
    assert!(matches!(
        refused_without_a_trace(&c, &operator, &id, &unknown_request),
        ApprovalError::NotFound { .. }
    ));
}

#[test]
fn a_decision_with_a_broken_signature_is_refused() {
    let (operator, c, id) = pending_for_operator();
    let good = build_decision_event(&operator, &id, Verdict::Approve, None, T0).unwrap();
    let bad_sig = tamper(&good, |j| {
        let sig = j["sig"].as_str().unwrap().to_owned();
        let flipped = if sig.starts_with('0') { "1" } else { "0" };
        j["sig"] = format!("{flipped}{}", &sig[1..]).into();
    });
    assert!(matches!(
        refused_without_a_trace(&c, &operator, &id, &bad_sig),
        ApprovalError::BadSignature { .. }
    ));
}

#[test]
fn a_denial_edited_into_an_approval_is_refused() {
    let (operator, c, id) = pending_for_operator();
    let denied = build_decision_event(&operator, &id, Verdict::Reject, None, T0).unwrap();
    let tampered_tag = tamper(&denied, |j| j["tags"][1][1] = "approved".into());
    assert!(matches!(
        refused_without_a_trace(&c, &operator, &id, &tampered_tag),
        ApprovalError::BadSignature { .. }
    ));
}

#[test]
fn an_approval_retargeted_at_another_request_is_refused() {
    let (operator, c, id) = pending_for_operator();
    let other_id = c.request_approval("other", "d", 5_000);
    let good = build_decision_event(&operator, &id, Verdict::Approve, None, T0).unwrap();
    let retargeted = tamper(&good, |j| j["tags"][0][1] = other_id.clone().into());
    assert!(matches!(
        refused_without_a_trace(&c, &operator, &id, &retargeted),
        ApprovalError::BadSignature { .. }
    ));
    assert_eq!(c.status(&other_id), Some(ApprovalStatus::Pending));
}

#[test]
fn a_decision_made_two_hours_ago_is_refused_as_stale() {
    let (operator, c, id) = pending_for_operator();
    let stale = build_decision_event(&operator, &id, Verdict::Approve, None, T0 - 7_200).unwrap();
    assert!(matches!(
        refused_without_a_trace(&c, &operator, &id, &stale),
        ApprovalError::StaleEvent { .. }
    ));
}

#[test]
fn a_decision_dated_an_hour_ahead_is_refused_as_stale() {
    let (operator, c, id) = pending_for_operator();
    let future = build_decision_event(&operator, &id, Verdict::Approve, None, T0 + 3_600).unwrap();
    assert!(matches!(
        refused_without_a_trace(&c, &operator, &id, &future),
        ApprovalError::StaleEvent { .. }
    ));
}

#[test]
fn a_denial_handed_to_approve_signed_is_not_an_approval() {
    let (operator, c, id) = pending_for_operator();
    let denied = build_decision_event(&operator, &id, Verdict::Reject, None, T0).unwrap();
    assert!(matches!(
        refused_without_a_trace(&c, &operator, &id, &denied),
        ApprovalError::DecisionMismatch { .. }
    ));
}

#[test]
fn an_event_of_another_kind_is_refused() {
    let (operator, c, id) = pending_for_operator();
    let wrong_kind = nostr::EventBuilder::new(nostr::Kind::TextNote, "approve")
        .tags([nostr::Tag::identifier(&id)])
        .sign_with_keys(&operator)
        .unwrap();
    assert!(matches!(
        refused_without_a_trace(&c, &operator, &id, &wrong_kind),
        ApprovalError::WrongKind { found: 1 }
    ));
}

#[test]
fn two_of_three_guardians_need_two_distinct_signers() {
    let guardians: Vec<Keys> = (0..3).map(|_| Keys::generate()).collect();
    let (c, _) = coordinator(None);
    let c = c
        .with_guardians(guardians.iter().map(|k| k.public_key().to_hex()), 2)
        .unwrap();
    let id = c.request_approval("purchase_skill", "buy", 5_000);
    assert!(matches!(
        c.approve(&id),
        Err(ApprovalError::SignatureRequired { .. })
    ));
    let first = build_decision_event(&guardians[0], &id, Verdict::Approve, None, T0).unwrap();
    assert_eq!(c.approve_signed(&first).unwrap(), ApprovalStatus::Pending);
    // The same guardian again, even with a fresh event, does not count twice.
    let again =
        build_decision_event(&guardians[0], &id, Verdict::Approve, Some("really"), T0 + 1).unwrap();
    assert!(matches!(
        c.approve_signed(&again),
        Err(ApprovalError::DuplicateVote { .. })
    ));
    assert_eq!(c.status(&id), Some(ApprovalStatus::Pending));
    let second = build_decision_event(&guardians[2], &id, Verdict::Approve, None, T0).unwrap();
    assert_eq!(c.approve_signed(&second).unwrap(), ApprovalStatus::Approved);
    let mut by = c.record(&id).unwrap().decision.unwrap().decided_by;
    by.sort();
    let mut expected = vec![
        guardians[0].public_key().to_hex(),
        guardians[2].public_key().to_hex(),
    ];
    expected.sort();
    assert_eq!(by, expected);

    // One denial rejects, even after an approval.
    let id = c.request_approval("purchase_skill", "buy", 5_000);
    c.approve_signed(
        &build_decision_event(&guardians[0], &id, Verdict::Approve, None, T0).unwrap(),
    )
    .unwrap();
    let veto = build_decision_event(&guardians[1], &id, Verdict::Reject, Some("no"), T0).unwrap();
    assert_eq!(c.reject_signed(&veto).unwrap(), ApprovalStatus::Rejected);
    let late = build_decision_event(&guardians[2], &id, Verdict::Approve, None, T0).unwrap();
    assert!(matches!(
        c.approve_signed(&late),
        Err(ApprovalError::AlreadyDecided { .. })
    ));
}

#[test]
fn guardian_configuration_is_checked() {
    let keys: Vec<String> = (0..3)
        .map(|_| Keys::generate().public_key().to_hex())
        .collect();
    let (c, _) = coordinator(None);
    assert!(matches!(
        c.with_guardians(&keys, 4),
        Err(ApprovalError::InvalidGuardians { .. })
    ));
    let (c, _) = coordinator(None);
    assert!(c.with_guardians(&keys, 0).is_err());
    let (c, _) = coordinator(None);
    assert!(
        c.with_guardians([keys[0].clone(), keys[0].clone()], 1)
            .is_err()
    );
    let (c, _) = coordinator(None);
    assert!(c.with_guardians(["not-a-key"], 1).is_err());
}

#[test]
fn restart_keeps_pending_and_decided_requests() {
    let operator = Keys::generate();
    let store = MemoryApprovalStore::new();
    let clock = TestClock::new(T0);
    let make = || {
        SolverAgentCoordinator::new(identity(Some(&operator)))
            .with_clock(Arc::new(clock.clone()))
            .with_store(store.clone())
            .unwrap()
    };
    let (pending, approved, rejected) = {
        let c = make();
        let p = c.request_approval("a", "pending one", 5_000);
        let a = c.request_approval("a", "approved one", 5_000);
        let r = c.request_approval("a", "rejected one", 5_000);
        c.approve_signed(&build_decision_event(&operator, &a, Verdict::Approve, None, T0).unwrap())
            .unwrap();
        c.reject(&r).unwrap();
        (p, a, r)
    };
    let c = make();
    assert_eq!(c.status(&pending), Some(ApprovalStatus::Pending));
    assert_eq!(c.status(&approved), Some(ApprovalStatus::Approved));
    assert_eq!(c.status(&rejected), Some(ApprovalStatus::Rejected));
    assert_eq!(c.list_pending().len(), 1);
    assert_eq!(c.list_pending()[0].description, "pending one");
    c.approve_signed(
        &build_decision_event(&operator, &pending, Verdict::Approve, None, T0).unwrap(),
    )
    .unwrap();
    assert_eq!(
        store
            .load(&pending)
            .unwrap()
            .unwrap()
            .decision
            .unwrap()
            .status,
        ApprovalStatus::Approved
    );
    assert_eq!(c.verify_audit_log().unwrap(), Ok(6));
}

#[test]
fn tampering_with_one_audit_entry_is_found() {
    let store = MemoryApprovalStore::new();
    let c = SolverAgentCoordinator::new(identity(None))
        .with_store(store.clone())
        .unwrap();
    let id = c.request_approval("purchase_skill", "buy", 5_000);
    c.approve(&id).unwrap();
    c.request_approval("purchase_skill", "buy", 7_000);
    assert_eq!(c.verify_audit_log().unwrap(), Ok(3));
    let mut entry = store.entries(2, 1).unwrap().remove(0);
    entry.kind = "approval.rejected".into();
    store.audit_log().tamper(2, entry).unwrap();
    let broken = c.verify_audit_log().unwrap().unwrap_err();
    assert_eq!(broken.seq, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_decision_wakes_within_milliseconds() {
    let c = Arc::new(SolverAgentCoordinator::new(identity(None)));
    let id = c.request_approval("purchase_skill", "buy", 5_000);
    let waiter = {
        let c = Arc::clone(&c);
        let id = id.clone();
        tokio::spawn(async move {
            let status = c.wait_for_decision(&id, Duration::from_secs(30)).await;
            (status, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let decided_at = Instant::now();
    {
        let c = Arc::clone(&c);
        let id = id.clone();
        std::thread::spawn(move || c.approve(&id).unwrap())
            .join()
            .unwrap();
    }
    let (status, woke_at) = waiter.await.unwrap();
    assert_eq!(status.unwrap(), ApprovalStatus::Approved);
    let latency = woke_at.duration_since(decided_at);
    assert!(
        latency < Duration::from_millis(50),
        "woke {latency:?} after the decision"
    );
    // A decided request answers at once.
    assert_eq!(
        c.wait_for_decision(&id, Duration::ZERO).await.unwrap(),
        ApprovalStatus::Approved
    );
}

#[tokio::test]
async fn wait_for_decision_times_out_or_sees_expiry() {
    let (c, _) = coordinator(None);
    let id = c.request_approval("purchase_skill", "buy", 5_000);
    let started = Instant::now();
    let err = c
        .wait_for_decision(&id, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, ApprovalError::Timeout { .. }), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(matches!(
        c.wait_for_decision("nope", Duration::ZERO).await,
        Err(ApprovalError::NotFound { .. })
    ));

    let c = SolverAgentCoordinator::new(identity(None)).with_expiry(Duration::from_secs(1));
    let id = c.request_approval("purchase_skill", "buy", 5_000);
    let status = c
        .wait_for_decision(&id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status, ApprovalStatus::Expired);
}

#[test]
fn coordinator_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SolverAgentCoordinator>();
    check::<ApprovalError>();
}

#[test]
fn the_agents_own_key_never_approves_for_it() {
    let agent = Keys::generate();
    let identity = AgentIdentity::new(agent.public_key().to_hex(), "Agent", "m")
        .with_autonomy(AutonomyLevel::Supervised)
        .with_operator(agent.public_key().to_hex());
    let c = SolverAgentCoordinator::new(identity.clone());
    let id = c.request_approval("a", "d", 10);
    let own = build_decision_event(
        &agent,
        &id,
        Verdict::Approve,
        None,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    assert!(matches!(
        c.approve_signed(&own),
        Err(ApprovalError::UnauthorizedSigner { .. })
    ));
    assert!(matches!(
        c.approve(&id),
        Err(ApprovalError::SignatureRequired { .. })
    ));
    let err = SolverAgentCoordinator::new(identity)
        .with_guardians([agent.public_key().to_hex()], 1)
        .unwrap_err();
    assert!(err.to_string().contains("own key"), "{err}");
}

#[test]
fn a_decision_made_by_another_process_on_the_store_is_taken_up() {
    let store = MemoryApprovalStore::new();
    let c = SolverAgentCoordinator::new(identity(None))
        .with_store(store.clone())
        .unwrap();
    let id = c.request_approval("purchase_skill", "buy", 5_000);
    // What `ao approvals approve` does, on the same database, from another process.
    let mut record = store.load(&id).unwrap().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let audit = record
        .decide_unsigned(Verdict::Approve, "cli operator", None, now)
        .unwrap();
    record.version += 1;
    store.save(&record, audit).unwrap();
    c.consume(&id, "purchase_skill", 5_000).unwrap();
    assert!(matches!(
        c.consume(&id, "purchase_skill", 5_000),
        Err(ApprovalError::AlreadyUsed { .. })
    ));
}

/// A store that loads nothing and refuses every write, as a full disk would.
#[derive(Debug)]
struct RefusingStore;

impl AuditLog for RefusingStore {
    fn append(&self, _event: ao_audit::AuditEvent) -> Result<ao_audit::AuditEntry, AuditError> {
        Err(AuditError::write("disk full"))
    }

    fn entries(
        &self,
        _from_seq: u64,
        _limit: usize,
    ) -> Result<Vec<ao_audit::AuditEntry>, AuditError> {
        Ok(Vec::new())
    }
}

impl ApprovalStore for RefusingStore {
    fn save(
        &self,
        _record: &ao_approvals::ApprovalRecord,
        _audit: ao_audit::AuditEvent,
    ) -> Result<ao_audit::AuditEntry, ApprovalStoreError> {
        Err(ApprovalStoreError::write("disk full"))
    }

    fn load(
        &self,
        _request_id: &str,
    ) -> Result<Option<ao_approvals::ApprovalRecord>, ApprovalStoreError> {
        Ok(None)
    }

    fn load_agent(
        &self,
        _agent: &str,
    ) -> Result<Vec<ao_approvals::ApprovalRecord>, ApprovalStoreError> {
        Ok(Vec::new())
    }

    fn load_all(&self) -> Result<Vec<ao_approvals::ApprovalRecord>, ApprovalStoreError> {
        Ok(Vec::new())
    }
}

#[test]
fn a_request_the_store_refuses_waits_in_memory_and_the_error_names_it() {
    let c = SolverAgentCoordinator::new(identity(None))
        .with_store(RefusingStore)
        .unwrap();
    let err = c
        .try_request_approval("deploy", "ship it", 5_000)
        .unwrap_err();
    let ApprovalError::NotStored { request_id, .. } = &err else {
        panic!("expected NotStored, got {err:?}");
    };
    assert_eq!(c.status(request_id), Some(ApprovalStatus::Pending));
    assert!(!err.to_string().contains("disk full"), "{err}");
    let report = Report::new(&err).to_string();
    assert!(
        report.starts_with(&format!(
            "approval request `{request_id}` could not be stored"
        )) && report
            .ends_with(": the approval store cannot be written; nothing was changed: disk full"),
        "{report}"
    );

    // The infallible form logs the error and still answers the id of the request in memory.
    let id = c.request_approval("deploy", "ship it again", 5_000);
    assert_eq!(c.status(&id), Some(ApprovalStatus::Pending));
}
