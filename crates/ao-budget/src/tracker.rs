use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ao_types::{Report, SECONDS_PER_DAY, SharedClock, SystemClock, utc_day_end, utc_day_start};

use crate::config::{BudgetConfig, BudgetStatus, admits, percent, status_of};
use crate::error::BudgetError;
use crate::ledger::Ledger;
use crate::record::{CostRecord, Hold};
use crate::state::{AgentState, Reservation, Taken};

mod durable;
mod slots;
mod warning;

use durable::LedgerWrite;
pub use durable::Unwritten;
use slots::{Agents, lock};

/// How long a reservation counts before it expires unless settled or released: 10 minutes.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(600);

/// How far back the tracker keeps a per-second index of spend in memory, so that a session that
/// started within it is answered without reading the ledger: 7 days.
pub const DEFAULT_SESSION_HORIZON: Duration = Duration::from_secs(7 * SECONDS_PER_DAY);

/// Tells trackers apart, so that one tracker's reservation id is unknown to another.
static NEXT_TRACKER: AtomicU64 = AtomicU64::new(1);

/// A reservation admitted by [`CostTracker::reserve`], to be settled or released exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReservationId {
    tracker: u64,
    slot: u32,
    seq: u64,
}

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}-{}-{}", self.tracker, self.slot, self.seq)
    }
}

/// Tracks what each agent spends and enforces its budgets.
///
/// Used through `&self` from any number of threads (`Send + Sync`). Each agent's state has its own
/// lock, so agents do not wait for each other; every decision about one agent is atomic.
///
/// ```
/// use ao_budget::{BudgetConfig, BudgetError, CostRecord, CostTracker};
/// use ao_types::BackendProvider;
///
/// let tracker = CostTracker::new().with_default_budget(BudgetConfig {
///     daily_limit_sats: 1_000,
///     session_limit_sats: 100,
///     warn_threshold_pct: 80,
/// });
/// let session = 1_700_000_000;
/// let id = tracker.reserve("oracle", session, 60)?;
/// // A second estimate that would pass the session limit is refused while the first is in flight.
/// assert!(matches!(
///     tracker.reserve("oracle", session, 60),
///     Err(BudgetError::SessionExceeded { .. })
/// ));
/// tracker.settle(id, CostRecord {
///     agent_name: "oracle".into(),
///     backend: BackendProvider::Codex,
///     input_tokens: 10_000,
///     output_tokens: 1_000,
///     cost_sats: 45,
///     timestamp: session + 5,
/// })?;
/// assert_eq!(tracker.session_total("oracle", session), 45);
/// # Ok::<(), BudgetError>(())
/// ```
pub struct CostTracker {
    id: u64,
    default_budget: BudgetConfig,
    budgets: HashMap<String, BudgetConfig>,
    default_token_cap: Option<u64>,
    token_caps: HashMap<String, u64>,
    lease_secs: u64,
    horizon_secs: u64,
    clock: SharedClock,
    ledger: Option<Arc<dyn Ledger>>,
    /// The oldest second whose spend a new agent slot may assume it has seen.
    initial_horizon: u64,
    agents: RwLock<Agents>,
    /// Records counted in memory whose ledger write failed, oldest first.
    pending: Mutex<Vec<LedgerWrite>>,
    degraded: AtomicBool,
    /// Random per tracker: makes hold ids unique across restarts and processes.
    incarnation: u64,
    /// Holds a crash left in the ledger, charged when it was opened, until taken.
    recovered: Mutex<Vec<Hold>>,
}

