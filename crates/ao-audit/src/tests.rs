use proptest::prelude::*;
use serde_json::json;

use super::*;

fn chain(n: u64) -> Vec<AuditEntry> {
    let mut entries: Vec<AuditEntry> = Vec::new();
    for i in 0..n {
        let event = AuditEvent::new(100 + i, "cost.settled", "a", json!({"i": i}));
        entries.push(AuditEntry::next(entries.last(), event));
    }
    entries
}

#[test]
fn memory_log_conforms() {
    conformance::run_all(MemoryAuditLog::new);
    let log = MemoryAuditLog::new();
    log.append(AuditEvent::new(1, "k", "a", json!(1))).unwrap();
    assert_eq!(log.verify().unwrap(), Ok(1));
}

#[test]
fn editing_an_entry_is_found() {
    let mut entries = chain(5);
    entries[2].detail = json!({"i": 999}).to_string();
    assert_eq!(verify_chain(&entries).unwrap_err().seq, 3);
    assert!(
        verify_chain(&entries)
            .unwrap_err()
            .to_string()
            .contains("edited")
    );
}

#[test]
fn rehashing_an_edit_breaks_the_next_link() {
    let mut entries = chain(5);
    entries[2].kind = "cost.refunded".into();
    let e = &entries[2];
    entries[2].hash = AuditEntry::compute_hash(
        e.seq,
        e.timestamp,
        &e.kind,
        &e.agent,
        &e.detail,
        &e.prev_hash,
    );
    let broken = verify_chain(&entries).unwrap_err();
    assert_eq!(broken.seq, 4);
    assert!(broken.reason.contains("previous-hash"));
}

#[test]
fn removing_or_reordering_is_found() {
    let mut entries = chain(5);
    entries.remove(1);
    assert_eq!(verify_chain(&entries).unwrap_err().seq, 3);
    let mut entries = chain(5);
    entries.swap(1, 2);
    assert_eq!(verify_chain(&entries).unwrap_err().seq, 3);
}

#[test]
fn tampering_in_the_memory_log_is_found() {
    let log = MemoryAuditLog::new();
    for i in 0..3 {
        log.append(AuditEvent::new(i, "k", "a", json!(i))).unwrap();
    }
    let mut second = log.entries(2, 1).unwrap().remove(0);
    second.agent = "someone-else".into();
    log.tamper(2, second).unwrap();
    assert_eq!(log.verify().unwrap().unwrap_err().seq, 2);
}

#[test]
fn length_prefixes_keep_fields_apart() {
    let a = AuditEntry::compute_hash(1, 1, "ab", "c", "", GENESIS_HASH);
    let b = AuditEntry::compute_hash(1, 1, "a", "bc", "", GENESIS_HASH);
    assert_ne!(a, b);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any single-field edit anywhere in a chain is reported at that entry.
    #[test]
    fn any_edit_is_found_where_it_is(n in 1u64..20, at in any::<prop::sample::Index>(), ts in any::<u64>()) {
        let mut entries = chain(n);
        let i = at.index(entries.len());
        prop_assume!(entries[i].timestamp != ts);
        entries[i].timestamp = ts;
        prop_assert_eq!(verify_chain(&entries).unwrap_err().seq, entries[i].seq);
    }

    #[test]
    fn sound_chains_verify(n in 0u64..50) {
        prop_assert_eq!(verify_chain(&chain(n)), Ok(n));
    }
}
