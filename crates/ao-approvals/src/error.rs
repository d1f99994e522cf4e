use std::error::Error as StdError;

use ao_types::ClockError;

use crate::record::ApprovalStatus;

/// An approval store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalStoreError {
    /// The change could not be written; nothing was changed.
    #[error("the approval store cannot be written; nothing was changed")]
    Write {
        /// What the storage said.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
    /// The store could not be read.
    #[error("the approval store cannot be read")]
    Read {
        /// What the storage said.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
    /// The stored request changed since it was read (another process decided it): the save was
    /// refused, so nothing overwrote that change. Read it again and decide on what it says now.
    #[error(
        "approval request `{request_id}` changed in the store since it was read; nothing was overwritten"
    )]
    Conflict {
        /// The request.
        request_id: String,
    },
}

impl ApprovalStoreError {
    /// A write failure caused by `source`.
    pub fn write(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        ApprovalStoreError::Write {
            source: source.into(),
        }
    }

    /// A read failure caused by `source`.
    pub fn read(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        ApprovalStoreError::Read {
            source: source.into(),
        }
    }
}

/// Why an approval operation was refused. A refused operation changes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// No request has this id.
    #[error("no approval request `{id}`; list the pending ones with `list_pending`")]
    NotFound {
        /// The id given.
        id: String,
    },
    /// The request was already approved or rejected.
    #[error("approval request `{id}` was already decided: {status}")]
    AlreadyDecided {
        /// The request.
        id: String,
        /// Its decision.
        status: ApprovalStatus,
    },
    /// The request expired before it was decided; it counts as rejected.
    #[error(
        "approval request `{id}` expired at {expired_at} (Unix seconds) and counts as rejected; file a new request"
    )]
    Expired {
        /// The request.
        id: String,
        /// When it expired.
        expired_at: u64,
    },
    /// The approval presented for a call is not (or no longer) approved.
    #[error("approval request `{id}` is {status}, not approved")]
    NotApproved {
        /// The request.
        id: String,
        /// Its status.
        status: ApprovalStatus,
    },
    /// The approval was already used by an earlier call.
    #[error(
        "approval request `{id}` was already used at {used_at} (Unix seconds); each approval allows one call"
    )]
    AlreadyUsed {
        /// The request.
        id: String,
        /// When it was used.
        used_at: u64,
    },
    /// The approval is for another action, or for less than the call is estimated at.
    #[error(
        "approval request `{id}` covers `{approved_action}` up to {approved_sats} sats, not `{action}` at {cost_sats} sats"
    )]
    DoesNotCover {
        /// The request.
        id: String,
        /// The action it approved.
        approved_action: String,
        /// The cost it approved.
        approved_sats: u64,
        /// The action presented.
        action: String,
        /// The cost presented.
        cost_sats: u64,
    },
    /// The call presented is not the request that was approved: an approval covers the one
    /// request it was filed for.
    #[error(
        "approval request `{id}` was filed for another request; an approval covers the one request it was filed for, so file this one anew"
    )]
    Mismatch {
        /// The request.
        id: String,
    },
    /// The request was approved, but not used within the time an approval stays usable.
    #[error(
        "approval request `{id}` was approved at {decided_at} but not used before {lapsed_at} (Unix seconds); file it anew"
    )]
    Lapsed {
        /// The request.
        id: String,
        /// When it was approved.
        decided_at: u64,
        /// When it stopped being usable.
        lapsed_at: u64,
    },
    /// The agent has as many undecided requests as it may; a new one waits until one of them is
    /// decided or expires.
    #[error(
        "agent `{agent}` already has {max} approval requests waiting; decide or let them expire before filing more"
    )]
    TooManyPending {
        /// The agent.
        agent: String,
        /// The most it may have waiting.
        max: usize,
        /// Seconds until the oldest waiting request expires.
        retry_after_secs: u64,
    },
    /// The wait ended before a decision.
    #[error("no decision on approval request `{id}` within the wait; it is still pending")]
    Timeout {
        /// The request.
        id: String,
    },
    /// An unsigned decision was given where only a signed one counts.
    #[error(
        "approval request `{id}` can only be approved with an event signed by {who}; an unsigned approval would let the agent approve itself"
    )]
    SignatureRequired {
        /// The request.
        id: String,
        /// Who may sign.
        who: String,
    },
    /// The event's id or BIP-340 signature does not verify.
    #[error("the decision event does not verify: {reason}")]
    BadSignature {
        /// What failed.
        reason: String,
    },
    /// The event is not a NIP-SA guardian approval.
    #[error("the decision event has kind {found}; a guardian approval has kind 39213")]
    WrongKind {
        /// The kind found.
        found: u16,
    },
    /// A required tag is missing or malformed.
    #[error("the decision event has no valid `{tag}` tag")]
    MissingTag {
        /// The tag.
        tag: &'static str,
    },
    /// The event names another request than the one being decided.
    #[error("the decision event names request `{named}`, not `{expected}`")]
    WrongRequest {
        /// The request the event names.
        named: String,
        /// The request being decided.
        expected: String,
    },
    /// The decision tag holds neither `approved` nor `denied`.
    #[error("the decision event says `{found}`; expected `approved` or `denied`")]
    UnknownDecision {
        /// What it says.
        found: String,
    },
    /// An approval was given where a denial was expected, or the reverse.
    #[error("the decision event says `{found}` but was given to {expected}")]
    DecisionMismatch {
        /// What the event says.
        found: &'static str,
        /// The call it was given to.
        expected: &'static str,
    },
    /// The event's author may not decide this request.
    #[error(
        "`{pubkey}` is not the operator or a guardian of this agent; its decision does not count"
    )]
    UnauthorizedSigner {
        /// The author.
        pubkey: String,
    },
    /// The event is too old, or dated before the request, or in the future.
    #[error(
        "the decision event is stale: signed at {created_at}, accepted between {not_before} and {not_after} (Unix seconds)"
    )]
    StaleEvent {
        /// When the event says it was signed.
        created_at: u64,
        /// The earliest accepted.
        not_before: u64,
        /// The latest accepted.
        not_after: u64,
    },
    /// The same guardian already voted on this request.
    #[error("guardian `{pubkey}` already voted on this request; each guardian counts once")]
    DuplicateVote {
        /// The guardian.
        pubkey: String,
    },
    /// A guardian configuration is wrong.
    #[error("invalid guardians: {reason}")]
    InvalidGuardians {
        /// What is wrong.
        reason: String,
    },
    /// The store refused; nothing was changed.
    #[error(transparent)]
    Store(#[from] ApprovalStoreError),
    /// A new request was filed in memory, but the store could not save it. It waits in this
    /// process only and is lost when the process ends; it can be decided meanwhile, and is never
    /// approved by default.
    #[error(
        "approval request `{request_id}` could not be stored and waits in this process only; it is lost when the process ends, so fix the approval store"
    )]
    NotStored {
        /// The request, as it waits in memory.
        request_id: String,
        /// Why the store refused.
        #[source]
        source: ApprovalStoreError,
    },
    /// A stored record is not valid.
    #[error("a stored approval request cannot be decoded: {reason}")]
    Corrupt {
        /// What is wrong.
        reason: String,
    },
    /// The time could not be read.
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// A lock was poisoned by a panic; nothing can be decided safely.
    #[error(
        "the approval coordinator is unavailable after a panic in another thread; restart the process"
    )]
    Poisoned,
}