impl fmt::Debug for CostTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CostTracker")
            .field("default_budget", &self.default_budget)
            .field("budgets", &self.budgets)
            .field("lease_secs", &self.lease_secs)
            .field("ledger", &self.ledger)
            .field("degraded", &self.degraded.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for CostTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl CostTracker {
    /// A tracker with the default budget ([`BudgetConfig::default`]), the system clock, and no
    /// ledger: spend is kept in memory only until [`with_ledger`](CostTracker::with_ledger).
    pub fn new() -> Self {
        Self {
            id: NEXT_TRACKER.fetch_add(1, Ordering::Relaxed),
            default_budget: BudgetConfig::default(),
            budgets: HashMap::new(),
            default_token_cap: None,
            token_caps: HashMap::new(),
            lease_secs: DEFAULT_LEASE.as_secs(),
            horizon_secs: DEFAULT_SESSION_HORIZON.as_secs(),
            clock: Arc::new(SystemClock),
            ledger: None,
            initial_horizon: 0,
            agents: RwLock::new(Agents::default()),
            pending: Mutex::new(Vec::new()),
            degraded: AtomicBool::new(false),
            incarnation: rand::random(),
            recovered: Mutex::new(Vec::new()),
        }
    }

    /// Sets the budget of every agent that has no budget of its own.
    pub fn with_default_budget(mut self, budget: BudgetConfig) -> Self {
        self.default_budget = budget;
        self
    }

    /// Sets `agent`'s own budget.
    pub fn with_budget(mut self, agent: impl Into<String>, budget: BudgetConfig) -> Self {
        self.budgets.insert(agent.into(), budget);
        self
    }

    /// Caps the tokens every agent without a cap of its own may use per UTC day, so that free
    /// backends cannot run without limit. The cap counts settled and reserved tokens; reaching it
    /// (`used >= cap`) refuses further reservations.
    pub fn with_default_daily_token_cap(mut self, tokens: u64) -> Self {
        self.default_token_cap = Some(tokens);
        self
    }

    /// Caps the tokens `agent` may use per UTC day.
    pub fn with_daily_token_cap(mut self, agent: impl Into<String>, tokens: u64) -> Self {
        self.token_caps.insert(agent.into(), tokens);
        self
    }

    /// Sets how long a reservation counts before it expires unless settled or released (default
    /// [`DEFAULT_LEASE`], 10 minutes). Whole seconds; at least one.
    pub fn with_reservation_lease(mut self, lease: Duration) -> Self {
        self.lease_secs = lease.as_secs().max(1);
        self
    }

    /// Sets how far back spend is indexed in memory (default [`DEFAULT_SESSION_HORIZON`], 7 days,
    /// and never less than one day). Sessions that started earlier are answered from the ledger.
    pub fn with_session_horizon(mut self, horizon: Duration) -> Self {
        self.horizon_secs = horizon.as_secs().max(SECONDS_PER_DAY);
        self
    }

    /// Sets the clock (default: the system clock). Set it before
    /// [`with_ledger`](CostTracker::with_ledger), which reads history up to the clock's now.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Makes spend durable in `ledger`, and reads recent spend back from it: today's spend and
    /// every session that started within the session horizon count exactly as they did before the
    /// restart.
    ///
    /// Fails when the ledger cannot be read or holds a record that is not valid; a tracker that
    /// could not load its history would admit spend it should refuse.
    pub fn with_ledger(mut self, ledger: impl Ledger + 'static) -> Result<Self, BudgetError> {
        let now = self.clock.now()?;
        let from = now
            .saturating_sub(self.horizon_secs)
            .min(utc_day_start(now));
        let records = ledger
            .load_range(from, u64::MAX)
            .map_err(BudgetError::Load)?;
        self.initial_horizon = from;
        self.agents = RwLock::new(Agents::default());
        {
            let mut agents = self.agents.write().map_err(|_| BudgetError::Poisoned)?;
            for record in &records {
                let name = record.validate()?;
                let (_, slot) = Self::slot_in(&mut agents, name, from);
                lock(&slot)?.apply(record);
            }
        }
        self.ledger = Some(Arc::new(ledger));
        let recovered = self.recover_holds()?;
        {
            let mut agents = self.agents.write().map_err(|_| BudgetError::Poisoned)?;
            for hold in &recovered {
                let record = hold.charge();
                let name = record.validate()?;
                let (_, slot) = Self::slot_in(&mut agents, name, from);
                lock(&slot)?.apply(&record);
            }
        }
        self.recovered = Mutex::new(recovered);
        Ok(self)
    }

    /// The clock the tracker reads: its "today", leases and horizon all come from it.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The budget that applies to `agent`.
    pub fn budget_for(&self, agent: &str) -> BudgetConfig {
        self.budgets
            .get(agent)
            .copied()
            .unwrap_or(self.default_budget)
    }

    /// The daily token cap that applies to `agent`, if any.
    pub fn token_cap_for(&self, agent: &str) -> Option<u64> {
        self.token_caps
            .get(agent)
            .copied()
            .or(self.default_token_cap)
    }

    /// Records spend that happened, without a reservation. Spend is always recorded, even past a
    /// limit: the money is gone either way, and the next check refuses.
    ///
    /// With a ledger, `Ok` means the record is durable. [`BudgetError::NotDurable`] means it was
    /// counted but not yet written.
    pub fn record(&self, record: CostRecord) -> Result<(), BudgetError> {
        let name = record.validate()?;
        let now = self.clock.now()?;
        let slot = self.slot(name.as_str())?;
        {
            let mut state = lock(&slot)?;
            state.maintain(now, self.horizon_secs);
            let before = self.percentages(&mut state, None, now)?;
            state.apply(&record);
            self.warn_on_crossing(&mut state, before, None, now)?;
        }
        self.persist(LedgerWrite {
            record: Some(record),
            hold: None,
        })
    }

    /// Reserves `estimate_sats` for a call of `agent` in the session that started at
    /// `session_start`.
    ///
    /// Admitted only if settled spend plus outstanding reservations plus the estimate stays within
    /// both the daily and the session limit, and neither is already reached. The check and the
    /// reservation are one atomic step per agent, so concurrent callers can never together pass a
    /// limit. Refused with [`BudgetError::DailyExceeded`] (checked first) or
    /// [`BudgetError::SessionExceeded`], or [`BudgetError::DailyTokensExceeded`] when a token cap
    /// is reached.
    pub fn reserve(
        &self,
        agent: &str,
        session_start: u64,
        estimate_sats: u64,
    ) -> Result<ReservationId, BudgetError> {
        self.reserve_with_tokens(agent, session_start, estimate_sats, 0)
    }

    /// Like [`reserve`](CostTracker::reserve), also reserving `estimate_tokens` against the agent's
    /// daily token cap.
    ///
    /// Every reservation holds at least 1 sat (and 1 token where a cap applies), so that calls
    /// estimated at nothing are still bounded in number by the budget. An estimate below the real
    /// cost is the caller's risk: the real cost is recorded at `settle`, and refuses what follows.
    pub fn reserve_with_tokens(
        &self,
        agent: &str,
        session_start: u64,
        estimate_sats: u64,
        estimate_tokens: u64,
    ) -> Result<ReservationId, BudgetError> {
        let estimate_sats = estimate_sats.max(1);
        let estimate_tokens = estimate_tokens.max(1);
        let now = self.clock.now()?;
        self.ensure_durable()?;
        let (slot_no, slot) = self.slot_of(agent)?;
        let budget = self.budget_for(agent);
        let mut state = lock(&slot)?;
        state.maintain(now, self.horizon_secs);

        let today = state.day(utc_day_start(now));
        let daily_spent = today.sats.saturating_add(state.reserved_sats);
        if !admits(daily_spent, estimate_sats, budget.daily_limit_sats) {
            return Err(BudgetError::DailyExceeded {
                agent: agent.to_owned(),
                limit_sats: budget.daily_limit_sats,
                spent_sats: daily_spent,
                requested_sats: estimate_sats,
                resets_at: utc_day_end(now),
            });
        }
        let session_spent = state
            .session_settled(session_start, self.ledger.as_deref())?
            .saturating_add(state.reserved_sats);
        if !admits(session_spent, estimate_sats, budget.session_limit_sats) {
            return Err(BudgetError::SessionExceeded {
                agent: agent.to_owned(),
                limit_sats: budget.session_limit_sats,
                spent_sats: session_spent,
                requested_sats: estimate_sats,
            });
        }
        if let Some(cap) = self.token_cap_for(agent) {
            let used = today.tokens.saturating_add(state.reserved_tokens);
            if !admits(used, estimate_tokens, cap) {
                return Err(BudgetError::DailyTokensExceeded {
                    agent: agent.to_owned(),
                    limit_tokens: cap,
                    used_tokens: used,
                    requested_tokens: estimate_tokens,
                    resets_at: utc_day_end(now),
                });
            }
        }
        let before = (
            percent(session_spent, budget.session_limit_sats),
            percent(daily_spent, budget.daily_limit_sats),
        );
        let seq = state.add_reservation(Reservation {
            sats: estimate_sats,
            tokens: estimate_tokens,
            expires_at: now.saturating_add(self.lease_secs),
            held: false,
        });
        self.warn_on_crossing(&mut state, before, Some(session_start), now)?;
        Ok(ReservationId {
            tracker: self.id,
            slot: slot_no,
            seq,
        })
    }

    /// Replaces reservation `id` with the real cost in `record`, which may be higher than the
    /// estimate: spend that happened is always recorded.
    ///
    /// A reservation whose lease ran out is still settled (the spend happened). Settling twice, or
    /// an id this tracker never issued, is an error; so is a record of another agent. With a
    /// ledger, `Ok` means the record is durable.
    pub fn settle(&self, id: ReservationId, record: CostRecord) -> Result<(), BudgetError> {
        let unwritten = self.settle_counted(id, record)?;
        self.write(unwritten)
    }

    /// The first half of [`settle`](CostTracker::settle): the record counts in every total when
    /// this returns, but is not yet in the ledger. Pass the result to
    /// [`write`](CostTracker::write), on any thread, to make it durable: a server can answer its
    /// client between the two.
    pub fn settle_counted(
        &self,
        id: ReservationId,
        record: CostRecord,
    ) -> Result<Unwritten, BudgetError> {
        let name = record.validate()?;
        let now = self.clock.now()?;
        let slot = self.reservation_slot(id)?;
        let mut state = lock(&slot)?;
        // Checked before the reservation is taken, so a mismatched record changes nothing.
        if state.name != name {
            return Err(BudgetError::ReservationAgentMismatch {
                id,
                reserved_for: state.name.to_string(),
                record_agent: name.into_string(),
            });
        }
        state.maintain(now, self.horizon_secs);
        let before = self.percentages(&mut state, None, now)?;
        let held = match state.take_reservation(id.seq) {
            Taken::Active { held } | Taken::Expired { held } => held,
            Taken::Finished => return Err(BudgetError::ReservationFinished { id }),
            Taken::Unknown => return Err(BudgetError::UnknownReservation { id }),
        };
        state.apply(&record);
        self.warn_on_crossing(&mut state, before, None, now)?;
        Ok(Unwritten::new(record, self.held_id(id, held)))
    }

    /// The second half of [`settle`](CostTracker::settle): writes a counted record to the ledger.
    /// `Ok` means it is durable.
    pub fn write(&self, unwritten: Unwritten) -> Result<(), BudgetError> {
        self.persist(unwritten.into())
    }

    /// Extends reservation `id`'s lease by a full lease from now, for a call that is still running
    /// (a long stream). Fails if the reservation no longer counts.
    pub fn renew(&self, id: ReservationId) -> Result<(), BudgetError> {
        let now = self.clock.now()?;
        let slot = self.reservation_slot(id)?;
        let mut state = lock(&slot)?;
        state.maintain(now, self.horizon_secs);
        if state.renew(id.seq, now.saturating_add(self.lease_secs)) {
            Ok(())
        } else {
            Err(BudgetError::ReservationFinished { id })
        }
    }

    /// The lease of new reservations, in seconds.
    pub fn lease_secs(&self) -> u64 {
        self.lease_secs
    }

    /// Drops reservation `id` without recording spend: the call did not happen or cost nothing.
    /// Releasing twice, or an id this tracker never issued, is an error; releasing a reservation
    /// whose lease ran out is not. A held reservation's hold is removed from the ledger (a write:
    /// call it off the async executor).
    pub fn release(&self, id: ReservationId) -> Result<(), BudgetError> {
        let slot = self.reservation_slot(id)?;
        let held = {
            let mut state = lock(&slot)?;
            match state.take_reservation(id.seq) {
                Taken::Active { held } | Taken::Expired { held } => held,
                Taken::Finished => return Err(BudgetError::ReservationFinished { id }),
                Taken::Unknown => return Err(BudgetError::UnknownReservation { id }),
            }
        };
        match self.held_id(id, held) {
            Some(hold) => self.persist(LedgerWrite {
                record: None,
                hold: Some(hold),
            }),
            None => Ok(()),
        }
    }

    /// The holds a crash left in the ledger, which were charged at their estimates when the
    /// tracker opened it; each is returned once, for the caller to audit.
    pub fn take_recovered(&self) -> Vec<Hold> {
        self.recovered
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    /// The agent's spend in the session that started at `session_start`: every settled record with
    /// `timestamp >= session_start`, plus outstanding reservations.
    ///
    /// When the total cannot be computed (clock or ledger failure), this answers `u64::MAX`, which
    /// every limit refuses; [`try_session_total`](CostTracker::try_session_total) gives the error.
    pub fn session_total(&self, agent: &str, session_start: u64) -> u64 {
        self.try_session_total(agent, session_start)
            .unwrap_or_else(|e| fail_closed_total(agent, &e))
    }

    /// The agent's spend in the current UTC day, settled plus outstanding reservations. Answers
    /// `u64::MAX` when it cannot be computed; see [`try_daily_total`](CostTracker::try_daily_total).
    pub fn daily_total(&self, agent: &str) -> u64 {
        self.try_daily_total(agent)
            .unwrap_or_else(|e| fail_closed_total(agent, &e))
    }

    /// [`session_total`](CostTracker::session_total), with the error when it cannot be computed.
    pub fn try_session_total(&self, agent: &str, session_start: u64) -> Result<u64, BudgetError> {
        self.with_agent(agent, |state, _| {
            Ok(state
                .session_settled(session_start, self.ledger.as_deref())?
                .saturating_add(state.reserved_sats))
        })
    }

    /// [`daily_total`](CostTracker::daily_total), with the error when it cannot be computed.
    pub fn try_daily_total(&self, agent: &str) -> Result<u64, BudgetError> {
        self.with_agent(agent, |state, now| {
            Ok(state
                .day(utc_day_start(now))
                .sats
                .saturating_add(state.reserved_sats))
        })
    }

    /// Tokens the agent used or reserved in the current UTC day.
    pub fn daily_tokens(&self, agent: &str) -> Result<u64, BudgetError> {
        self.with_agent(agent, |state, now| {
            Ok(state
                .day(utc_day_start(now))
                .tokens
                .saturating_add(state.reserved_tokens))
        })
    }

    /// Outstanding reservations of the agent.
    pub fn outstanding_reservations(&self, agent: &str) -> Result<usize, BudgetError> {
        self.with_agent(agent, |state, _| Ok(state.outstanding()))
    }

    /// Where the agent stands: [`BudgetStatus::DailyExceeded`] first, then
    /// [`BudgetStatus::SessionExceeded`], then [`BudgetStatus::Warning`] when either percentage is
    /// at or above the warning threshold, else [`BudgetStatus::Ok`]. Outstanding reservations
    /// count.
    ///
    /// When the status cannot be computed, this answers [`BudgetStatus::DailyExceeded`] (fail
    /// closed); [`try_check_budget`](CostTracker::try_check_budget) gives the error.
    pub fn check_budget(&self, agent: &str, session_start: u64) -> BudgetStatus {
        self.try_check_budget(agent, session_start)
            .unwrap_or_else(|e| {
                tracing::error!(agent, error = %Report::new(&e), "budget check failed; refusing");
                BudgetStatus::DailyExceeded
            })
    }

    /// [`check_budget`](CostTracker::check_budget), with the error when it cannot be computed.
    pub fn try_check_budget(
        &self,
        agent: &str,
        session_start: u64,
    ) -> Result<BudgetStatus, BudgetError> {
        let budget = self.budget_for(agent);
        self.with_agent(agent, |state, now| {
            let daily = state
                .day(utc_day_start(now))
                .sats
                .saturating_add(state.reserved_sats);
            let session = state
                .session_settled(session_start, self.ledger.as_deref())?
                .saturating_add(state.reserved_sats);
            Ok(status_of(budget, session, daily))
        })
    }

    /// Runs `read` on `agent`'s state, brought up to `now` (expired leases dropped), under its
    /// lock.
    fn with_agent<T>(
        &self,
        agent: &str,
        read: impl FnOnce(&mut AgentState, u64) -> Result<T, BudgetError>,
    ) -> Result<T, BudgetError> {
        let now = self.clock.now()?;
        let slot = self.slot(agent)?;
        let mut state = lock(&slot)?;
        state.maintain(now, self.horizon_secs);
        read(&mut state, now)
    }
}

fn fail_closed_total(agent: &str, error: &BudgetError) -> u64 {
    tracing::error!(agent, error = %Report::new(error), "budget total could not be computed; answering u64::MAX");
    u64::MAX
}
