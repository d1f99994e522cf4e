//! Signer nodes, coordinators, ceremonies and the bunker over a relay running in this process.
//! Every signature is checked by libsecp256k1 and, for events, by nostr's `Event::verify`.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]
#![allow(missing_docs, reason = "test code")]

mod bunker;
mod ceremony;
mod relay;
mod signing;

use std::net::SocketAddr;
use std::time::Duration;

use ao_signer::wire::{Envelope, SIGNING_KIND, SignBody};
use ao_signer::{
    Coordinator, CoordinatorConfig, NodeConfig, NodePolicy, Relay, Relays, SignerNode,
};
use ao_threshold::{GroupPublic, KeygenConfig, KeygenSession, SignerShare};
use nostr::secp256k1::{Message, Secp256k1, XOnlyPublicKey, schnorr};
use nostr::{Keys, PublicKey};
use tokio::task::JoinHandle;

/// Checks `signature` with libsecp256k1 directly.
pub(crate) fn bip340_valid(group: &GroupPublic, message: &[u8; 32], signature: &[u8; 64]) -> bool {
    let secp = Secp256k1::verification_only();
    let key = XOnlyPublicKey::from_slice(&group.public_key().to_bytes()).unwrap();
    let sig = schnorr::Signature::from_slice(signature).unwrap();
    secp.verify_schnorr(&sig, &Message::from_digest(*message), &key)
        .is_ok()
}

pub(crate) async fn relay() -> Relay {
    Relay::start(SocketAddr::from(([127, 0, 0, 1], 0)), 100_000)
        .await
        .unwrap()
}

/// A 2-of-3 group made by distributed key generation, with a transport key per signer.
pub(crate) struct Group {
    pub(crate) group: GroupPublic,
    pub(crate) shares: Vec<SignerShare>,
    pub(crate) transport: Vec<Keys>,
}

impl Group {
    pub(crate) fn new() -> Self {
        let out = KeygenSession::new(KeygenConfig {
            threshold: 2,
            total: 3,
        })
        .complete()
        .unwrap();
        Self {
            group: out.group,
            shares: out.shares,
            transport: (0..3).map(|_| Keys::generate()).collect(),
        }
    }

    pub(crate) fn transport_keys(&self) -> Vec<PublicKey> {
        self.transport.iter().map(Keys::public_key).collect()
    }

    /// Takes share `index` out (it leaves the group's list of shares in place: a placeholder is
    /// not needed since each test takes each share once).
    pub(crate) fn node(&mut self, index: u16, config: NodeConfig) -> SignerNode {
        let position = self.shares.iter().position(|s| s.index() == index).unwrap();
        let share = self.shares.remove(position);
        SignerNode::new(
            self.group.clone(),
            share,
            &self.transport_keys(),
            config,
            None,
        )
        .unwrap()
    }
}

pub(crate) fn raw_policy() -> NodeConfig {
    NodeConfig {
        policy: NodePolicy {
            raw_messages: true,
            per_minute: 10_000,
            ..NodePolicy::default()
        },
        coordinators: Vec::new(),
        ..NodeConfig::default()
    }
}

pub(crate) async fn connect(keys: Keys, relay: &Relay) -> Relays {
    Relays::connect(keys, &[relay.url().to_owned()], Duration::from_secs(5))
        .await
        .unwrap()
}

/// Runs `node` on `relay` under `keys`.
pub(crate) async fn spawn_node(node: SignerNode, keys: Keys, relay: &Relay) -> JoinHandle<()> {
    let relays = connect(keys, relay).await;
    tokio::spawn(async move {
        node.run(relays).await.unwrap();
    })
}

/// A coordinator holding no share, under a key the nodes were told to trust.
pub(crate) async fn coordinator(
    group: &Group,
    keys: Keys,
    relay: &Relay,
    timeout: Duration,
) -> Coordinator {
    let relays = connect(keys, relay).await;
    Coordinator::start(
        group.group.clone(),
        group.transport_keys(),
        relays,
        CoordinatorConfig { timeout },
        None,
    )
    .await
    .unwrap()
}

/// A node that follows the protocol but corrupts every partial signature it sends.
pub(crate) async fn spawn_cheater(
    mut node: SignerNode,
    keys: Keys,
    relay: &Relay,
) -> JoinHandle<()> {
    let relays = connect(keys, relay).await;
    let mut incoming = relays.subscribe(&[SIGNING_KIND]).await.unwrap();
    tokio::spawn(async move {
        while let Some(event) = incoming.next().await {
            let envelope: Envelope<SignBody> = relays.channel().open(SIGNING_KIND, &event).unwrap();
            let (session, request) = (envelope.session.clone(), envelope.request);
            let now = ao_signer::wire::now_ms();
            let reply = match node.handle(&event.pubkey, envelope, now) {
                Some(SignBody::Partial { index, partial }) => {
                    let mut bytes = hex::decode(partial).unwrap();
                    bytes[31] ^= 1;
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
    })
}
