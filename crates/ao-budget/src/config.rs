use serde::{Deserialize, Serialize};

/// An agent's spending limits, in sats.
///
/// A limit is reached when `spent >= limit`: from then on nothing more is admitted, and a limit of
/// `0` admits nothing at all. Use `u64::MAX` for "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Most an agent may spend in one UTC day.
    pub daily_limit_sats: u64,
    /// Most an agent may spend in one session.
    pub session_limit_sats: u64,
    /// The percentage of either limit at which warnings start, such as 80.
    pub warn_threshold_pct: u8,
}

impl Default for BudgetConfig {
    /// 100,000 sats a day, 10,000 a session, warnings from 80 %.
    fn default() -> Self {
        Self {
            daily_limit_sats: 100_000,
            session_limit_sats: 10_000,
            warn_threshold_pct: 80,
        }
    }
}

/// Where an agent stands against its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BudgetStatus {
    /// Below the warning threshold of both limits.
    Ok,
    /// At or above the warning threshold of at least one limit, but within both.
    Warning {
        /// Session spend as a percentage of the session limit, rounded down, at most 100.
        session_pct: u8,
        /// Daily spend as a percentage of the daily limit, rounded down, at most 100.
        daily_pct: u8,
    },
    /// The session limit is reached.
    SessionExceeded,
    /// The daily limit is reached. Reported before [`BudgetStatus::SessionExceeded`]: it lasts
    /// longer.
    DailyExceeded,
}

impl BudgetStatus {
    /// Whether no more spend is admitted.
    pub fn is_exceeded(&self) -> bool {
        matches!(
            self,
            BudgetStatus::SessionExceeded | BudgetStatus::DailyExceeded
        )
    }
}

/// `spent` as a percentage of `limit`, rounded down and capped at 100; a limit of 0 is 100 %.
pub(crate) fn percent(spent: u64, limit: u64) -> u8 {
    if limit == 0 {
        return 100;
    }
    let pct = u128::from(spent) * 100 / u128::from(limit);
    u8::try_from(pct.min(100)).unwrap_or(100)
}

/// Whether `requested` more may be admitted on top of `spent` under `limit`: the limit is not yet
/// reached, and the request stays within it.
pub(crate) fn admits(spent: u64, requested: u64, limit: u64) -> bool {
    spent < limit
        && spent
            .checked_add(requested)
            .is_some_and(|total| total <= limit)
}

/// Which limits apply to which agent: a default budget and token cap, and each agent's own.
/// [`CostTracker`](crate::CostTracker) keeps the same in itself; a budget kept elsewhere (shared
/// by several processes in a database) reads its limits from this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// The budget of agents without their own.
    pub default_budget: BudgetConfig,
    /// Each agent's own budget.
    pub budgets: std::collections::HashMap<String, BudgetConfig>,
    /// The daily token cap of agents without their own.
    pub default_token_cap: Option<u64>,
    /// Each agent's own daily token cap.
    pub token_caps: std::collections::HashMap<String, u64>,
}

impl Limits {
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
}

/// The status of spend `session` and `daily` under `budget`, with the precedence of
/// `docs/DECISIONS.md` (Budgets).
pub fn status_of(budget: BudgetConfig, session: u64, daily: u64) -> BudgetStatus {
    if daily >= budget.daily_limit_sats {
        return BudgetStatus::DailyExceeded;
    }
    if session >= budget.session_limit_sats {
        return BudgetStatus::SessionExceeded;
    }
    let session_pct = percent(session, budget.session_limit_sats);
    let daily_pct = percent(daily, budget.daily_limit_sats);
    if session_pct >= budget.warn_threshold_pct || daily_pct >= budget.warn_threshold_pct {
        BudgetStatus::Warning {
            session_pct,
            daily_pct,
        }
    } else {
        BudgetStatus::Ok
    }
}
