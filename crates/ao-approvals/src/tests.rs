use nostr::Keys;

use super::*;

#[test]
fn decision_events_round_trip() {
    let keys = Keys::generate();
    let event =
        build_decision_event(&keys, "abc", Verdict::Reject, Some("too much"), 1_000).unwrap();
    assert_eq!(event.kind.as_u16(), DECISION_KIND);
    let parsed = parse_decision_event(&event).unwrap();
    assert_eq!(
        parsed,
        ParsedDecision {
            request_id: "abc".into(),
            verdict: Verdict::Reject,
            reason: Some("too much".into()),
        }
    );
    let approved = build_decision_event(&keys, "abc", Verdict::Approve, None, 1_000).unwrap();
    assert_eq!(parse_decision_event(&approved).unwrap().reason, None);
}

#[test]
fn a_decision_with_a_missing_or_odd_tag_is_refused() {
    use nostr::{EventBuilder, Kind, Tag, TagKind};
    let keys = Keys::generate();
    let build = |tags: Vec<Tag>| {
        EventBuilder::new(Kind::Custom(DECISION_KIND), "")
            .tags(tags)
            .sign_with_keys(&keys)
            .unwrap()
    };
    let decision = |v: &str| Tag::custom(TagKind::custom("decision"), [v]);
    let err = parse_decision_event(&build(vec![decision("approved")])).unwrap_err();
    assert!(matches!(err, ApprovalError::MissingTag { tag: "d" }));
    let err = parse_decision_event(&build(vec![Tag::identifier("x")])).unwrap_err();
    assert!(matches!(err, ApprovalError::MissingTag { tag: "decision" }));
    let err =
        parse_decision_event(&build(vec![Tag::identifier("x"), decision("maybe")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the decision event says `maybe`; expected `approved` or `denied`"
    );
    let two = build(vec![
        Tag::identifier("x"),
        Tag::identifier("y"),
        decision("approved"),
    ]);
    assert!(matches!(
        parse_decision_event(&two),
        Err(ApprovalError::MissingTag { tag: "d" })
    ));
}

#[test]
fn a_signed_vote_for_another_request_is_refused_by_the_record() {
    let keys = Keys::generate();
    let mut record = ApprovalRecord {
        request: PendingApproval {
            request_id: "mine".into(),
            action_type: "a".into(),
            description: "d".into(),
            cost_estimate_sats: 1,
            created_at: 100,
        },
        agent: "agent".into(),
        expires_at: 10_000,
        policy: ApprovalPolicy {
            approvers: vec![keys.public_key().to_hex()],
            required: 1,
            allow_unsigned: false,
            max_event_age_secs: 3_600,
        },
        votes: vec![],
        decision: None,
        used_at: None,
        request_hash: None,
        version: 1,
    };
    let event = build_decision_event(&keys, "theirs", Verdict::Approve, None, 100).unwrap();
    let before = record.clone();
    assert!(matches!(
        record.apply_signed(&event, None, 100),
        Err(ApprovalError::WrongRequest { .. })
    ));
    assert_eq!(record, before);
}

#[test]
fn status_words() {
    assert_eq!(
        [
            ApprovalStatus::Pending,
            ApprovalStatus::Approved,
            ApprovalStatus::Rejected,
            ApprovalStatus::Expired
        ]
        .map(|s| s.to_string()),
        ["pending", "approved", "rejected", "expired"]
    );
}

#[test]
fn memory_store_conforms() {
    conformance::run_all(MemoryApprovalStore::new);
}

#[test]
fn a_vote_is_stored_as_it_was_before_verdicts_had_a_type() {
    let vote = Vote {
        pubkey: "ab".into(),
        verdict: Verdict::Reject,
        event_id: "cd".into(),
        signed_at: 5,
        reason: None,
        event: None,
    };
    let json = serde_json::to_value(&vote).unwrap();
    assert_eq!(json["approved"], false);
    let stored = r#"{"pubkey":"ab","approved":true,"event_id":"cd","signed_at":5,"reason":null}"#;
    let read: Vote = serde_json::from_str(stored).unwrap();
    assert_eq!(read.verdict, Verdict::Approve);
}
