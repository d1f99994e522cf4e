//! Threshold keys end to end. Every signature is checked by libsecp256k1's `verify_schnorr`
//! (the `secp256k1` crate, through `nostr`), independently of the FROST code that made it.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]
#![allow(missing_docs, reason = "test code")]

mod files;
mod nostr_events;
mod signing;

use ao_threshold::GroupPublic;
use nostr::secp256k1::{Message, Secp256k1, XOnlyPublicKey, schnorr};

/// Checks `signature` with libsecp256k1 directly.
pub(crate) fn bip340_valid(group: &GroupPublic, message: &[u8; 32], signature: &[u8; 64]) -> bool {
    let secp = Secp256k1::verification_only();
    let key = XOnlyPublicKey::from_slice(&hex::decode(group.group_pubkey()).unwrap()).unwrap();
    let sig = schnorr::Signature::from_slice(signature).unwrap();
    secp.verify_schnorr(&sig, &Message::from_digest(*message), &key)
        .is_ok()
}
