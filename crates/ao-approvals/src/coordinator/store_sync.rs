//! The coordinator's memory and the store: what a process holds, how it changes a request
//! (stored first, compare-and-swap, then in memory), and how it takes up what another process
//! stored, checked again under the policy in force.

use std::collections::HashMap;
use std::sync::MutexGuard;

use ao_audit::AuditEvent;
use ao_identity::parse_public_key;
use nostr::Event;
use tokio::sync::watch;

use super::SolverAgentCoordinator;
use crate::error::{ApprovalError, ApprovalStoreError};
use crate::record::{ApprovalPolicy, ApprovalRecord, ApprovalStatus, Verdict};
use crate::signed::parse_decision_event;

pub(super) struct Entry {
    pub(super) record: ApprovalRecord,
    pub(super) order: u64,
    pub(super) watch: watch::Sender<ApprovalStatus>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) entries: HashMap<String, Entry>,
    next_order: u64,
}

impl State {
    /// Forgets the requests nothing more can happen to; the store keeps them.
    pub(super) fn forget_settled(&mut self, now: u64, usable_for_secs: u64) {
        self.entries
            .retain(|_, e| !e.record.is_settled_at(now, usable_for_secs));
    }

    pub(super) fn insert(&mut self, record: ApprovalRecord, now: u64) {
        let status = record.status_at(now);
        let order = self.next_order;
        self.next_order += 1;
        self.entries.insert(
            record.id().to_owned(),
            Entry {
                record,
                order,
                watch: watch::Sender::new(status),
            },
        );
    }
}

impl SolverAgentCoordinator {
    pub(super) fn apply_signed(
        &self,
        event: &Event,
        expect: Option<Verdict>,
    ) -> Result<ApprovalStatus, ApprovalError> {
        let id = parse_decision_event(event)?.request_id;
        self.mutate(&id, |record, now| record.apply_signed(event, expect, now))
    }

    /// Changes a request through `change` on a copy, under the policy in force: the copy is
    /// stored with its audit entry first (compare-and-swap on the version it was read at), and
    /// only then replaces the request in memory and wakes waiters. When the store holds a newer
    /// version (another process decided meanwhile), that version is taken up and `change` is
    /// tried once more on it. A refused or unstored change leaves everything as it was.
    pub(super) fn mutate<T>(
        &self,
        id: &str,
        change: impl Fn(&mut ApprovalRecord, u64) -> Result<(T, AuditEvent), ApprovalError>,
    ) -> Result<T, ApprovalError> {
        let now = self.clock.now()?;
        let policy = self.policy();
        for attempt in 0..2 {
            let mut state = self.lock()?;
            if !state.entries.contains_key(id)
                && let Some(stored) = self.stored(id)?
            {
                state.insert(stored, now);
            }
            let entry = state
                .entries
                .get_mut(id)
                .ok_or_else(|| ApprovalError::NotFound { id: id.to_owned() })?;
            let mut next = entry.record.clone();
            next.policy = policy.clone();
            next.version = entry.record.version.saturating_add(1);
            let (value, audit) = change(&mut next, now)?;
            match self.store.save(&next, audit) {
                Ok(_) => {
                    let status = next.status_at(now);
                    entry.record = next;
                    entry.watch.send_replace(status);
                    return Ok(value);
                }
                Err(ApprovalStoreError::Conflict { .. }) if attempt == 0 => {
                    drop(state);
                    self.refresh(id)?;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ApprovalError::Store(ApprovalStoreError::Conflict {
            request_id: id.to_owned(),
        }))
    }

    /// Request `id` as the store holds it, checked again under the policy in force; `None` if
    /// the store has no such request of this agent.
    pub(super) fn stored(&self, id: &str) -> Result<Option<ApprovalRecord>, ApprovalError> {
        Ok(self
            .store
            .load(id)?
            .filter(|r| r.agent == self.identity.name)
            .map(|r| r.reverified(&self.policy())))
    }

    /// Takes up what another process (the `ao approvals` CLI, another gateway on the same
    /// database) stored for request `id` since this process read it: only what verifies under
    /// the policy in force, and only moving forward (see [`ApprovalRecord::merged_forward`]).
    pub(super) fn refresh(&self, id: &str) -> Result<(), ApprovalError> {
        let Some(stored) = self.stored(id)? else {
            return Ok(());
        };
        let now = self.clock.now()?;
        let mut state = self.lock()?;
        match state.entries.get_mut(id) {
            Some(entry) if stored.version > entry.record.version => {
                let merged = entry.record.merged_forward(stored);
                entry.watch.send_replace(merged.status_at(now));
                entry.record = merged;
            }
            Some(_) => {}
            None => state.insert(stored, now),
        }
        Ok(())
    }

    pub(super) fn policy(&self) -> ApprovalPolicy {
        let agent = parse_public_key(&self.identity.agent_pubkey).ok();
        // The agent's own key never approves for it: that operator key is ignored (and unsigned
        // approvals stay off, below), so nothing can approve until the configuration is fixed.
        let operator = self
            .identity
            .operator_pubkey
            .as_deref()
            .and_then(|key| parse_public_key(key).ok())
            .filter(|key| Some(*key) != agent)
            .map(|key| key.to_hex());
        let (approvers, required) = match (&self.guardians, operator) {
            (Some((keys, k)), _) => (keys.clone(), *k),
            (None, Some(operator)) => (vec![operator], 1),
            (None, None) => (Vec::new(), 1),
        };
        // An operator key that does not parse still forbids unsigned approvals: fail closed.
        let default_unsigned = self.guardians.is_none() && self.identity.operator_pubkey.is_none();
        ApprovalPolicy {
            approvers,
            required,
            allow_unsigned: self.unsigned_override.unwrap_or(default_unsigned),
            max_event_age_secs: self.max_event_age_secs,
        }
    }

    pub(super) fn lock(&self) -> Result<MutexGuard<'_, State>, ApprovalError> {
        self.state.lock().map_err(|_| ApprovalError::Poisoned)
    }
}
