//! A NIP-46 remote signer ("bunker") for the threshold identity: any NIP-46 client connects with
//! the bunker's secret and has events signed by the signer nodes.
//!
//! Requests are kind-24133 events encrypted with NIP-44 to the bunker's key, which is its own
//! (the `remote-signer-pubkey` of NIP-46); the events it signs are signed by the group key (the
//! `user-pubkey`). It answers `connect` (with the secret: the client is then connected),
//! `get_public_key`, `sign_event` (for a connected client, of a kind its policy allows) and
//! `ping`. Encryption requests (`nip04_*`, `nip44_*`) are refused: they need the whole secret
//! key, which a threshold identity never has in one place.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ao_types::Report;
use nostr::nips::nip44;
use nostr::nips::nip46::{
    NostrConnectMessage, NostrConnectRequest, NostrConnectResponse, NostrConnectURI, ResponseResult,
};
use nostr::{Event, EventBuilder, JsonUtil, Kind, PublicKey, RelayUrl, Timestamp};

use crate::error::SignerError;
use crate::signer::EventSigner;
use crate::transport::Relays;

/// Who may use the bunker, and for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BunkerConfig {
    /// The secret a client gives with `connect`.
    pub secret: String,
    /// The kinds a connected client may have signed, unless it has a policy of its own.
    pub default_kinds: BTreeSet<u16>,
    /// The kinds particular clients (by their NIP-46 client key) may have signed.
    pub clients: HashMap<PublicKey, BTreeSet<u16>>,
    /// How old a request may be.
    pub max_age: Duration,
}

/// A NIP-46 bunker in front of an [`EventSigner`] (the signer nodes, through a coordinator).
pub struct Bunker {
    inner: Arc<Inner>,
}

struct Inner {
    relays: Relays,
    signer: Arc<dyn EventSigner>,
    config: BunkerConfig,
    connected: Mutex<HashSet<PublicKey>>,
}

impl std::fmt::Debug for Bunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bunker")
            .field("bunker_pubkey", &self.inner.relays.public_key().to_hex())
            .field("user_pubkey", &self.inner.signer.public_key().to_hex())
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Bunker {
    /// A bunker speaking on `relays` under their key, signing with `signer`.
    pub fn new(relays: Relays, signer: Arc<dyn EventSigner>, config: BunkerConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                relays,
                signer,
                config,
                connected: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The `bunker://` URI to give a client: the bunker's key, its relays and the secret.
    pub fn uri(&self) -> NostrConnectURI {
        NostrConnectURI::Bunker {
            remote_signer_public_key: self.inner.relays.public_key(),
            relays: self
                .inner
                .relays
                .urls()
                .iter()
                .filter_map(|u| RelayUrl::parse(u).ok())
                .collect(),
            secret: Some(self.inner.config.secret.clone()),
        }
    }

    /// Answers requests until the relays shut down. Each request is answered in a task of its
    /// own, so a signing in progress does not hold up a `ping`.
    pub async fn serve(self) -> Result<(), SignerError> {
        let mut incoming = self.inner.relays.subscribe(&[Kind::NostrConnect]).await?;
        tracing::info!(
            "bunker {} for {} listening on {}",
            self.inner.relays.public_key().to_hex(),
            self.inner.signer.public_key().to_hex(),
            self.inner.relays.urls().join(", ")
        );
        while let Some(event) = incoming.next().await {
            let now = Timestamp::now().as_secs();
            if now.abs_diff(event.created_at.as_secs()) > self.inner.config.max_age.as_secs() {
                continue;
            }
            let inner = Arc::clone(&self.inner);
            tokio::spawn(async move {
                if let Err(error) = inner.handle(&event).await {
                    tracing::warn!(
                        "a NIP-46 request from {} went unanswered: {}",
                        event.pubkey.to_hex(),
                        Report::new(&error)
                    );
                }
            });
        }
        Ok(())
    }
}

impl Inner {
    async fn handle(&self, event: &Event) -> Result<(), SignerError> {
        let keys = self.relays.channel().keys();
        let json = nip44::decrypt(keys.secret_key(), &event.pubkey, &event.content)
            .map_err(crate::wire::WireError::Crypto)?;
        let message = NostrConnectMessage::from_json(json).map_err(|e| SignerError::Config {
            reason: format!("not a NIP-46 message: {e}"),
        })?;
        let id = message.id().to_owned();
        let Ok(request) = message.to_request() else {
            return Ok(());
        };
        let response = self.answer(event.pubkey, request).await;
        let reply = NostrConnectMessage::response(id, response);
        let event = EventBuilder::nostr_connect(keys, event.pubkey, reply)
            .and_then(|b| b.sign_with_keys(keys))
            .map_err(crate::wire::WireError::Build)?;
        self.relays.send(&event).await
    }

    fn is_connected(&self, client: &PublicKey) -> bool {
        self.connected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(client)
    }

    async fn answer(
        &self,
        client: PublicKey,
        request: NostrConnectRequest,
    ) -> NostrConnectResponse {
        let refuse = NostrConnectResponse::with_error;
        match request {
            NostrConnectRequest::Connect {
                remote_signer_public_key,
                secret,
            } => {
                if remote_signer_public_key != self.relays.public_key() {
                    return refuse("this bunker's key is not the one asked for");
                }
                if !secret.is_some_and(|s| same_secret(&s, &self.config.secret)) {
                    tracing::warn!(
                        "refused a connection from {}: wrong secret",
                        client.to_hex()
                    );
                    return refuse("wrong or missing secret");
                }
                self.connected
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(client);
                tracing::info!("client {} connected", client.to_hex());
                NostrConnectResponse::with_result(ResponseResult::Ack)
            }
            NostrConnectRequest::Ping => NostrConnectResponse::with_result(ResponseResult::Pong),
            _ if !self.is_connected(&client) => refuse("connect first, with the bunker's secret"),
            NostrConnectRequest::GetPublicKey => NostrConnectResponse::with_result(
                ResponseResult::GetPublicKey(self.signer.public_key()),
            ),
            NostrConnectRequest::SignEvent(unsigned) => self.sign(client, unsigned).await,
            _ => refuse(
                "not supported: encryption needs the whole secret key, which a threshold identity never holds in one place",
            ),
        }
    }

    async fn sign(
        &self,
        client: PublicKey,
        unsigned: nostr::UnsignedEvent,
    ) -> NostrConnectResponse {
        let kind = unsigned.kind.as_u16();
        let kinds = self
            .config
            .clients
            .get(&client)
            .unwrap_or(&self.config.default_kinds);
        if !kinds.contains(&kind) {
            tracing::info!("refused to sign kind {kind} for {}", client.to_hex());
            return NostrConnectResponse::with_error(format!(
                "kind {kind} is not allowed for this client"
            ));
        }
        match self.signer.sign_event(unsigned).await {
            Ok(event) => {
                tracing::info!(
                    "signed event {} (kind {kind}) for {}",
                    event.id,
                    client.to_hex()
                );
                NostrConnectResponse::with_result(ResponseResult::SignEvent(Box::new(event)))
            }
            Err(error) => NostrConnectResponse::with_error(Report::new(&error).to_string()),
        }
    }
}
