use std::time::{Duration, Instant};

use nostr::{Event, JsonUtil};

use super::{GROUP, TestRelay, bip340_valid, sign_remote, signer, transport_key};
use crate::{ao, path_str, stderr, stdout};

#[test]
fn three_signer_processes_sign_then_one_killed_still_signs_and_two_killed_is_a_clear_error() {
    let relay = TestRelay::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, npub) = transport_key(dir.path(), "coordinator.key");
    let mut nodes: Vec<_> = (1..=3)
        .map(|i| signer(i, relay.url(), &[&npub], dir.path()))
        .collect();
    let pubkey = &GROUP.group_pubkey;

    let message = "ab".repeat(32);
    let out = sign_remote(relay.url(), &key, &["--message-hex", &message]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(bip340_valid(pubkey, &message, &stdout(&out)));

    // An unsigned event (the agent's profile kind) comes back signed and verifies.
    let unsigned = dir.path().join("unsigned.json");
    std::fs::write(
        &unsigned,
        format!(
            r#"{{"pubkey":"{pubkey}","created_at":1800000000,"kind":39200,"tags":[["d","agent-profile"]],"content":""}}"#
        ),
    )
    .unwrap();
    let out = sign_remote(relay.url(), &key, &["--event", path_str(&unsigned)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let event = Event::from_json(stdout(&out).trim()).unwrap();
    event.verify().unwrap();
    assert!(bip340_valid(
        pubkey,
        &event.id.to_hex(),
        &hex::encode(event.sig.as_ref())
    ));

    // The runtime's profile, signed through the nodes named in a [signing] section.
    let config = dir.path().join("ao.toml");
    std::fs::write(
        &config,
        format!(
            "[signing]\ngroup = \"{}\"\nrelays = [\"{}\"]\nkey = \"coordinator.key\"\n",
            path_str(&GROUP.group()),
            relay.url()
        ),
    )
    .unwrap();
    let out = ao(
        &[
            "profile",
            "--name",
            "oracle",
            "--model",
            "llama3",
            "--config",
            path_str(&config),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let profile = Event::from_json(stdout(&out).trim()).unwrap();
    profile.verify().unwrap();
    assert_eq!(profile.kind.as_u16(), 39200);
    assert_eq!(profile.pubkey.to_hex(), *pubkey);

    // Every node's log holds a line for each partial it gave: three signings of two each.
    let lines: usize = (1..=3)
        .map(|i| {
            std::fs::read_to_string(dir.path().join(format!("node-{i}.log")))
                .unwrap_or_default()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(lines, 6);

    // One node killed: the other two sign, without waiting for the timeout.
    nodes[1].kill();
    let started = Instant::now();
    let message = "cd".repeat(32);
    let out = sign_remote(
        relay.url(),
        &key,
        &["--message-hex", &message, "--timeout", "5"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(bip340_valid(pubkey, &message, &stdout(&out)));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // Two killed: a clear error once the timeout has passed, naming who did not answer.
    nodes[0].kill();
    let started = Instant::now();
    let out = sign_remote(
        relay.url(),
        &key,
        &["--message-hex", &message, "--timeout", "2"],
    );
    let waited = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    let err = stderr(&out);
    assert!(
        err.contains("fewer than the 2 signers needed took part")
            && err.contains("no answer within 2s from signers 1 and 2"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    drop(nodes);
}

#[test]
fn a_node_refuses_what_its_policy_does_not_allow_and_the_coordinator_says_so() {
    let relay = TestRelay::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, npub) = transport_key(dir.path(), "coordinator.key");
    let _nodes: Vec<_> = (1..=2)
        .map(|i| signer(i, relay.url(), &[&npub], dir.path()))
        .collect();
    let note = dir.path().join("note.json");
    std::fs::write(
        &note,
        format!(
            r#"{{"pubkey":"{}","created_at":1800000000,"kind":1,"tags":[],"content":"gm"}}"#,
            GROUP.group_pubkey
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = sign_remote(relay.url(), &key, &["--event", path_str(&note)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("signer 1 refused: kind 1 is not in this node's policy")
            && err.contains("signer 2 refused"),
        "{err}"
    );
    // Refusals end the wait: the missing third node is not waited for.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // A coordinator the nodes were not told to trust gets no answer at all.
    let (stranger, _) = transport_key(dir.path(), "stranger.key");
    let out = sign_remote(
        relay.url(),
        &stranger,
        &["--message-hex", &"ab".repeat(32), "--timeout", "1"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no answer within 1s"),
        "{}",
        stderr(&out)
    );
}
