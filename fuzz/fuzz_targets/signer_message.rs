//! A signer node's messages, as it reads them once decrypted (`ao signer`): any bytes as an
//! envelope, handed to a node as if from a coordinator it trusts. Never a panic, and never a
//! partial signature: the fuzzer never sees the node's commitments, so no sign request it makes
//! can carry one.
#![no_main]

use std::sync::{LazyLock, Mutex};

use ao_signer::wire::{CeremonyBody, Envelope, SignBody};
use ao_signer::{NodeConfig, NodePolicy, SignerNode};
use ao_threshold::{KeygenConfig, split_secret_key};
use libfuzzer_sys::fuzz_target;
use nostr::{Keys, PublicKey};

/// The group key of the secret 0x01..01, which the seeds name as their session:
/// 1b84c5567b126440995d3ed5aaba0565d71e1834604819ff9c17f5e9d5dd078f.
const SECRET: &str = "0101010101010101010101010101010101010101010101010101010101010101";

/// The coordinator's key: the secret 0x02..02.
const COORDINATOR: &str = "0202020202020202020202020202020202020202020202020202020202020202";

static NODE: LazyLock<Mutex<(SignerNode, PublicKey)>> = LazyLock::new(|| {
    let config = KeygenConfig {
        threshold: 2,
        total: 3,
    };
    let (group, mut shares) = split_secret_key(SECRET, config).unwrap();
    let coordinator = Keys::parse(COORDINATOR).unwrap().public_key();
    let transport: Vec<PublicKey> = (0..3).map(|_| Keys::generate().public_key()).collect();
    let node_config = NodeConfig {
        policy: NodePolicy {
            raw_messages: true,
            per_minute: u32::MAX,
            ..NodePolicy::default()
        },
        coordinators: vec![coordinator],
        ..NodeConfig::default()
    };
    let node = SignerNode::new(group, shares.remove(0), &transport, node_config, None).unwrap();
    Mutex::new((node, coordinator))
});

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<Envelope<CeremonyBody>>(data);
    let Ok(envelope) = serde_json::from_slice::<Envelope<SignBody>>(data) else {
        return;
    };
    // The node's clock reads the envelope's own time, so that freshness lets it through.
    let now = envelope.created_ms;
    let mut guard = NODE.lock().unwrap();
    let (node, coordinator) = &mut *guard;
    let coordinator = *coordinator;
    let answer = node.handle(&coordinator, envelope, now);
    assert!(
        !matches!(answer, Some(SignBody::Partial { .. })),
        "{answer:?}"
    );
});
