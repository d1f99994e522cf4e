use std::time::{Duration, Instant};

use ao_signer::{NodeConfig, NodePolicy, SignerError};
use nostr::{EventBuilder, Keys, Kind};

use crate::{Group, bip340_valid, coordinator, raw_policy, relay, spawn_cheater, spawn_node};

fn trusting(coordinator: &Keys, mut config: NodeConfig) -> NodeConfig {
    config.coordinators.push(coordinator.public_key());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_sign_and_two_suffice() {
    let relay = relay().await;
    let mut group = Group::new();
    let boss = Keys::generate();
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let node = group.node(i, trusting(&boss, raw_policy()));
        nodes.push(spawn_node(node, group.transport[usize::from(i) - 1].clone(), &relay).await);
    }
    let coordinator = coordinator(&group, boss, &relay, Duration::from_secs(3)).await;
    for n in 0..5u8 {
        let message = [n; 32];
        let signature = coordinator.sign_message(message).await.unwrap();
        assert!(bip340_valid(&group.group, &message, &signature));
    }
    let unsigned =
        EventBuilder::new(Kind::Custom(39200), "profile").build(group.group.public_key());
    let event = coordinator.sign_event(unsigned).await.unwrap();
    event.verify().unwrap();
    assert_eq!(event.pubkey, group.group.public_key());
    assert!(bip340_valid(
        &group.group,
        event.id.as_bytes(),
        event.sig.as_ref()
    ));

    // One node down: the other two sign, at once (no timeout is waited for).
    nodes[1].abort();
    let started = Instant::now();
    let signature = coordinator.sign_message([9; 32]).await.unwrap();
    assert!(bip340_valid(&group.group, &[9; 32], &signature));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Two down: a clear error after the timeout, naming who did not answer.
    nodes[0].abort();
    let started = Instant::now();
    let err = coordinator.sign_message([10; 32]).await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    let SignerError::Shortfall(shortfall) = &err else {
        panic!("{err}");
    };
    assert_eq!(shortfall.silent, vec![1, 2]);
    let message = err.to_string();
    assert!(
        message.contains("no answer within 3s from signers 1 and 2"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_partial_names_its_signer_who_is_left_out_of_the_retry() {
    let relay = relay().await;
    let mut group = Group::new();
    let boss = Keys::generate();
    let cheater = group.node(1, trusting(&boss, raw_policy()));
    let _cheater = spawn_cheater(cheater, group.transport[0].clone(), &relay).await;
    let mut honest = Vec::new();
    for i in 2..=3 {
        let node = group.node(i, trusting(&boss, raw_policy()));
        honest.push(spawn_node(node, group.transport[usize::from(i) - 1].clone(), &relay).await);
    }
    let coordinator = coordinator(&group, boss, &relay, Duration::from_secs(2)).await;
    // Whichever two answer first, the cheater is found when it is among them and left out.
    for n in 0..4u8 {
        let signature = coordinator.sign_message([n; 32]).await.unwrap();
        assert!(bip340_valid(&group.group, &[n; 32], &signature));
    }
    // With an honest node down, the cheater is needed and named.
    honest[1].abort();
    let err = coordinator.sign_message([7; 32]).await.unwrap_err();
    let SignerError::Shortfall(shortfall) = &err else {
        panic!("{err}");
    };
    assert_eq!(shortfall.culprits, vec![1], "{err}");
    assert!(
        err.to_string()
            .contains("signer 1 sent an invalid partial signature, left out of every retry"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_refuse_what_their_policy_does_not_allow_and_say_why() {
    let relay = relay().await;
    let mut group = Group::new();
    let boss = Keys::generate();
    for i in 1..=3 {
        let node = group.node(i, trusting(&boss, NodeConfig::default()));
        spawn_node(node, group.transport[usize::from(i) - 1].clone(), &relay).await;
    }
    let coordinator = coordinator(&group, boss, &relay, Duration::from_secs(2)).await;
    let started = Instant::now();
    let err = coordinator.sign_message([1; 32]).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refusals end the wait"
    );
    assert!(
        err.to_string().contains("does not sign raw messages"),
        "{err}"
    );
    let note = EventBuilder::text_note("hello").build(group.group.public_key());
    let err = coordinator.sign_event(note).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("kind 1 is not in this node's policy"),
        "{err}"
    );
    let profile = EventBuilder::new(Kind::Custom(39200), "").build(group.group.public_key());
    coordinator
        .sign_event(profile)
        .await
        .unwrap()
        .verify()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_the_nodes_do_not_trust_gets_nothing() {
    let relay = relay().await;
    let mut group = Group::new();
    for i in 1..=3 {
        let node = group.node(i, raw_policy());
        spawn_node(node, group.transport[usize::from(i) - 1].clone(), &relay).await;
    }
    let stranger = coordinator(&group, Keys::generate(), &relay, Duration::from_secs(1)).await;
    let err = stranger.sign_message([1; 32]).await.unwrap_err();
    let SignerError::Shortfall(shortfall) = &err else {
        panic!("{err}");
    };
    assert_eq!(shortfall.silent, vec![1, 2, 3]);
    // A node of the group may coordinate, under its own transport key.
    let peer = coordinator(
        &group,
        group.transport[0].clone(),
        &relay,
        Duration::from_secs(2),
    )
    .await;
    let signature = peer.sign_message([2; 32]).await.unwrap();
    assert!(bip340_valid(&group.group, &[2; 32], &signature));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_refuses_past_its_count() {
    let relay = relay().await;
    let mut group = Group::new();
    let boss = Keys::generate();
    let limited = NodeConfig {
        policy: NodePolicy {
            raw_messages: true,
            per_minute: 2,
            ..NodePolicy::default()
        },
        ..NodeConfig::default()
    };
    for i in 1..=3 {
        let node = group.node(i, trusting(&boss, limited.clone()));
        spawn_node(node, group.transport[usize::from(i) - 1].clone(), &relay).await;
    }
    let coordinator = coordinator(&group, boss, &relay, Duration::from_secs(2)).await;
    coordinator.sign_message([1; 32]).await.unwrap();
    coordinator.sign_message([2; 32]).await.unwrap();
    let err = coordinator.sign_message([3; 32]).await.unwrap_err();
    assert!(err.to_string().contains("rate limit"), "{err}");
}
