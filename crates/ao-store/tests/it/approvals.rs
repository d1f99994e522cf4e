use std::sync::Arc;

use ao_approvals::{ApprovalStatus, SolverAgentCoordinator, Verdict, build_decision_event};
use ao_audit::AuditLog;
use ao_identity::{AgentIdentity, AutonomyLevel};
use ao_store::SqliteStore;
use ao_types::TestClock;
use nostr::Keys;

use crate::TempStore;

const T0: u64 = 1_795_910_400;

#[test]
fn sqlite_approval_store_conforms() {
    ao_approvals::conformance::run_all(|| TempStore::new().leak());
}

#[test]
fn sqlite_audit_log_conforms() {
    ao_audit::conformance::run_all(|| TempStore::new().leak());
}

fn coordinator(store: SqliteStore, operator: &Keys, clock: &TestClock) -> SolverAgentCoordinator {
    let identity = AgentIdentity::new("pk", "Agent", "model")
        .with_autonomy(AutonomyLevel::Supervised)
        .with_operator(operator.public_key().to_hex());
    SolverAgentCoordinator::new(identity)
        .with_clock(Arc::new(clock.clone()))
        .with_store(store)
        .unwrap()
}

#[test]
fn restart_with_sqlite_keeps_everything() {
    let temp = TempStore::new();
    let operator = Keys::generate();
    let clock = TestClock::new(T0);
    let (pending, approved) = {
        let c = coordinator(
            SqliteStore::open(temp.db_path()).unwrap(),
            &operator,
            &clock,
        );
        let p = c.request_approval("purchase_skill", "pending", 5_000);
        let a = c.request_approval("purchase_skill", "approved", 6_000);
        c.approve_signed(
            &build_decision_event(&operator, &a, Verdict::Approve, Some("ok"), T0).unwrap(),
        )
        .unwrap();
        (p, a)
    };
    let c = coordinator(
        SqliteStore::open(temp.db_path()).unwrap(),
        &operator,
        &clock,
    );
    assert_eq!(c.status(&pending), Some(ApprovalStatus::Pending));
    assert_eq!(c.status(&approved), Some(ApprovalStatus::Approved));
    let decision = c.record(&approved).unwrap().decision.unwrap();
    assert_eq!(decision.reason.as_deref(), Some("ok"));
    assert_eq!(decision.decided_by, [operator.public_key().to_hex()]);
    let pending_list = c.list_pending();
    assert_eq!(pending_list.len(), 1);
    assert_eq!(pending_list[0].request_id, pending);
    assert_eq!(c.verify_audit_log().unwrap(), Ok(3));
}

#[test]
fn tampering_with_one_audit_row_is_detected() {
    let temp = TempStore::new();
    let operator = Keys::generate();
    let clock = TestClock::new(T0);
    let c = coordinator(temp.store.clone(), &operator, &clock);
    let id = c.request_approval("purchase_skill", "buy", 5_000);
    c.reject(&id).unwrap();
    c.request_approval("purchase_skill", "buy more", 9_000);
    assert_eq!(temp.store.verify().unwrap(), Ok(3));

    let raw = rusqlite::Connection::open(temp.db_path()).unwrap();
    raw.execute(
        "UPDATE audit_log SET kind = 'approval.approved' WHERE seq = 2",
        [],
    )
    .unwrap();
    let broken = temp.store.verify().unwrap().unwrap_err();
    assert_eq!(broken.seq, 2);
    assert!(broken.to_string().contains("edited"), "{broken}");

    // Deleting a middle row is found too, at the row after the gap.
    raw.execute(
        "UPDATE audit_log SET kind = 'approval.rejected' WHERE seq = 2",
        [],
    )
    .unwrap();
    assert_eq!(temp.store.verify().unwrap(), Ok(3));
    raw.execute("DELETE FROM audit_log WHERE seq = 2", [])
        .unwrap();
    assert_eq!(temp.store.verify().unwrap().unwrap_err().seq, 3);
}

/// The agent can write the database file: one `UPDATE` marks its request approved, with a
/// version past the coordinator's so that it is taken up. The decision is checked again under
/// the policy in force, finds no signature by the operator, and does not count, in the running
/// process and after a restart.
#[test]
fn an_approval_written_into_the_database_with_one_update_does_not_count() {
    let temp = TempStore::new();
    let operator = Keys::generate();
    let clock = TestClock::new(T0);
    let c = coordinator(
        SqliteStore::open(temp.db_path()).unwrap(),
        &operator,
        &clock,
    );
    let id = c.request_approval("chat.completion", "the agent's own request", 5_000);
    let raw = rusqlite::Connection::open(temp.db_path()).unwrap();
    let changed = raw
        .execute(
            "UPDATE approvals SET status = 'approved', record = json_set(record,
               '$.decision', json('{\"status\":\"approved\",\"decided_by\":[\"local operator\"],\"decided_at\":1795910400,\"reason\":null}'),
               '$.version', 99)
             WHERE request_id = ?1",
            [&id],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let used = c.consume(&id, "chat.completion", 5_000);
    assert!(used.is_err(), "the forged approval was used: {used:?}");
    assert_eq!(c.status(&id), Some(ApprovalStatus::Pending));
    let restarted = coordinator(
        SqliteStore::open(temp.db_path()).unwrap(),
        &operator,
        &clock,
    );
    assert_eq!(restarted.status(&id), Some(ApprovalStatus::Pending));
    assert!(restarted.consume(&id, "chat.completion", 5_000).is_err());
    // The operator's real decision still goes through.
    restarted
        .approve_signed(&build_decision_event(&operator, &id, Verdict::Approve, None, T0).unwrap())
        .unwrap();
    restarted.consume(&id, "chat.completion", 5_000).unwrap();
}
