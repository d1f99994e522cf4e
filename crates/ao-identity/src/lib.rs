//! Agent identity: who an agent is, how its key is protected, and how much it may do alone.
//!
//! - [`ThresholdConfig`] describes a `t`-of-`n` threshold key (FROST over secp256k1 with BIP-340
//!   signatures): the signers' public keys and the group public key, which is the agent's Nostr key.
//! - [`AutonomyLevel`] is the graduated autonomy of the spec: supervised, semi-autonomous and fully
//!   autonomous, with the approval rule of each ([`AutonomyLevel::requires_approval`]).
//! - [`AgentIdentity`] is the NIP-SA agent identity that ties them together with a name, a model and
//!   an operator.
//! - [`parse_public_key`] reads a secp256k1 x-only public key given as 64 hex characters or an npub.
//!
//! What it is **not** for: holding secrets or talking to anyone. This crate describes identities and
//! checks them; the key ceremony and signing (which do hold secret shares) and the approval workflow
//! live elsewhere. It does no I/O.

#![forbid(unsafe_code)]

mod autonomy;
mod identity;
mod key;
mod threshold;

pub use autonomy::{AutonomyLevel, DEFAULT_APPROVAL_ABOVE_SATS, ParseAutonomyError};
pub use identity::{AgentIdentity, IdentityError};
pub use key::{InvalidPublicKey, parse_public_key};
pub use nostr::PublicKey;
pub use threshold::{ThresholdConfig, ThresholdConfigError};

#[cfg(test)]
mod tests;
