//! The wire format between signer nodes, coordinators and key-generation participants.
//!
//! Every message is one ephemeral Nostr event (kinds 20000–29999: relays forward them and keep
//! none):
//!
//! - kind [`SIGNING_KIND`] (29200) for signing, kind [`CEREMONY_KIND`] (29201) for key generation
//!   and refresh, so that a node and a ceremony under the same transport key never read each
//!   other's messages;
//! - `pubkey`: the sender's transport key, and the event's signature authenticates it;
//! - one tag `["p", <recipient transport key>]`;
//! - `content`: an [`Envelope`] as JSON, encrypted with NIP-44 (version 2) from the sender to the
//!   recipient. Relays see who talks to whom and when, never what.
//!
//! The envelope names its protocol version (`v`, 1), its session (the group key for signing, the
//! ceremony's id for key generation), its request id (32 random bytes, hex, chosen by the
//! coordinator and shared by every message of one signing attempt), the time it was made
//! (`created_ms`, Unix milliseconds, checked for freshness by the receiver) and its body, tagged
//! by `type`. The bodies are [`SignBody`] and [`CeremonyBody`]; FROST values are hex of their
//! canonical serialization (`frost-secp256k1-tr`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use nostr::nips::nip44::v2::{self, ConversationKey};
use nostr::{Event, EventBuilder, Keys, Kind, PublicKey, Tag, UnsignedEvent};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The kind of every signing message.
pub const SIGNING_KIND: Kind = Kind::Custom(29200);

/// The kind of every key-generation and refresh message.
pub const CEREMONY_KIND: Kind = Kind::Custom(29201);

/// The version of the envelope this code speaks.
pub const WIRE_VERSION: u8 = 1;

/// The largest plaintext an envelope may have: NIP-44 allows 64 KiB.
const MAX_PLAINTEXT: usize = 65_535;

/// Why a message could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The event is not of the expected kind.
    #[error("an event of kind {found} where kind {expected} was expected")]
    Kind {
        /// The event's kind.
        found: u16,
        /// The kind expected.
        expected: u16,
    },
    /// The event is not addressed to this key.
    #[error("the event is not addressed to this transport key")]
    NotForUs,
    /// The event's signature or id does not verify.
    #[error("the event does not verify")]
    Unverified(#[source] nostr::event::Error),
    /// NIP-44 refused to encrypt or decrypt.
    #[error("the message cannot be encrypted or decrypted with NIP-44")]
    Crypto(#[source] nostr::nips::nip44::Error),
    /// The content is not base64.
    #[error("the message content is not base64")]
    Base64,
    /// The decrypted message is not an envelope this code reads.
    #[error("the message is not a valid envelope")]
    Json(#[source] serde_json::Error),
    /// The envelope is of another version.
    #[error("envelope version {0}, but this node speaks version {WIRE_VERSION}")]
    Version(u8),
    /// The message is too large for NIP-44.
    #[error("a message of {0} bytes is over the NIP-44 limit of 65535")]
    TooLarge(usize),
    /// The event could not be signed.
    #[error("the event cannot be built or signed")]
    Build(#[source] nostr::event::builder::Error),
}

/// 32 bytes naming one signing attempt (or one ceremony), hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub [u8; 32]);

impl RequestId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        Self(bytes)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({self})")
    }
}

impl Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a request id is 32 bytes"))?;
        Ok(Self(bytes))
    }
}

/// The time now, in Unix milliseconds, as envelopes carry it. A clock set before 1970 reads 0,
/// which every node takes for a request from the far past or future: refused, never admitted.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `duration` in whole milliseconds.
pub(crate) fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// One message: its version, session, request, time and body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<B> {
    /// Always [`WIRE_VERSION`].
    pub v: u8,
    /// The group key (hex) for signing; the ceremony id (hex) for key generation.
    pub session: String,
    /// The signing attempt or ceremony this message belongs to.
    pub request: RequestId,
    /// When the sender made the message, in Unix milliseconds.
    pub created_ms: u64,
    /// What the message says.
    pub body: B,
}

impl<B> Envelope<B> {
    /// A message of the current version.
    pub fn new(session: impl Into<String>, request: RequestId, created_ms: u64, body: B) -> Self {
        Self {
            v: WIRE_VERSION,
            session: session.into(),
            request,
            created_ms,
            body,
        }
    }
}

/// What a coordinator asks to have signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Payload {
    /// An unsigned Nostr event whose author is the group key: the node computes its id itself
    /// and signs that, so its policy sees the event's kind.
    Event {
        /// The event.
        event: UnsignedEvent,
    },
    /// A bare 32-byte message, hex: signed only by nodes whose policy allows raw messages.
    Raw {
        /// The message.
        message: String,
    },
}

impl Payload {
    /// The 32 bytes the signers sign: the event's id, computed here from its fields (an id the
    /// event carries must match), or the raw message. The event's author must be `group_key`.
    pub fn message(&self, group_key: &PublicKey) -> Result<[u8; 32], String> {
        match self {
            Payload::Event { event } => {
                if event.pubkey != *group_key {
                    return Err(format!(
                        "the event's author {} is not the group key {}",
                        event.pubkey.to_hex(),
                        group_key.to_hex()
                    ));
                }
                event
                    .verify_id()
                    .map_err(|_| "the event's id does not match its fields".to_owned())?;
                let mut event = event.clone();
                Ok(event.id().to_bytes())
            }
            Payload::Raw { message } => hex::decode(message)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| "a raw message must be 32 bytes, hex".to_owned()),
        }
    }

    /// The event's kind, for an event.
    pub fn event_kind(&self) -> Option<u16> {
        match self {
            Payload::Event { event } => Some(event.kind.as_u16()),
            Payload::Raw { .. } => None,
        }
    }
}

