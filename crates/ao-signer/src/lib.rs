//! Signer nodes: an agent's FROST shares on separate machines, signing over Nostr relays, so that
//! no single machine ever holds the key.
//!
//! - [`SignerNode`] holds one share in memory and answers coordinators under a transport key of
//!   its own (published in the group file), with a [`NodePolicy`]: which event kinds it signs,
//!   whether it signs raw messages, a rate limit, and a [`ContributionLog`] of everything it
//!   signed.
//! - [`Coordinator`] asks the nodes for commitments and partial signatures and aggregates one
//!   BIP-340 signature, working around nodes that are down, refuse, or cheat; it may hold no share
//!   at all, or one of its own.
//! - [`ceremony`] runs key generation and refresh between nodes over relays, so that no machine
//!   ever holds more than its own share.
//! - [`Bunker`] offers the threshold identity to NIP-46 clients (`connect`, `get_public_key`,
//!   `sign_event`, `ping`), signed by the nodes, with a policy per client.
//! - [`EventSigner`] is what the runtime signs its events with: [`LocalSigner`] (shares in this
//!   process) or the nodes ([`Coordinator`], or [`RemoteSigner`], which connects when first
//!   asked), chosen by a [`SigningConfig`].
//! - [`Relay`] runs a relay in this process (`ao relay`), so all of it works without internet.
//!
//! The messages are ephemeral events of kinds 29200 (signing) and 29201 (key generation), their
//! content an envelope encrypted with NIP-44: [`wire`] documents the format.
//!
//! What it is **not** for: the FROST arithmetic (that is `ao-threshold`, which knows nothing of
//! relays), or deciding what an agent may do (budgets and approvals decide; a node's policy is a
//! last line, per machine).

#![forbid(unsafe_code)]

mod bunker;
pub mod ceremony;
mod coordinator;
mod error;
mod node;
mod policy;
mod relay;
mod signer;
mod transport;
pub mod wire;

pub use bunker::{Bunker, BunkerConfig};
pub use coordinator::{Coordinator, CoordinatorConfig};
pub use error::{Shortfall, SignerError};
pub use node::{NodeConfig, SignerNode};
pub use policy::{Contribution, ContributionLog, NIP_SA_KINDS, NodePolicy};
pub use relay::Relay;
pub use signer::{EventSigner, LocalSigner, RemoteSigner, SigningConfig};
pub use transport::{Incoming, Relays};

#[cfg(test)]
mod tests;
