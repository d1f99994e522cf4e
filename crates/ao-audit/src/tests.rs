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

const APP: u32 = 0x414F_5331;

fn signed_checkpoint(keys: &nostr::Keys, chain: &[AuditEntry]) -> Checkpoint {
    let head = ChainHead::of(chain.last().unwrap());
    let event = sign_checkpoint(keys, &head, APP, "prod", 1_800_000_000).unwrap();
    parse_checkpoint_json(&nostr::JsonUtil::as_json(&event)).unwrap()
}

#[test]
fn a_signed_checkpoint_reads_back_what_was_signed() {
    let keys = nostr::Keys::generate();
    let entries = chain(4);
    let checkpoint = signed_checkpoint(&keys, &entries);
    assert_eq!(checkpoint.head, ChainHead::of(&entries[3]));
    assert_eq!(checkpoint.signer, keys.public_key());
    assert_eq!(checkpoint.label, "prod");
    assert_eq!(checkpoint.application_id, APP);
    assert_eq!(checkpoint.event.kind.as_u16(), CHECKPOINT_KIND);
    assert_eq!(checkpoint.check_chain(APP, &entries), Ok(()));
    // Entries appended after the checkpoint do not change what it signed.
    let mut longer = entries.clone();
    longer.push(AuditEntry::next(
        longer.last(),
        AuditEvent::new(1, "k", "a", json!(1)),
    ));
    assert_eq!(checkpoint.check_chain(APP, &longer), Ok(()));
    assert!(matches!(
        checkpoint.check_chain(APP + 1, &entries),
        Err(CheckpointMismatch::OtherApplication { .. })
    ));
}

#[test]
fn a_checkpoint_catches_entries_cut_from_the_end_and_rewritten_before_it() {
    let keys = nostr::Keys::generate();
    let entries = chain(5);
    let checkpoint = signed_checkpoint(&keys, &entries);
    // Cut: a shorter chain is still a sound chain, but not the one signed.
    let cut = &entries[..3];
    assert_eq!(verify_chain(cut), Ok(3));
    assert_eq!(
        checkpoint.check_chain(APP, cut),
        Err(CheckpointMismatch::Cut { seq: 5, len: 3 })
    );
    // Rewritten from entry 2 on, every hash recomputed: a sound chain again, with another head.
    let mut rewritten: Vec<AuditEntry> = entries[..1].to_vec();
    for e in &entries[1..] {
        let mut event = AuditEvent::new(e.timestamp, e.kind.clone(), e.agent.clone(), json!({}));
        if e.seq != 2 {
            event.detail = e.detail.clone();
        }
        rewritten.push(AuditEntry::next(rewritten.last(), event));
    }
    assert_eq!(verify_chain(&rewritten), Ok(5));
    let err = checkpoint.check_chain(APP, &rewritten).unwrap_err();
    assert!(
        matches!(err, CheckpointMismatch::Rewritten { seq: 5, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("rewritten at or before entry 5"));
}

#[test]
fn an_altered_or_foreign_checkpoint_event_is_refused() {
    let keys = nostr::Keys::generate();
    let head = ChainHead::of(chain(3).last().unwrap());
    let event = sign_checkpoint(&keys, &head, APP, "prod", 1_800_000_000).unwrap();
    let json = nostr::JsonUtil::as_json(&event);
    let forged = json.replace("\"3\"", "\"2\"");
    assert_ne!(forged, json);
    assert!(matches!(
        parse_checkpoint_json(&forged),
        Err(CheckpointError::BadSignature { .. })
    ));
    assert_eq!(
        parse_checkpoint_json("not json"),
        Err(CheckpointError::NotAnEvent)
    );
    let other = nostr::EventBuilder::text_note("hello")
        .sign_with_keys(&keys)
        .unwrap();
    assert_eq!(
        parse_checkpoint(&other),
        Err(CheckpointError::WrongKind { found: 1 })
    );
    let empty = ChainHead {
        seq: 0,
        hash: GENESIS_HASH.into(),
    };
    assert_eq!(
        sign_checkpoint(&keys, &empty, APP, "prod", 1),
        Err(CheckpointError::EmptyLog)
    );
}

#[test]
fn an_agent_checkpoint_signed_elsewhere_reads_back_and_other_kinds_are_refused() {
    let keys = nostr::Keys::generate();
    let head = ChainHead::of(chain(3).last().unwrap());
    let unsigned = unsigned_checkpoint(
        keys.public_key(),
        AGENT_CHECKPOINT_KIND,
        &head,
        APP,
        "prod",
        1_800_000_000,
    )
    .unwrap();
    let event = unsigned.sign_with_keys(&keys).unwrap();
    let checkpoint = parse_checkpoint(&event).unwrap();
    assert_eq!(checkpoint.event.kind.as_u16(), AGENT_CHECKPOINT_KIND);
    assert_eq!(checkpoint.head, head);
    assert_eq!(checkpoint.label, "prod");
    assert_eq!(checkpoint.signer, keys.public_key());
    assert_eq!(checkpoint.check_chain(APP, &chain(3)), Ok(()));
    // The operator's kind from the same builder reads back as an operator's checkpoint.
    let operator = sign_checkpoint(&keys, &head, APP, "prod", 1_800_000_000).unwrap();
    assert_eq!(parse_checkpoint(&operator).unwrap().head, head);
    assert_eq!(operator.kind.as_u16(), CHECKPOINT_KIND);
    assert_eq!(
        unsigned_checkpoint(keys.public_key(), 1, &head, APP, "prod", 1),
        Err(CheckpointError::WrongKind { found: 1 })
    );
}
