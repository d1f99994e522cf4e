//! One agent's budget state: settled totals per UTC day and per session, a per-second index of
//! recent spend, and outstanding reservations. Everything here is called with the agent's lock
//! held; nothing here does I/O except the cold path that asks a ledger for an old session.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ao_types::{AgentName, SECONDS_PER_DAY, utc_day_start};

use crate::error::BudgetError;
use crate::ledger::Ledger;
use crate::record::CostRecord;

/// Sessions whose totals are kept per agent; the least recently used one is dropped beyond this
/// and recomputed from the index if it is asked for again.
const MAX_SESSIONS: usize = 64;

/// How many expired reservations are remembered per agent, so that a late settle still records
/// the spend that happened. Bounded by count, not by time, so a clock that jumps forward cannot
/// make the tracker forget a call that is still running.
const EXPIRED_KEPT: usize = 65_536;

/// UTC days of totals kept per agent. Bounded by count, not by the clock, so a clock that jumps
/// forward and back cannot make the tracker forget today's spend.
const DAYS_KEPT: usize = 8;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DayTotals {
    pub(crate) sats: u64,
    pub(crate) tokens: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Reservation {
    pub(crate) sats: u64,
    pub(crate) tokens: u64,
    pub(crate) expires_at: u64,
    /// Whether it is written down in the ledger (its call was dispatched).
    pub(crate) held: bool,
}

#[derive(Debug, Clone, Copy)]
struct SessionEntry {
    settled: u64,
    last_used: u64,
}

/// What became of a reservation that is being finished.
pub(crate) enum Taken {
    /// It was outstanding and counted; `held` if it is written down in the ledger.
    Active { held: bool },
    /// Its lease had run out; it no longer counted. `held` as above.
    Expired { held: bool },
    /// It was issued, and already settled or released.
    Finished,
    /// It was never issued.
    Unknown,
}

#[derive(Debug)]
pub(crate) struct AgentState {
    pub(crate) name: AgentName,
    days: BTreeMap<u64, DayTotals>,
    /// Settled sats per second, for every record with `timestamp >= horizon`.
    index: BTreeMap<u64, u64>,
    horizon: u64,
    sessions: HashMap<u64, SessionEntry>,
    uses: u64,
    pub(crate) reserved_sats: u64,
    pub(crate) reserved_tokens: u64,
    active: HashMap<u64, Reservation>,
    expiry: BTreeSet<(u64, u64)>,
    /// Expired reservations, by sequence (oldest first).
    /// Reservations whose lease ran out, and whether each is held in the ledger.
    expired: BTreeMap<u64, bool>,
    next_seq: u64,
}

impl AgentState {
    pub(crate) fn new(name: AgentName, horizon: u64) -> Self {
        Self {
            name,
            days: BTreeMap::new(),
            index: BTreeMap::new(),
            horizon,
            sessions: HashMap::new(),
            uses: 0,
            reserved_sats: 0,
            reserved_tokens: 0,
            active: HashMap::new(),
            expiry: BTreeSet::new(),
            expired: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Expires reservations whose lease ended, and forgets what is older than the tracker keeps.
    pub(crate) fn maintain(&mut self, now: u64, horizon_secs: u64) {
        while let Some(&(expires_at, seq)) = self.expiry.first() {
            if expires_at > now {
                break;
            }
            self.expiry.pop_first();
            if let Some(r) = self.active.remove(&seq) {
                self.reserved_sats = self.reserved_sats.saturating_sub(r.sats);
                self.reserved_tokens = self.reserved_tokens.saturating_sub(r.tokens);
                self.expired.insert(seq, r.held);
                tracing::warn!(
                    agent = %self.name,
                    reserved_sats = r.sats,
                    "a budget reservation expired without being settled or released"
                );
            }
        }
        while self.expired.len() > EXPIRED_KEPT {
            self.expired.pop_first();
        }
        // Only days older than yesterday go, and only beyond the count kept.
        let yesterday = utc_day_start(now).saturating_sub(SECONDS_PER_DAY);
        while self.days.len() > DAYS_KEPT
            && self
                .days
                .first_key_value()
                .is_some_and(|(&day, _)| day < yesterday)
        {
            self.days.pop_first();
        }
        // The index is complete from `self.horizon` on. Only dropping entries makes it less so:
        // while nothing older than the new horizon was ever seen, the old horizon still holds.
        let horizon = now.saturating_sub(horizon_secs);
        if self
            .index
            .first_key_value()
            .is_some_and(|(&t, _)| t < horizon)
        {
            self.index = self.index.split_off(&horizon);
            self.horizon = self.horizon.max(horizon);
        }
    }

    pub(crate) fn day(&self, day_start: u64) -> DayTotals {
        self.days.get(&day_start).copied().unwrap_or_default()
    }

    /// Settled sats of the session that started at `start`.
    pub(crate) fn session_settled(
        &mut self,
        start: u64,
        ledger: Option<&dyn Ledger>,
    ) -> Result<u64, BudgetError> {
        self.uses += 1;
        if let Some(entry) = self.sessions.get_mut(&start) {
            entry.last_used = self.uses;
            return Ok(entry.settled);
        }
        let recent: u64 = self
            .index
            .range(start.max(self.horizon)..)
            .fold(0u64, |sum, (_, sats)| sum.saturating_add(*sats));
        let older = if start >= self.horizon {
            0
        } else {
            let Some(ledger) = ledger else {
                return Err(BudgetError::SessionBeforeHistory {
                    agent: self.name.to_string(),
                    session_start: start,
                    horizon: self.horizon,
                });
            };
            ledger
                .load_agent_range(&self.name, start, self.horizon)
                .map_err(BudgetError::Load)?
                .iter()
                .fold(0u64, |sum, r| sum.saturating_add(r.cost_sats))
        };
        let settled = recent.saturating_add(older);
        if self.sessions.len() >= MAX_SESSIONS
            && let Some((&oldest, _)) = self.sessions.iter().min_by_key(|(_, e)| e.last_used)
        {
            self.sessions.remove(&oldest);
        }
        self.sessions.insert(
            start,
            SessionEntry {
                settled,
                last_used: self.uses,
            },
        );
        Ok(settled)
    }

    /// Counts a settled record in the day, the index and every session it belongs to.
    pub(crate) fn apply(&mut self, record: &CostRecord) {
        let day = self
            .days
            .entry(utc_day_start(record.timestamp))
            .or_default();
        day.sats = day.sats.saturating_add(record.cost_sats);
        day.tokens = day.tokens.saturating_add(record.usage().total());
        if record.timestamp >= self.horizon {
            let second = self.index.entry(record.timestamp).or_default();
            *second = second.saturating_add(record.cost_sats);
        }
        for (start, entry) in &mut self.sessions {
            if record.timestamp >= *start {
                entry.settled = entry.settled.saturating_add(record.cost_sats);
            }
        }
    }

    pub(crate) fn add_reservation(&mut self, reservation: Reservation) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.reserved_sats = self.reserved_sats.saturating_add(reservation.sats);
        self.reserved_tokens = self.reserved_tokens.saturating_add(reservation.tokens);
        self.active.insert(seq, reservation);
        self.expiry.insert((reservation.expires_at, seq));
        seq
    }

    pub(crate) fn take_reservation(&mut self, seq: u64) -> Taken {
        if let Some(r) = self.active.remove(&seq) {
            self.expiry.remove(&(r.expires_at, seq));
            self.reserved_sats = self.reserved_sats.saturating_sub(r.sats);
            self.reserved_tokens = self.reserved_tokens.saturating_sub(r.tokens);
            return Taken::Active { held: r.held };
        }
        if let Some(held) = self.expired.remove(&seq) {
            return Taken::Expired { held };
        }
        if seq < self.next_seq {
            Taken::Finished
        } else {
            Taken::Unknown
        }
    }

    /// Extends reservation `seq`'s lease to `expires_at`. False if it no longer counts.
    pub(crate) fn renew(&mut self, seq: u64, expires_at: u64) -> bool {
        let Some(r) = self.active.get_mut(&seq) else {
            return false;
        };
        self.expiry.remove(&(r.expires_at, seq));
        r.expires_at = r.expires_at.max(expires_at);
        self.expiry.insert((r.expires_at, seq));
        true
    }

    /// Reservation `seq`, while it counts.
    pub(crate) fn reservation(&self, seq: u64) -> Option<Reservation> {
        self.active.get(&seq).copied()
    }

    /// Marks reservation `seq` as written down in the ledger. If it no longer counts (its lease
    /// ran out meanwhile), its expired entry is marked instead.
    pub(crate) fn mark_held(&mut self, seq: u64) {
        if let Some(r) = self.active.get_mut(&seq) {
            r.held = true;
        } else if let Some(held) = self.expired.get_mut(&seq) {
            *held = true;
        }
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.active.len()
    }
}
