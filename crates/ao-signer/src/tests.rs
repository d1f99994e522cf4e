#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

use std::time::Duration;

use ao_threshold::{Commitment, KeygenConfig, KeygenSession, SigningRequest, aggregate};
use nostr::{EventBuilder, Keys, Kind, PublicKey};

use crate::wire::{Envelope, Payload, RequestId, SignBody, WireCommitment};
use crate::{NodeConfig, NodePolicy, SignerNode};

/// Unix milliseconds.
const NOW: u64 = 1_800_000_000_000;

struct Setup {
    group: ao_threshold::GroupPublic,
    nodes: Vec<SignerNode>,
    transport: Vec<PublicKey>,
    coordinator: PublicKey,
}

fn setup(policy: NodePolicy) -> Setup {
    let out = KeygenSession::new(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .complete()
    .unwrap();
    let transport: Vec<PublicKey> = (0..3).map(|_| Keys::generate().public_key()).collect();
    let coordinator = Keys::generate().public_key();
    let config = NodeConfig {
        policy,
        max_age: Duration::from_secs(30),
        coordinators: vec![coordinator],
    };
    let nodes = out
        .shares
        .into_iter()
        .map(|share| {
            let keys = transport.clone();
            SignerNode::new(out.group.clone(), share, &keys, config.clone(), None).unwrap()
        })
        .collect();
    Setup {
        group: out.group,
        nodes,
        transport,
        coordinator,
    }
}

fn raw() -> NodePolicy {
    NodePolicy {
        raw_messages: true,
        ..NodePolicy::default()
    }
}

fn envelope(setup: &Setup, request: RequestId, at: u64, body: SignBody) -> Envelope<SignBody> {
    Envelope::new(setup.group.group_pubkey(), request, at, body)
}

fn commit_request(message: [u8; 32]) -> SignBody {
    SignBody::CommitRequest {
        payload: Payload::Raw {
            message: hex::encode(message),
        },
    }
}

fn refusal(answer: Option<SignBody>) -> String {
    match answer {
        Some(SignBody::Refused { reason }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn commitment(answer: Option<SignBody>) -> WireCommitment {
    match answer {
        Some(SignBody::Commitment { index, commitment }) => WireCommitment { index, commitment },
        other => panic!("expected a commitment, got {other:?}"),
    }
}

#[test]
fn a_request_signs_once_and_a_replay_or_a_stale_request_is_refused() {
    let mut s = setup(raw());
    let boss = s.coordinator;
    let request = RequestId::random();
    let message = [5; 32];
    let ask = envelope(&s, request, NOW, commit_request(message));
    let c1 = commitment(s.nodes[0].handle(&boss, ask.clone(), NOW + 1));
    let c2 = commitment(s.nodes[1].handle(&boss, ask.clone(), NOW + 1));

    // The same request again, even in time, is a replay: it gets no answer at all.
    assert!(s.nodes[0].handle(&boss, ask.clone(), NOW + 2).is_none());

    let sign = envelope(
        &s,
        request,
        NOW + 2,
        SignBody::SignRequest {
            commitments: vec![c1.clone(), c2.clone()],
        },
    );
    let mut partials = Vec::new();
    for node in &mut s.nodes[..2] {
        match node.handle(&boss, sign.clone(), NOW + 2) {
            Some(SignBody::Partial { index, partial }) => partials.push(
                ao_threshold::PartialSignature::from_bytes(index, &hex::decode(partial).unwrap())
                    .unwrap(),
            ),
            other => panic!("expected a partial, got {other:?}"),
        }
    }
    let commitments = [c1, c2]
        .iter()
        .map(|c| Commitment::from_bytes(c.index, &hex::decode(&c.commitment).unwrap()).unwrap())
        .collect();
    let signing = SigningRequest::new(&s.group, message, commitments).unwrap();
    let signature = aggregate(&s.group, &signing, &partials).unwrap();
    assert!(s.group.verify(&message, &signature));

    // The nonces are gone: asking again to sign is refused.
    let reason = refusal(s.nodes[0].handle(&boss, sign, NOW + 3));
    assert!(reason.contains("no nonces"), "{reason}");

    // Stale, and from the future.
    let old = envelope(
        &s,
        RequestId::random(),
        NOW - 31_000,
        commit_request(message),
    );
    let reason = refusal(s.nodes[2].handle(&boss, old, NOW));
    assert!(reason.contains("stale"), "{reason}");
    let ahead = envelope(
        &s,
        RequestId::random(),
        NOW + 31_000,
        commit_request(message),
    );
    let reason = refusal(s.nodes[2].handle(&boss, ahead, NOW));
    assert!(reason.contains("ahead"), "{reason}");
}

#[test]
fn a_restarted_node_ignores_requests_made_before_it_started() {
    let mut s = setup(raw());
    let boss = s.coordinator;
    let mut node = s.nodes.remove(0).refuse_before(NOW);
    // Made a millisecond before the node started: a replay of traffic to the previous process.
    let earlier = envelope(&s, RequestId::random(), NOW - 1, commit_request([1; 32]));
    assert!(node.handle(&boss, earlier, NOW + 1).is_none());
    assert!(node.pending.is_empty());
    let fresh = envelope(&s, RequestId::random(), NOW, commit_request([1; 32]));
    commitment(node.handle(&boss, fresh, NOW + 1));
}

#[test]
fn nonces_expire_and_only_the_asking_coordinator_may_use_them() {
    let mut s = setup(raw());
    let boss = s.coordinator;
    let request = RequestId::random();
    let ask = envelope(&s, request, NOW, commit_request([1; 32]));
    let c1 = commitment(s.nodes[0].handle(&boss, ask.clone(), NOW));
    let c2 = commitment(s.nodes[1].handle(&boss, ask, NOW));
    let sign = SignBody::SignRequest {
        commitments: vec![c1, c2],
    };
    // Another trusted party (a peer) cannot spend node 1's nonces.
    let peer = s.transport[1];
    let by_peer = envelope(&s, request, NOW, sign.clone());
    let reason = refusal(s.nodes[0].handle(&peer, by_peer, NOW));
    assert!(reason.contains("only the coordinator"), "{reason}");
    // Past the maximum age, they are gone.
    let late = envelope(&s, request, NOW + 29_000, sign);
    let reason = refusal(s.nodes[0].handle(&boss, late, NOW + 31_000));
    assert!(
        reason.contains("stale") || reason.contains("no nonces"),
        "{reason}"
    );
    assert!(s.nodes[0].pending.is_empty());
}

#[test]
fn a_sign_request_without_this_nodes_commitment_spends_nothing_else() {
    let mut s = setup(raw());
    let boss = s.coordinator;
    let request = RequestId::random();
    let ask = envelope(&s, request, NOW, commit_request([1; 32]));
    let _c1 = commitment(s.nodes[0].handle(&boss, ask.clone(), NOW));
    let c2 = commitment(s.nodes[1].handle(&boss, ask.clone(), NOW));
    let c3 = commitment(s.nodes[2].handle(&boss, ask, NOW));
    let sign = envelope(
        &s,
        request,
        NOW,
        SignBody::SignRequest {
            commitments: vec![c2, c3],
        },
    );
    let reason = refusal(s.nodes[0].handle(&boss, sign, NOW));
    assert!(reason.contains("not among"), "{reason}");
}

#[test]
fn strangers_get_no_answer_and_policies_hold() {
    let mut s = setup(NodePolicy::default());
    let boss = s.coordinator;
    let stranger = Keys::generate().public_key();
    let ask = envelope(&s, RequestId::random(), NOW, commit_request([1; 32]));
    assert!(s.nodes[0].handle(&stranger, ask.clone(), NOW).is_none());
    let reason = refusal(s.nodes[0].handle(&boss, ask, NOW));
    assert!(reason.contains("raw messages"), "{reason}");

    let group_key = s.group.public_key();
    let note = EventBuilder::text_note("hi").build(group_key);
    let ask = envelope(
        &s,
        RequestId::random(),
        NOW,
        SignBody::CommitRequest {
            payload: Payload::Event { event: note },
        },
    );
    let reason = refusal(s.nodes[0].handle(&boss, ask, NOW));
    assert!(reason.contains("kind 1"), "{reason}");

    let foreign = EventBuilder::new(Kind::Custom(39200), "").build(Keys::generate().public_key());
    let ask = envelope(
        &s,
        RequestId::random(),
        NOW,
        SignBody::CommitRequest {
            payload: Payload::Event { event: foreign },
        },
    );
    let reason = refusal(s.nodes[0].handle(&boss, ask, NOW));
    assert!(reason.contains("not the group key"), "{reason}");

    let mut wrong_group = envelope(&s, RequestId::random(), NOW, commit_request([1; 32]));
    wrong_group.session = "00".repeat(32);
    let reason = refusal(s.nodes[0].handle(&boss, wrong_group, NOW));
    assert!(reason.contains("signs for the group key"), "{reason}");
}

#[test]
fn a_node_prints_neither_its_share_nor_its_nonces() {
    let mut s = setup(raw());
    let boss = s.coordinator;
    let ask = envelope(&s, RequestId::random(), NOW, commit_request([1; 32]));
    commitment(s.nodes[0].handle(&boss, ask, NOW));
    let debug = format!("{:?}", s.nodes[0]);
    assert!(
        debug.contains("SignerNode") && !debug.contains("nonces"),
        "{debug}"
    );
    assert!(debug.len() < 300, "{debug}");
}
