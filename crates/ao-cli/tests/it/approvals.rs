use agent_orchestrator::approvals::ApprovalStatus;
use agent_orchestrator::store::SqliteStore;
use agent_orchestrator::{AgentIdentity, AutonomyLevel, SolverAgentCoordinator};
use nostr::{Keys, ToBech32};

use crate::{ao, path_str, stderr, stdout};

fn coordinator(db: &std::path::Path, operator: Option<&Keys>) -> SolverAgentCoordinator {
    let mut identity =
        AgentIdentity::new("pk", "oracle", "gpt-4").with_autonomy(AutonomyLevel::Supervised);
    if let Some(keys) = operator {
        identity = identity.with_operator(keys.public_key().to_bech32().unwrap());
    }
    SolverAgentCoordinator::new(identity)
        .with_store(SqliteStore::open(db).unwrap())
        .unwrap()
}

#[test]
fn list_approve_reject_and_verify_against_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ao.db");
    let operator = Keys::generate();
    let (a, b) = {
        let c = coordinator(&db, Some(&operator));
        (
            c.request_approval("purchase_skill", "Buy web-scraper skill", 5_000),
            c.request_approval("deploy", "Ship the release", 2_000),
        )
    };
    let db_arg = path_str(&db);

    let out = ao(&["approvals", "--db", db_arg, "list"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(listed.contains(&a) && listed.contains(&b), "{listed}");
    assert!(listed.contains("Buy web-scraper skill") && listed.contains("5000"));
    assert!(
        listed.find(&a).unwrap() < listed.find(&b).unwrap(),
        "oldest first"
    );

    // An unsigned approval cannot pass an operator's key.
    let out = ao(&["approvals", "--db", db_arg, "approve", &a], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("can only be approved with an event signed by"),
        "{}",
        stderr(&out)
    );

    // A stranger's key is refused.
    let stranger = dir.path().join("stranger.nsec");
    std::fs::write(
        &stranger,
        Keys::generate().secret_key().to_bech32().unwrap(),
    )
    .unwrap();
    let out = ao(
        &[
            "approvals",
            "--db",
            db_arg,
            "approve",
            &a,
            "--key-file",
            path_str(&stranger),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not the operator or a guardian"),
        "{}",
        stderr(&out)
    );

    let key_file = dir.path().join("operator.nsec");
    let nsec = operator.secret_key().to_bech32().unwrap();
    std::fs::write(&key_file, format!("{nsec}\n")).unwrap();
    let out = ao(
        &[
            "approvals",
            "--db",
            db_arg,
            "approve",
            &a,
            "--key-file",
            path_str(&key_file),
            "--reason",
            "worth it",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("{a}: approved"));
    assert!(!stdout(&out).contains(&nsec) && !stderr(&out).contains(&nsec));

    // The database is found through AO_DB too; rejecting needs no signature.
    let out = ao(
        &["approvals", "reject", &b, "--reason", "not today"],
        &[("AO_DB", db_arg)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("{b}: rejected"));

    let out = ao(&["approvals", "--db", db_arg, "reject", &a], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("was already decided: approved"),
        "{}",
        stderr(&out)
    );

    let out = ao(&["approvals", "--db", db_arg, "list"], &[]);
    assert_eq!(stdout(&out).trim(), "no pending approval requests");
    let out = ao(&["approvals", "--db", db_arg, "list", "--all"], &[]);
    assert!(stdout(&out).contains("approved") && stdout(&out).contains("rejected"));

    // The agent's coordinator, reopened, sees the operator's decisions.
    let c = coordinator(&db, Some(&operator));
    assert_eq!(c.status(&a), Some(ApprovalStatus::Approved));
    assert_eq!(c.status(&b), Some(ApprovalStatus::Rejected));
    assert_eq!(
        c.record(&a).unwrap().decision.unwrap().reason.as_deref(),
        Some("worth it")
    );

    let out = ao(&["approvals", "--db", db_arg, "verify-log"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "audit log intact: 4 entries, every link verified"
    );

    let raw = rusqlite::Connection::open(&db).unwrap();
    raw.execute("UPDATE audit_log SET detail = '{}' WHERE seq = 3", [])
        .unwrap();
    let out = ao(&["approvals", "--db", db_arg, "verify-log"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("audit log broken at entry 3:"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ao.db");
    let id = coordinator(&db, None).request_approval("a", "d", 10);
    let db_arg = path_str(&db);

    let out = ao(&["approvals", "--db", db_arg, "approve", "no-such-id"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: no approval request `no-such-id` in the database"
    );

    let bad_key = dir.path().join("bad.nsec");
    std::fs::write(&bad_key, "hunter2").unwrap();
    let out = ao(
        &[
            "approvals",
            "--db",
            db_arg,
            "approve",
            &id,
            "--key-file",
            path_str(&bad_key),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("holds no valid secret key") && !stderr(&out).contains("hunter2")
    );

    let out = ao(
        &[
            "approvals",
            "--db",
            path_str(&dir.path().join("missing.db")),
            "list",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"));
    assert!(
        !dir.path().join("missing.db").exists(),
        "a missing database is not created"
    );

    let out = ao(&["approvals", "list"], &[]);
    assert_eq!(out.status.code(), Some(2), "missing --db is a usage error");

    // Without an operator key, an unsigned approval counts.
    let out = ao(
        &["approvals", "--db", db_arg, "approve", &id, "--by", "alice"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}
