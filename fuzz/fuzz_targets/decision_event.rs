//! A kind-39213 decision event, as `/admin/approvals/signed` and the re-verification of stored
//! votes read it: parsed and checked, never a panic, and never an approval without a signature.
#![no_main]

use ao_approvals::{
    ApprovalPolicy, ApprovalRecord, ApprovalStatus, Decision, PendingApproval, Verdict, Vote,
    parse_decision_event,
};
use libfuzzer_sys::fuzz_target;
use nostr::{Event, JsonUtil};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(event) = Event::from_json(text) {
        let _ = parse_decision_event(&event);
    }
    // A stored vote carrying whatever the fuzzer wrote never makes an approval count.
    let record = ApprovalRecord {
        request: PendingApproval {
            request_id: "r".into(),
            action_type: "a".into(),
            description: "d".into(),
            cost_estimate_sats: 1,
            created_at: 0,
        },
        agent: "agent".into(),
        expires_at: u64::MAX,
        policy: ApprovalPolicy {
            approvers: vec!["00".repeat(32)],
            required: 1,
            allow_unsigned: false,
            max_event_age_secs: 60,
        },
        votes: vec![Vote {
            pubkey: "00".repeat(32),
            verdict: Verdict::Approve,
            event_id: "00".repeat(32),
            signed_at: 0,
            reason: None,
            event: Some(text.to_owned()),
        }],
        decision: Some(Decision {
            status: ApprovalStatus::Approved,
            decided_by: vec!["00".repeat(32)],
            decided_at: 0,
            reason: None,
        }),
        used_at: None,
        request_hash: None,
        version: 1,
    };
    let checked = record.reverified(&record.policy);
    assert_ne!(checked.status_at(0), ApprovalStatus::Approved);
});
