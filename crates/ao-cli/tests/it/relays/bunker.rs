use std::time::Duration;

use nostr::nips::nip46::NostrConnectURI;
use nostr::signer::NostrSigner;
use nostr::{EventBuilder, Keys, Kind, Timestamp};
use nostr_connect::client::NostrConnect;

use super::{GROUP, Process, TestRelay, bip340_valid, signer, transport_key};
use crate::path_str;

#[test]
fn the_bunker_serves_rust_nostrs_nip46_client_with_events_the_nodes_sign() {
    let relay = TestRelay::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, npub) = transport_key(dir.path(), "bunker.key");
    let _nodes: Vec<_> = (1..=3)
        .map(|i| signer(i, relay.url(), &[&npub], dir.path()))
        .collect();
    let group = GROUP.group();
    let bunker = Process::start(
        &[
            "bunker",
            "--group",
            path_str(&group),
            "--relay",
            relay.url(),
            "--key",
            path_str(&key),
        ],
        &[("AO_BUNKER_SECRET", "let me in")],
        "bunker ready",
    );
    let uri = NostrConnectURI::parse(format!(
        "bunker://{}?relay={}&secret=let%20me%20in",
        agent_orchestrator::identity::parse_public_key(&npub)
            .unwrap()
            .to_hex(),
        relay.url()
    ))
    .unwrap();
    relay.runtime.block_on(async {
        let client =
            NostrConnect::new(uri, Keys::generate(), Duration::from_secs(10), None).unwrap();
        let user = client.get_public_key().await.unwrap();
        assert_eq!(user.to_hex(), GROUP.group_pubkey);
        let unsigned = EventBuilder::new(Kind::Custom(39201), "agent state")
            .custom_created_at(Timestamp::now())
            .build(user);
        let event = client.sign_event(unsigned).await.unwrap();
        event.verify().unwrap();
        assert!(bip340_valid(
            &GROUP.group_pubkey,
            &event.id.to_hex(),
            &hex::encode(event.sig.as_ref())
        ));
        // Outside the NIP-SA kinds, refused.
        let note = EventBuilder::text_note("gm").build(user);
        let err = client.sign_event(note).await.unwrap_err();
        assert!(err.to_string().contains("kind 1 is not allowed"), "{err}");
        client.shutdown().await;
    });
    assert!(
        bunker.stderr().contains("signed event"),
        "{}",
        bunker.stderr()
    );
}
