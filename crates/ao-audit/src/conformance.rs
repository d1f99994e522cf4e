//! The conformance suite every [`AuditLog`] runs: call [`run_all`] with a function that makes a
//! fresh, empty log.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a conformance failure is a panic, by design"
)]

use std::sync::Arc;

use serde_json::json;

use crate::{AuditEvent, AuditLog, GENESIS_HASH, verify_chain};

/// Runs every check against fresh logs made by `fresh`.
pub fn run_all<L, F>(fresh: F)
where
    L: AuditLog + 'static,
    F: Fn() -> L,
{
    appends_link_into_a_chain(fresh());
    entries_page_by_sequence(fresh());
    concurrent_appends_stay_one_chain(fresh());
}

/// Appended entries come back linked, in order, with their detail intact.
pub fn appends_link_into_a_chain(log: impl AuditLog) {
    assert_eq!(
        log.verify().unwrap(),
        Ok(0),
        "an empty log is a sound chain of 0"
    );
    let first = log
        .append(AuditEvent::new(
            10,
            "approval.requested",
            "a",
            json!({"cost": 5000, "note": "ünïcode \"quoted\""}),
        ))
        .unwrap();
    assert_eq!(first.seq, 1);
    assert_eq!(first.prev_hash, GENESIS_HASH);
    let second = log
        .append(AuditEvent::new(11, "approval.approved", "a", json!(null)))
        .unwrap();
    assert_eq!(second.prev_hash, first.hash);
    let all = log.entries(1, usize::MAX).unwrap();
    assert_eq!(
        all,
        [first.clone(), second],
        "entries come back exactly as appended"
    );
    assert_eq!(all[0].detail_json().unwrap()["note"], "ünïcode \"quoted\"");
    assert_eq!(log.verify().unwrap(), Ok(2));
    assert_eq!(verify_chain(&all), Ok(2));
}

/// `entries(from, limit)` pages by sequence number.
pub fn entries_page_by_sequence(log: impl AuditLog) {
    for i in 0..10 {
        log.append(AuditEvent::new(i, "k", "a", json!(i))).unwrap();
    }
    let page: Vec<u64> = log.entries(4, 3).unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(page, [4, 5, 6]);
    assert!(log.entries(11, 5).unwrap().is_empty());
    assert_eq!(log.entries(0, usize::MAX).unwrap().len(), 10);
}

/// Appends from many threads form one chain with no gap and no fork.
pub fn concurrent_appends_stay_one_chain<L: AuditLog + 'static>(log: L) {
    let log = Arc::new(log);
    std::thread::scope(|scope| {
        for t in 0..4 {
            let log = &log;
            scope.spawn(move || {
                for i in 0..25 {
                    log.append(AuditEvent::new(i, "k", format!("t{t}"), json!(i)))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(log.verify().unwrap(), Ok(100));
}
