use std::fmt;
use std::time::Duration;

use ao_threshold::ThresholdError;

use crate::wire::WireError;

/// Why a node, a coordinator, a ceremony or the bunker failed. No variant carries secret
/// material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// No relay was given.
    #[error("no relay given; name at least one, such as ws://127.0.0.1:7777 (`ao relay` runs one)")]
    NoRelays,
    /// A relay URL does not parse.
    #[error("`{url}` is not a relay URL; give ws://host:port or wss://host")]
    Relay {
        /// The URL given.
        url: String,
        /// What the relay pool said.
        #[source]
        source: nostr_relay_pool::pool::Error,
    },
    /// No relay could be reached.
    #[error(
        "no relay answered within {timeout:?} ({urls}); check that a relay runs there (`ao relay --listen ...`)"
    )]
    Unreachable {
        /// The URLs tried.
        urls: String,
        /// How long was waited.
        timeout: Duration,
    },
    /// The subscription could not be made.
    #[error("cannot subscribe on the relays")]
    Subscribe(#[source] nostr_relay_pool::pool::Error),
    /// A message could not be handed to the relays.
    #[error("cannot publish on the relays")]
    Send(#[source] nostr_relay_pool::pool::Error),
    /// No relay accepted a message.
    #[error("no relay accepted the message ({reasons})")]
    NotPublished {
        /// What each relay said.
        reasons: String,
    },
    /// A message could not be sealed or opened.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A threshold operation failed.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    /// The group file lists no transport keys, so its nodes cannot be reached.
    #[error(
        "the group file lists no transport keys; it was written before signer nodes: make the key again with `ao keygen` (or `ao keygen --relay`)"
    )]
    NoTransportKeys,
    /// The share file holds no transport key.
    #[error(
        "share {index}'s file holds no transport key; it was written before signer nodes: make the key again with `ao keygen` (or `ao keygen --relay`)"
    )]
    NoTransportKey {
        /// The share.
        index: u16,
    },
    /// The share's transport key is not the one the group file lists for it.
    #[error(
        "share {index}'s transport key is not the one the group file lists for signer {index}; use the group file of this share's group"
    )]
    TransportMismatch {
        /// The share.
        index: u16,
    },
    /// The share does not belong to the group file's group.
    #[error("share {index} does not belong to the group of the group file; use that group's file")]
    ForeignShare {
        /// The share.
        index: u16,
    },
    /// Too few signers took part in a signing.
    #[error(transparent)]
    Shortfall(#[from] Shortfall),
    /// The event to sign is not authored by the group key.
    #[error("the event's author {author} is not the group key {group_pubkey}")]
    EventAuthor {
        /// The event's pubkey.
        author: String,
        /// The group key.
        group_pubkey: String,
    },
    /// The signed event does not verify.
    #[error("the threshold-signed event does not verify; a signer may be faulty, sign again")]
    EventInvalid(#[source] nostr::event::Error),
    /// The coordinator's background task is gone.
    #[error("the coordinator stopped; start it again")]
    Stopped,
    /// A key generation or refresh over relays failed.
    #[error("{what} over the relays failed: {reason}")]
    Ceremony {
        /// "key generation" or "refresh".
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A key generation or refresh step failed.
    #[error("{what} over the relays failed")]
    CeremonyStep {
        /// "key generation" or "refresh".
        what: &'static str,
        /// What failed.
        #[source]
        source: ThresholdError,
    },
    /// A signing configuration does not hold.
    #[error("the signing configuration is not valid: {reason}")]
    Config {
        /// Why.
        reason: String,
    },
    /// A file of the signing configuration could not be read.
    #[error("cannot read `{}`", path.display())]
    ReadFile {
        /// The file.
        path: std::path::PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The contribution log could not be written: the node signs nothing it cannot log.
    #[error("cannot write the contribution log `{}`; the node signs nothing it cannot log", path.display())]
    Log {
        /// The log file.
        path: std::path::PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The local relay could not start.
    #[error("cannot start the relay on `{addr}`; choose a free address")]
    RelayStart {
        /// The address.
        addr: String,
        /// What the relay said.
        #[source]
        source: nostr_relay_builder::Error,
    },
}

/// Too few signers took part in a signing, and why each of the others did not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shortfall {
    /// Signatures the group needs.
    pub needed: u16,
    /// How long each round waited.
    pub timeout: Duration,
    /// Signers that did not answer within the timeout.
    pub silent: Vec<u16>,
    /// Signers that refused, and their reasons.
    pub refused: Vec<(u16, String)>,
    /// Signers whose partial signature was invalid, left out of every later attempt.
    pub culprits: Vec<u16>,
}

impl std::error::Error for Shortfall {}

/// "signer 2", "signers 2 and 3", "signers 1, 2 and 3".
fn signers(indices: &[u16]) -> String {
    let words: Vec<String> = indices.iter().map(u16::to_string).collect();
    match words.split_last() {
        None => String::new(),
        Some((last, [])) => format!("signer {last}"),
        Some((last, rest)) => format!("signers {} and {last}", rest.join(", ")),
    }
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fewer than the {} signers needed took part", self.needed)?;
        if !self.culprits.is_empty() {
            write!(
                f,
                "; {} sent an invalid partial signature, left out of every retry",
                signers(&self.culprits)
            )?;
        }
        for (index, reason) in &self.refused {
            write!(f, "; signer {index} refused: {reason}")?;
        }
        if !self.silent.is_empty() {
            write!(
                f,
                "; no answer within {:?} from {}",
                self.timeout,
                signers(&self.silent)
            )?;
        }
        if !self.silent.is_empty() {
            f.write_str("; start the signer nodes that are down (`ao signer`), or wait and retry")
        } else if !self.refused.is_empty() {
            f.write_str("; ask for what the nodes' policies allow, or change their policies")
        } else {
            f.write_str("; replace the faulty signer's share (`ao repair`), or sign with others")
        }
    }
}
