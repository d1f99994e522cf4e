use std::error::Error as StdError;

use ao_types::{AgentNameError, ClockError};

use crate::tracker::ReservationId;

/// A ledger could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// Records could not be written durably.
    #[error("the cost ledger cannot be written")]
    Write {
        /// What the storage engine said.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
    /// Records could not be read.
    #[error("the cost ledger cannot be read")]
    Read {
        /// What the storage engine said.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
    /// A stored record is not one this version understands (a corrupted or foreign file).
    #[error("the cost ledger holds a record that cannot be decoded: {reason}")]
    Corrupt {
        /// What is wrong with it.
        reason: String,
    },
}

impl LedgerError {
    /// A write failure caused by `source`.
    pub fn write(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        LedgerError::Write {
            source: source.into(),
        }
    }

    /// A read failure caused by `source`.
    pub fn read(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        LedgerError::Read {
            source: source.into(),
        }
    }
}

/// Why the tracker refused or could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// Admitting the request would pass the session limit (or it is already reached).
    #[error(
        "agent `{agent}` would exceed its session budget: {spent_sats} of {limit_sats} sats spent or reserved, {requested_sats} requested; start a new session or raise the limit"
    )]
    SessionExceeded {
        /// The agent.
        agent: String,
        /// The session limit.
        limit_sats: u64,
        /// Settled spend plus outstanding reservations in the session.
        spent_sats: u64,
        /// The estimate that was refused.
        requested_sats: u64,
    },
    /// Admitting the request would pass the daily limit (or it is already reached).
    #[error(
        "agent `{agent}` would exceed its daily budget: {spent_sats} of {limit_sats} sats spent or reserved today, {requested_sats} requested; the budget resets at {resets_at} (Unix seconds, UTC midnight)"
    )]
    DailyExceeded {
        /// The agent.
        agent: String,
        /// The daily limit.
        limit_sats: u64,
        /// Settled spend plus outstanding reservations today.
        spent_sats: u64,
        /// The estimate that was refused.
        requested_sats: u64,
        /// When the day ends and the daily budget starts afresh, in Unix seconds.
        resets_at: u64,
    },
    /// Admitting the request would pass the agent's daily token cap (or it is already reached).
    #[error(
        "agent `{agent}` would exceed its daily token cap: {used_tokens} of {limit_tokens} tokens used or reserved today, {requested_tokens} requested; the cap resets at {resets_at} (Unix seconds, UTC midnight)"
    )]
    DailyTokensExceeded {
        /// The agent.
        agent: String,
        /// The daily token cap.
        limit_tokens: u64,
        /// Tokens settled plus reserved today.
        used_tokens: u64,
        /// The token estimate that was refused.
        requested_tokens: u64,
        /// When the day ends and the cap starts afresh, in Unix seconds.
        resets_at: u64,
    },
    /// The agent name is not valid.
    #[error("the agent name is not valid")]
    InvalidAgent(#[source] AgentNameError),
    /// A record carries an amount no ledger can hold exactly.
    #[error("cost record field `{field}` is {value}, above the largest storable amount 2^63-1")]
    AmountTooLarge {
        /// The field.
        field: &'static str,
        /// The value given.
        value: u64,
    },
    /// The reservation id was never issued by this tracker.
    #[error("reservation {id} was never issued by this tracker")]
    UnknownReservation {
        /// The id given.
        id: ReservationId,
    },
    /// The reservation was already settled or released.
    #[error("reservation {id} was already settled or released")]
    ReservationFinished {
        /// The id given.
        id: ReservationId,
    },
    /// A reservation of one agent was settled with another agent's record.
    #[error(
        "reservation {id} belongs to agent `{reserved_for}` but the record names `{record_agent}`; settle it with a record of the same agent"
    )]
    ReservationAgentMismatch {
        /// The id given.
        id: ReservationId,
        /// The agent the reservation was made for.
        reserved_for: String,
        /// The agent named by the record.
        record_agent: String,
    },
    /// The session started before the history this tracker holds, and no ledger can supply it.
    #[error(
        "session of agent `{agent}` started at {session_start}, before the spend history this tracker holds (from {horizon}); attach a ledger or start a new session"
    )]
    SessionBeforeHistory {
        /// The agent.
        agent: String,
        /// The session start given.
        session_start: u64,
        /// The oldest second the tracker holds in memory.
        horizon: u64,
    },
    /// The spend was counted in memory, but could not be written to the ledger. It is kept and
    /// written when the ledger recovers; until then new reservations are refused.
    #[error(
        "the spend was counted but is not yet durable; it will be written when the ledger recovers, and new reservations are refused until then"
    )]
    NotDurable {
        /// Why the ledger refused.
        #[source]
        source: LedgerError,
    },
    /// New spend is refused because earlier spend could not be written to the ledger.
    #[error(
        "new spend is refused: {pending} cost record(s) could not be written to the ledger yet; it is accepted again once they are"
    )]
    LedgerUnavailable {
        /// Records counted in memory but not yet durable.
        pending: usize,
        /// Why the ledger refused.
        #[source]
        source: LedgerError,
    },
    /// The ledger could not be read while loading spend.
    #[error("the spend history could not be loaded; check the ledger")]
    Load(#[source] LedgerError),
    /// The budget shared by several processes (in a database) could not be reached or written:
    /// nothing was admitted or changed.
    #[error("the shared budget cannot be reached; nothing was admitted")]
    Unreachable {
        /// Why.
        #[source]
        source: LedgerError,
    },
    /// The time could not be read.
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// An internal lock was poisoned by a panic; nothing can be decided safely.
    #[error(
        "the cost tracker's state is unavailable after a panic in another thread; restart the process"
    )]
    Poisoned,
}
