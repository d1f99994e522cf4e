//! Agent slots: one state per agent behind its own lock, found by name or by a reservation's
//! slot number.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use ao_types::AgentName;

use super::{CostTracker, ReservationId};
use crate::error::BudgetError;
use crate::state::AgentState;

#[derive(Debug, Default)]
pub(super) struct Agents {
    pub(super) by_name: HashMap<AgentName, u32>,
    pub(super) slots: Vec<Arc<Mutex<AgentState>>>,
}

impl CostTracker {
    /// The slot of agent `name`, created if it has none yet: its number and its state.
    pub(super) fn slot_in(
        agents: &mut Agents,
        name: AgentName,
        horizon: u64,
    ) -> (u32, Arc<Mutex<AgentState>>) {
        if let Some(&no) = agents.by_name.get(&name)
            && let Some(slot) = usize::try_from(no).ok().and_then(|i| agents.slots.get(i))
        {
            return (no, Arc::clone(slot));
        }
        let no = u32::try_from(agents.slots.len()).unwrap_or(u32::MAX);
        let slot = Arc::new(Mutex::new(AgentState::new(name.clone(), horizon)));
        agents.slots.push(Arc::clone(&slot));
        agents.by_name.insert(name, no);
        (no, slot)
    }

    /// The slot of `agent`, by number and state, created if it has none yet.
    pub(super) fn slot_of(
        &self,
        agent: &str,
    ) -> Result<(u32, Arc<Mutex<AgentState>>), BudgetError> {
        {
            let agents = self.agents.read().map_err(|_| BudgetError::Poisoned)?;
            if let Some(&no) = agents.by_name.get(agent)
                && let Some(slot) = usize::try_from(no).ok().and_then(|i| agents.slots.get(i))
            {
                return Ok((no, Arc::clone(slot)));
            }
        }
        let name = AgentName::new(agent).map_err(BudgetError::InvalidAgent)?;
        let mut agents = self.agents.write().map_err(|_| BudgetError::Poisoned)?;
        Ok(Self::slot_in(&mut agents, name, self.initial_horizon))
    }

    pub(super) fn slot(&self, agent: &str) -> Result<Arc<Mutex<AgentState>>, BudgetError> {
        self.slot_of(agent).map(|(_, slot)| slot)
    }

    pub(super) fn reservation_slot(
        &self,
        id: ReservationId,
    ) -> Result<Arc<Mutex<AgentState>>, BudgetError> {
        if id.tracker != self.id {
            return Err(BudgetError::UnknownReservation { id });
        }
        let agents = self.agents.read().map_err(|_| BudgetError::Poisoned)?;
        usize::try_from(id.slot)
            .ok()
            .and_then(|i| agents.slots.get(i))
            .cloned()
            .ok_or(BudgetError::UnknownReservation { id })
    }
}

pub(super) fn lock(slot: &Mutex<AgentState>) -> Result<MutexGuard<'_, AgentState>, BudgetError> {
    slot.lock().map_err(|_| BudgetError::Poisoned)
}
