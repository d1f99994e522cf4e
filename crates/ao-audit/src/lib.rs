//! The audit log: an append-only record of what agents asked for, what operators decided, and
//! what was spent, that cannot be edited in place without it showing.
//!
//! Each [`AuditEntry`] carries the SHA-256 hash of the entry before it, and its own hash covers its
//! sequence number, time, kind, agent, detail and that previous hash. Changing, removing or
//! reordering any entry breaks the chain at that point, and [`verify_chain`] reports the first
//! broken link. (Cutting entries off the end leaves a valid shorter chain, and a chain rewritten
//! from its first entry is valid too: a [`Checkpoint`], the head signed by the operator as a Nostr
//! event and kept elsewhere, catches both.)
//!
//! [`AuditLog`] is the trait storage implements: [`MemoryAuditLog`] here, and `ao-store`'s
//! `SqliteStore` for the durable one. Appends are serialized by the implementation, which links
//! each new entry to the last one with [`AuditEntry::next`].
//!
//! What it is **not** for: deciding anything, or hiding anything. The log holds no secrets; never
//! put keys or tokens in an entry's detail.

#![forbid(unsafe_code)]

mod checkpoint;
mod entry;
mod log;

// Compiled for the crate's own unit tests too, so its memory backend always runs the suite.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use checkpoint::{
    AGENT_CHECKPOINT_KIND, CHECKPOINT_D_PREFIX, CHECKPOINT_KIND, ChainHead, Checkpoint,
    CheckpointError, CheckpointMismatch, parse_checkpoint, parse_checkpoint_json, sign_checkpoint,
    unsigned_checkpoint,
};
pub use entry::{AuditEntry, AuditEvent, BrokenLink, GENESIS_HASH, verify_chain};
pub use log::{AuditError, AuditLog, MemoryAuditLog};

#[cfg(test)]
mod tests;
