//! Threshold identity: an agent's Nostr key split among signers with FROST, so that no single
//! party (not even the operator) holds it, while any `t` of the `n` signers together produce one
//! standard 64-byte BIP-340 signature that every Nostr relay and client accepts.
//!
//! The ciphersuite is FROST(secp256k1, SHA-256) with the BIP-340/taproot rules
//! (`frost-secp256k1-tr`): the group public key is a 32-byte x-only Nostr key and aggregated
//! signatures verify as plain Schnorr signatures.
//!
//! - Key generation: a trusted dealer ([`generate_with_dealer`]), the split of an existing Nostr
//!   secret key ([`split_secret_key`], whose group key is that key's npub), or distributed key
//!   generation, in which no party ever holds the whole key: [`DkgParticipant`] runs on each
//!   signer's machine; [`KeygenSession`] runs all participants of a ceremony in one process, as
//!   the spec's sample shows.
//! - Signing: each signer [`commit`](SignerShare::commit)s to one-time nonces, a
//!   [`SigningRequest`] gathers the commitments for a 32-byte message, each signer
//!   [`sign`](SignerShare::sign)s (consuming its nonces: they cannot be used twice), and
//!   [`aggregate`] combines the partial signatures, naming any signer whose partial is bad.
//!   [`sign_message`] does all of it for shares held in one process (the `ao sign` command).
//! - Nostr: [`sign_event`] signs an unsigned event's id with the group key; [`agent_profile`] and
//!   [`parse_agent_profile`] build and read back the NIP-SA agent profile (kind 39200).
//! - Maintenance: [`refresh_shares`] gives every signer a new share of the same group key (key
//!   rotation without changing the npub), and [`RefreshParticipant`] does the same with each
//!   signer on its own machine; [`repair_share`] rebuilds a lost share from `t` others.
//! - Storage: [`ShareFile`] is a share encrypted with a passphrase (Argon2id and
//!   ChaCha20-Poly1305), with its signer node's transport key sealed beside it; [`GroupFile`] is
//!   the public description of a group (`group.json`), transport keys included.
//!
//! Secrets: [`SignerShare`] and [`SigningNonces`] print no secret in `Debug`, have no `Display`,
//! are zeroized on drop, and are written to disk only encrypted.
//!
//! What it is **not** for: transport. Messages between signers are plain values to carry over
//! whatever authenticated, confidential channel the deployment has (`ao-signer` carries them
//! over Nostr relays).

#![forbid(unsafe_code)]

mod error;
mod file;
mod group;
pub mod keygen;
mod maintain;
mod nostr_events;
mod share;
mod sign;

pub use error::ThresholdError;
pub use file::{GroupFile, KdfParams, SealedTransport, ShareFile};
pub use group::GroupPublic;
pub use keygen::{
    DkgParticipant, DkgRound1, DkgRound2, KeygenConfig, KeygenOutput, KeygenSession,
    generate_with_dealer, split_secret_key,
};
pub use maintain::{RefreshParticipant, refresh_shares, repair_share};
pub use nostr_events::{AGENT_PROFILE_KIND, agent_profile, parse_agent_profile, sign_event};
pub use share::SignerShare;
pub use sign::{
    Commitment, PartialSignature, SigningNonces, SigningRequest, aggregate, sign_message,
    verify_signature,
};

#[cfg(test)]
mod tests;
