//! Approvals: the operator's say over what a supervised or semi-autonomous agent may do, in a
//! form the agent cannot forge.
//!
//! [`SolverAgentCoordinator`] is the spec's approval coordinator: [`requires_approval`] applies the
//! autonomy table, [`request_approval`] files a request, [`list_pending`] shows what waits, and
//! [`approve`]/[`reject`] decide. On top of the spec:
//!
//! - **Decisions, not deletions.** Every request keeps its [`ApprovalStatus`] (pending, approved,
//!   rejected, expired) and its [`Decision`]: who decided, when and why. Deciding twice, deciding an
//!   unknown or expired request, are errors that change nothing. Requests expire (24 hours by
//!   default) and an expired request counts as rejected.
//! - **Decisions that cannot be forged.** [`approve_signed`] and [`reject_signed`] take a Nostr
//!   event of kind 39213 (NIP-SA guardian approval) and accept it only if its BIP-340 signature
//!   verifies, its author is the operator (or a configured guardian), it names this request, and
//!   it is fresh. With [`with_guardians`], `k` distinct guardians must approve and one denial
//!   rejects. Once an operator key or guardians are configured, an unsigned [`approve`] is refused:
//!   whoever holds the coordinator (the agent itself) cannot approve its own request.
//! - **Persistence and audit.** An [`ApprovalStore`] keeps every request and decision across
//!   restarts, and writes each change together with a hash-chained audit entry.
//! - **Waiting without polling.** [`wait_for_decision`] wakes as soon as a decision is made.
//!
//! What it is **not** for: the autonomy rule itself (see `ao_identity::AutonomyLevel`) or storage
//! engines (`ao-store` implements [`ApprovalStore`] on SQLite).
//!
//! [`requires_approval`]: SolverAgentCoordinator::requires_approval
//! [`request_approval`]: SolverAgentCoordinator::request_approval
//! [`list_pending`]: SolverAgentCoordinator::list_pending
//! [`approve`]: SolverAgentCoordinator::approve
//! [`reject`]: SolverAgentCoordinator::reject
//! [`approve_signed`]: SolverAgentCoordinator::approve_signed
//! [`reject_signed`]: SolverAgentCoordinator::reject_signed
//! [`with_guardians`]: SolverAgentCoordinator::with_guardians
//! [`wait_for_decision`]: SolverAgentCoordinator::wait_for_decision

#![forbid(unsafe_code)]

// Compiled for the crate's own unit tests too, so its memory backend always runs the suite.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod coordinator;
mod error;
mod record;
mod signed;
mod store;
mod verify;

pub use coordinator::{
    DEFAULT_EXPIRY, DEFAULT_MAX_EVENT_AGE, DEFAULT_MAX_PENDING, DEFAULT_USABLE_FOR,
    SolverAgentCoordinator,
};
pub use error::{ApprovalError, ApprovalStoreError};
pub use record::{
    ApprovalPolicy, ApprovalRecord, ApprovalStatus, Decision, PendingApproval, Use, Verdict, Vote,
    new_request_id,
};
pub use signed::{DECISION_KIND, ParsedDecision, build_decision_event, parse_decision_event};
pub use store::{ApprovalStore, MemoryApprovalStore};

#[cfg(test)]
mod tests;