/// One signer's commitment, as the coordinator relays it to the signers it chose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireCommitment {
    /// The signer.
    pub index: u16,
    /// Its commitment, hex.
    pub commitment: String,
}

/// The bodies of signing messages (kind 29200).
///
/// A signing is two round trips: `commit_request` to every node, a `commitment` back from each
/// that agrees; then `sign_request` (with the `threshold` commitments chosen) to the chosen, a
/// `partial` back from each. A node may answer either request with `refused` instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignBody {
    /// Coordinator to node: commit to fresh nonces for signing `payload`.
    CommitRequest {
        /// What is to be signed.
        payload: Payload,
    },
    /// Node to coordinator: its commitment for the request.
    Commitment {
        /// The node's signer index.
        index: u16,
        /// The commitment, hex.
        commitment: String,
    },
    /// Coordinator to node: sign, with the commitments of the signers chosen.
    SignRequest {
        /// One per chosen signer, this node's own among them.
        commitments: Vec<WireCommitment>,
    },
    /// Node to coordinator: its partial signature.
    Partial {
        /// The node's signer index.
        index: u16,
        /// The partial signature, hex.
        partial: String,
    },
    /// Node to coordinator: it will not take part, and why.
    Refused {
        /// Why, for the coordinator's user.
        reason: String,
    },
}

/// The bodies of key-generation and refresh messages (kind 29201).
///
/// Each participant sends `round1` to every other until it has that participant's `round2`;
/// `round2` to each once it has every `round1`; and `done`, naming the group it ended with, once
/// it has every `round2`. Nobody writes a share until every participant's `done` names the same
/// group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CeremonyBody {
    /// The sender's round-one package, and the ephemeral key round two is sent to.
    Round1 {
        /// The round-one package, hex.
        package: String,
        /// An x-only key drawn for this ceremony alone, hex: round-two messages for the sender
        /// are encrypted to it, so a transport key stolen later opens none of them.
        ephemeral: String,
    },
    /// The sender's round-two package for the recipient, encrypted with NIP-44 from the sender's
    /// ephemeral key to the recipient's.
    Round2 {
        /// The sealed package.
        sealed: String,
    },
    /// The sender has its share; the group it computed.
    Done {
        /// SHA-256 of the group's public key package, hex.
        group_hash: String,
        /// The group key, hex.
        group_pubkey: String,
    },
}

/// Seals and opens envelopes under one transport key, keeping the NIP-44 conversation key of
/// each peer so that it is derived once.
pub struct Channel {
    keys: Keys,
    conversations: Mutex<HashMap<PublicKey, Zeroizing<[u8; 32]>>>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("public_key", &self.keys.public_key())
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// A channel speaking under `keys`.
    pub fn new(keys: Keys) -> Self {
        Self {
            keys,
            conversations: Mutex::new(HashMap::new()),
        }
    }

    /// The transport key this channel speaks under.
    pub fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    /// The keys this channel speaks under.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    fn conversation(&self, peer: &PublicKey) -> Result<ConversationKey, WireError> {
        let mut cache = self
            .conversations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bytes) = cache.get(peer) {
            return Ok(ConversationKey::new(**bytes));
        }
        let key =
            ConversationKey::derive(self.keys.secret_key(), peer).map_err(WireError::Crypto)?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(key.as_bytes());
        cache.insert(*peer, bytes);
        Ok(key)
    }

    /// The event that carries `envelope` to `to`, encrypted and signed.
    pub fn seal<B: Serialize>(
        &self,
        kind: Kind,
        to: &PublicKey,
        envelope: &Envelope<B>,
    ) -> Result<Event, WireError> {
        let json = Zeroizing::new(serde_json::to_vec(envelope).map_err(WireError::Json)?);
        if json.len() > MAX_PLAINTEXT {
            return Err(WireError::TooLarge(json.len()));
        }
        let sealed =
            v2::encrypt_to_bytes(&self.conversation(to)?, &json).map_err(WireError::Crypto)?;
        let content = nostr::base64::Engine::encode(
            &nostr::base64::engine::general_purpose::STANDARD,
            sealed,
        );
        EventBuilder::new(kind, content)
            .tag(Tag::public_key(*to))
            .sign_with_keys(&self.keys)
            .map_err(WireError::Build)
    }

    /// The envelope `event` carries, after checking its kind, that it is addressed to this key,
    /// and its signature. The sender is `event.pubkey`.
    pub fn open<B: DeserializeOwned>(
        &self,
        kind: Kind,
        event: &Event,
    ) -> Result<Envelope<B>, WireError> {
        if event.kind != kind {
            return Err(WireError::Kind {
                found: event.kind.as_u16(),
                expected: kind.as_u16(),
            });
        }
        let me = self.keys.public_key();
        if !event.tags.public_keys().any(|p| *p == me) {
            return Err(WireError::NotForUs);
        }
        event.verify().map_err(WireError::Unverified)?;
        let sealed = nostr::base64::Engine::decode(
            &nostr::base64::engine::general_purpose::STANDARD,
            event.content.as_bytes(),
        )
        .map_err(|_| WireError::Base64)?;
        let json = Zeroizing::new(
            v2::decrypt_to_bytes(&self.conversation(&event.pubkey)?, &sealed)
                .map_err(WireError::Crypto)?,
        );
        let envelope: Envelope<B> = serde_json::from_slice(&json).map_err(WireError::Json)?;
        if envelope.v != WIRE_VERSION {
            return Err(WireError::Version(envelope.v));
        }
        Ok(envelope)
    }
}
