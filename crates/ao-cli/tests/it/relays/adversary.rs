use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_orchestrator::signer::wire::{Envelope, SIGNING_KIND, SignBody};
use agent_orchestrator::signer::{NodeConfig, NodePolicy, Relays, SignerNode};
use agent_orchestrator::threshold::{GroupFile, ShareFile};
use nostr::{Event, Filter, PublicKey, Timestamp};
use nostr_relay_pool::{RelayOptions, RelayPool, RelayPoolNotification, SubscribeOptions};

use super::{GROUP, PASSES, TestRelay, bip340_valid, sign_remote, signer, transport_key};
use crate::{stderr, stdout};

fn group_file() -> GroupFile {
    GroupFile::from_json(&std::fs::read_to_string(GROUP.group()).unwrap()).unwrap()
}

/// Share 1 as a node in this process that follows the protocol but corrupts every partial
/// signature it sends.
fn spawn_cheater(relay: &TestRelay, coordinator: PublicKey) {
    let file = group_file();
    let share_file =
        ShareFile::from_json(&std::fs::read_to_string(GROUP.share(1)).unwrap()).unwrap();
    let (share, keys) = share_file.open_with_transport(PASSES[0].1).unwrap();
    let config = NodeConfig {
        policy: NodePolicy {
            raw_messages: true,
            ..NodePolicy::default()
        },
        coordinators: vec![coordinator],
        ..NodeConfig::default()
    };
    let transport = file.transport_keys().unwrap().unwrap();
    let mut node =
        SignerNode::new(file.to_group().unwrap(), share, &transport, config, None).unwrap();
    let url = relay.url().to_owned();
    let relays = relay
        .runtime
        .block_on(Relays::connect(
            keys.unwrap(),
            &[url],
            Duration::from_secs(5),
        ))
        .unwrap();
    let mut incoming = relay
        .runtime
        .block_on(relays.subscribe(&[SIGNING_KIND]))
        .unwrap();
    relay.runtime.spawn(async move {
        while let Some(event) = incoming.next().await {
            let envelope: Envelope<SignBody> = relays.channel().open(SIGNING_KIND, &event).unwrap();
            let (session, request) = (envelope.session.clone(), envelope.request);
            let now = agent_orchestrator::signer::wire::now_ms();
            let reply = match node.handle(&event.pubkey, envelope, now) {
                Some(SignBody::Partial { index, partial }) => {
                    let mut bytes = hex::decode(partial).unwrap();
                    bytes[0] ^= 0x40;
                    SignBody::Partial {
                        index,
                        partial: hex::encode(bytes),
                    }
                }
                Some(other) => other,
                None => continue,
            };
            let reply = Envelope::new(session, request, now, reply);
            let sealed = relays
                .channel()
                .seal(SIGNING_KIND, &event.pubkey, &reply)
                .unwrap();
            relays.send(&sealed).await.unwrap();
        }
    });
}

#[test]
fn a_tampered_partial_is_left_out_and_its_signer_named() {
    let relay = TestRelay::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, npub) = transport_key(dir.path(), "coordinator.key");
    let coordinator = agent_orchestrator::identity::parse_public_key(&npub).unwrap();
    spawn_cheater(&relay, coordinator);
    let mut honest: Vec<_> = (2..=3)
        .map(|i| signer(i, relay.url(), &[&npub], dir.path()))
        .collect();
    // With both honest nodes up, every signing succeeds: when the cheater is among the first
    // two, its partial is caught, and the retry leaves it out.
    let mut caught = 0;
    for n in 0..4u8 {
        let message = hex::encode([n; 32]);
        let out = sign_remote(relay.url(), &key, &["--message-hex", &message]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(bip340_valid(&GROUP.group_pubkey, &message, &stdout(&out)));
        if stderr(&out).contains("signer 1 sent an invalid partial signature; leaving it out") {
            caught += 1;
        }
    }
    // With an honest node down, the cheater is needed: the signing fails and names it.
    honest[1].kill();
    let out = sign_remote(
        relay.url(),
        &key,
        &["--message-hex", &"ee".repeat(32), "--timeout", "2"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("signer 1 sent an invalid partial signature, left out of every retry")
            && err.contains("no answer within 2s from signer 3"),
        "{err}"
    );
    eprintln!("the cheater was caught in {caught} of 4 signings it took part in first");
}

/// Every kind-29200 event on the relay, as a passive observer sees it.
fn observe(relay: &TestRelay) -> (RelayPool, Arc<Mutex<Vec<Event>>>) {
    let pool = RelayPool::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    relay.runtime.block_on(async {
        pool.add_relay(relay.url(), RelayOptions::default())
            .await
            .unwrap();
        pool.connect().await;
        pool.wait_for_connection(Duration::from_secs(5)).await;
        let mut notifications = pool.notifications();
        pool.subscribe(
            Filter::new().kind(SIGNING_KIND).since(Timestamp::now()),
            SubscribeOptions::default(),
        )
        .await
        .unwrap();
        tokio::spawn(async move {
            while let Ok(n) = notifications.recv().await {
                if let RelayPoolNotification::Event { event, .. } = n {
                    sink.lock().unwrap().push(*event);
                }
            }
        });
    });
    (pool, seen)
}

#[test]
fn replayed_requests_are_refused_by_live_and_restarted_nodes() {
    let relay = TestRelay::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, npub) = transport_key(dir.path(), "coordinator.key");
    let coordinator = agent_orchestrator::identity::parse_public_key(&npub).unwrap();
    let nodes_keys = group_file().transport_keys().unwrap().unwrap();
    let mut nodes: Vec<_> = (1..=3)
        .map(|i| signer(i, relay.url(), &[&npub], dir.path()))
        .collect();
    let (pool, seen) = observe(&relay);
    let message = "ab".repeat(32);
    let out = sign_remote(relay.url(), &key, &["--message-hex", &message]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(500));
    let from_nodes = |seen: &Arc<Mutex<Vec<Event>>>| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|e| nodes_keys.contains(&e.pubkey))
            .count()
    };
    let requests: Vec<Event> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.pubkey == coordinator)
        .cloned()
        .collect();
    // Three commit requests, then two sign requests; three commitments and two partials back.
    assert_eq!(requests.len(), 5);
    let answers = from_nodes(&seen);
    assert_eq!(answers, 5);

    // Node 1 restarts: its replay cache and nonces are gone with the old process.
    nodes[0].kill();
    nodes[0] = signer(1, relay.url(), &[&npub], dir.path());
    // Whoever captured the coordinator's messages sends them again, exactly as they were.
    relay.runtime.block_on(async {
        for event in &requests {
            pool.send_event(event).await.unwrap();
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(from_nodes(&seen), answers, "a node answered a replay");
    for i in 1..=3 {
        let log =
            std::fs::read_to_string(dir.path().join(format!("node-{i}.log"))).unwrap_or_default();
        assert!(log.lines().count() <= 1, "node {i} signed twice: {log}");
    }
    // The nodes still sign fresh requests.
    let out = sign_remote(relay.url(), &key, &["--message-hex", &"cd".repeat(32)]);
    assert!(out.status.success(), "{}", stderr(&out));
}
