use std::path::PathBuf;
use std::process::Output;

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

/// A database in which the agent, supervised by `operator`, filed two requests: `a` (buy a skill
/// for 5,000 sats) and then `b` (ship a release for 2,000 sats).
struct Filed {
    dir: tempfile::TempDir,
    db: PathBuf,
    operator: Keys,
    a: String,
    b: String,
}

impl Filed {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ao.db");
        let operator = Keys::generate();
        let c = coordinator(&db, Some(&operator));
        let a = c.request_approval("purchase_skill", "Buy web-scraper skill", 5_000);
        let b = c.request_approval("deploy", "Ship the release", 2_000);
        Filed {
            dir,
            db,
            operator,
            a,
            b,
        }
    }

    fn db_arg(&self) -> &str {
        path_str(&self.db)
    }

    /// Writes `keys`' nsec to a file named `name`, the way an operator keeps it.
    fn key_file(&self, name: &str, keys: &Keys) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(
            &path,
            format!("{}\n", keys.secret_key().to_bech32().unwrap()),
        )
        .unwrap();
        path
    }

    /// `ao approvals approve` of `a` with the operator's key file and the reason "worth it".
    fn approve_a(&self) -> Output {
        let key_file = self.key_file("operator.nsec", &self.operator);
        ao(
            &[
                "approvals",
                "--db",
                self.db_arg(),
                "approve",
                &self.a,
                "--key-file",
                path_str(&key_file),
                "--reason",
                "worth it",
            ],
            &[],
        )
    }

    /// `ao approvals reject` of `b` with the reason "not today", the database named by `AO_DB`.
    fn reject_b(&self) -> Output {
        ao(
            &["approvals", "reject", &self.b, "--reason", "not today"],
            &[("AO_DB", self.db_arg())],
        )
    }

    /// Approves `a` and rejects `b`; the log then holds four entries.
    fn decide_both(&self) {
        for out in [self.approve_a(), self.reject_b()] {
            assert!(out.status.success(), "{}", stderr(&out));
        }
    }
}

#[test]
fn list_shows_pending_requests_oldest_first() {
    let f = Filed::new();
    let out = ao(&["approvals", "--db", f.db_arg(), "list"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(listed.contains(&f.a) && listed.contains(&f.b), "{listed}");
    assert!(listed.contains("Buy web-scraper skill") && listed.contains("5000"));
    assert!(
        listed.find(&f.a).unwrap() < listed.find(&f.b).unwrap(),
        "oldest first"
    );
}

#[test]
fn an_unsigned_approval_cannot_pass_an_operator_key() {
    let f = Filed::new();
    let out = ao(&["approvals", "--db", f.db_arg(), "approve", &f.a], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("can only be approved with an event signed by"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_stranger_key_cannot_approve() {
    let f = Filed::new();
    let stranger = f.key_file("stranger.nsec", &Keys::generate());
    let out = ao(
        &[
            "approvals",
            "--db",
            f.db_arg(),
            "approve",
            &f.a,
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
}

#[test]
fn the_operator_key_file_approves_and_its_nsec_is_never_printed() {
    let f = Filed::new();
    let nsec = f.operator.secret_key().to_bech32().unwrap();
    let out = f.approve_a();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("{}: approved", f.a));
    assert!(!stdout(&out).contains(&nsec) && !stderr(&out).contains(&nsec));
}

#[test]
fn rejecting_needs_no_signature() {
    let f = Filed::new();
    let out = ao(&["approvals", "--db", f.db_arg(), "reject", &f.b], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("{}: rejected", f.b));
}

#[test]
fn the_database_is_found_through_ao_db() {
    let f = Filed::new();
    let out = f.reject_b();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("{}: rejected", f.b));
}

#[test]
fn a_decided_request_cannot_be_decided_again() {
    let f = Filed::new();
    f.decide_both();
    let out = ao(&["approvals", "--db", f.db_arg(), "reject", &f.a], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("was already decided: approved"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn decided_requests_leave_the_pending_list_and_show_with_all() {
    let f = Filed::new();
    f.decide_both();
    let out = ao(&["approvals", "--db", f.db_arg(), "list"], &[]);
    assert_eq!(stdout(&out).trim(), "no pending approval requests");
    let out = ao(&["approvals", "--db", f.db_arg(), "list", "--all"], &[]);
    assert!(stdout(&out).contains("approved") && stdout(&out).contains("rejected"));
}

#[test]
fn the_agent_coordinator_reopened_sees_the_operator_decisions() {
    let f = Filed::new();
    f.decide_both();
    let c = coordinator(&f.db, Some(&f.operator));
    assert_eq!(c.status(&f.a), Some(ApprovalStatus::Approved));
    assert_eq!(c.status(&f.b), Some(ApprovalStatus::Rejected));
    assert_eq!(
        c.record(&f.a).unwrap().decision.unwrap().reason.as_deref(),
        Some("worth it")
    );
}

#[test]
fn verify_log_checks_every_link_of_an_intact_log() {
    let f = Filed::new();
    f.decide_both();
    let out = ao(&["approvals", "--db", f.db_arg(), "verify-log"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "audit log intact: 4 entries, every link verified"
    );
}

#[test]
fn verify_log_names_the_entry_edited_behind_its_back() {
    let f = Filed::new();
    f.decide_both();
    let raw = rusqlite::Connection::open(&f.db).unwrap();
    raw.execute("UPDATE audit_log SET detail = '{}' WHERE seq = 3", [])
        .unwrap();
    let out = ao(&["approvals", "--db", f.db_arg(), "verify-log"], &[]);
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
