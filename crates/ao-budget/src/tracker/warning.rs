//! The budget warning: logged when spend crosses the warning percentage of a limit.

use ao_types::utc_day_start;

use super::CostTracker;
use crate::config::percent;
use crate::error::BudgetError;
use crate::state::AgentState;

impl CostTracker {
    /// Session and daily percentages before a change, for the warning on crossing.
    pub(super) fn percentages(
        &self,
        state: &mut AgentState,
        session_start: Option<u64>,
        now: u64,
    ) -> Result<(u8, u8), BudgetError> {
        let budget = self.budget_for(&state.name);
        let daily = state
            .day(utc_day_start(now))
            .sats
            .saturating_add(state.reserved_sats);
        let session = match session_start {
            Some(start) => state
                .session_settled(start, self.ledger.as_deref())?
                .saturating_add(state.reserved_sats),
            None => 0,
        };
        Ok((
            percent(session, budget.session_limit_sats),
            percent(daily, budget.daily_limit_sats),
        ))
    }

    /// Logs a warning when a change moves either percentage from below the warning threshold to
    /// at or above it.
    pub(super) fn warn_on_crossing(
        &self,
        state: &mut AgentState,
        before: (u8, u8),
        session_start: Option<u64>,
        now: u64,
    ) -> Result<(), BudgetError> {
        let budget = self.budget_for(&state.name);
        let after = self.percentages(state, session_start, now)?;
        let threshold = budget.warn_threshold_pct;
        let crossed = |b: u8, a: u8| b < threshold && a >= threshold;
        if (session_start.is_some() && crossed(before.0, after.0)) || crossed(before.1, after.1) {
            tracing::warn!(
                agent = %state.name,
                session_pct = after.0,
                daily_pct = after.1,
                warn_threshold_pct = threshold,
                "agent is approaching its budget"
            );
        }
        Ok(())
    }
}
