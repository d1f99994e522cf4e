use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ao_signer::{Bunker, BunkerConfig, EventSigner, NodeConfig, NodePolicy};
use nostr::signer::NostrSigner;
use nostr::{EventBuilder, Keys, Kind, Timestamp};
use nostr_connect::client::NostrConnect;

use crate::{Group, bip340_valid, connect, coordinator, relay, spawn_node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nip46_client_gets_events_signed_by_the_nodes() {
    let relay = relay().await;
    let mut group = Group::new();
    let bunker_keys = Keys::generate();
    let node_config = NodeConfig {
        policy: NodePolicy {
            kinds: [1, 39200].into_iter().collect(),
            ..NodePolicy::default()
        },
        coordinators: vec![bunker_keys.public_key()],
        ..NodeConfig::default()
    };
    for i in 1..=3 {
        let node = group.node(i, node_config.clone());
        spawn_node(node, group.transport[usize::from(i) - 1].clone(), &relay).await;
    }
    let signer: Arc<dyn EventSigner> =
        Arc::new(coordinator(&group, bunker_keys.clone(), &relay, Duration::from_secs(3)).await);
    let trusted_app = Keys::generate();
    let config = BunkerConfig {
        secret: "open sesame".into(),
        default_kinds: BTreeSet::from([39200]),
        clients: HashMap::from([(trusted_app.public_key(), BTreeSet::from([1, 39200]))]),
        max_age: Duration::from_secs(60),
    };
    let bunker = Bunker::new(connect(bunker_keys, &relay).await, signer, config);
    let uri = bunker.uri();
    assert!(uri.to_string().starts_with("bunker://"));
    assert!(format!("{bunker:?}").contains("<redacted>"));
    tokio::spawn(bunker.serve());

    // rust-nostr's own NIP-46 client, as any application would use it.
    let client =
        NostrConnect::new(uri.clone(), Keys::generate(), Duration::from_secs(10), None).unwrap();
    let user = client.get_public_key().await.unwrap();
    assert_eq!(user, group.group.public_key());
    let unsigned = EventBuilder::new(Kind::Custom(39200), "agent profile")
        .custom_created_at(Timestamp::now())
        .build(user);
    let event = client.sign_event(unsigned).await.unwrap();
    event.verify().unwrap();
    assert_eq!(event.pubkey, group.group.public_key());
    assert!(bip340_valid(
        &group.group,
        event.id.as_bytes(),
        event.sig.as_ref()
    ));

    // A kind outside this client's policy is refused; another client may have it.
    let note = EventBuilder::text_note("gm").build(user);
    let err = client.sign_event(note.clone()).await.unwrap_err();
    assert!(err.to_string().contains("kind 1 is not allowed"), "{err}");
    let trusted =
        NostrConnect::new(uri.clone(), trusted_app, Duration::from_secs(10), None).unwrap();
    let signed = trusted.sign_event(note).await.unwrap();
    signed.verify().unwrap();

    // The wrong secret connects nobody.
    let nostr::nips::nip46::NostrConnectURI::Bunker {
        remote_signer_public_key,
        relays,
        ..
    } = uri
    else {
        panic!("not a bunker URI");
    };
    let wrong = nostr::nips::nip46::NostrConnectURI::Bunker {
        remote_signer_public_key,
        relays,
        secret: Some("guess".into()),
    };
    let intruder =
        NostrConnect::new(wrong, Keys::generate(), Duration::from_secs(5), None).unwrap();
    let err = intruder.get_public_key().await.unwrap_err();
    assert!(err.to_string().contains("secret"), "{err}");
}
