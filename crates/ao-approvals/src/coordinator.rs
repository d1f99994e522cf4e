use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ao_audit::BrokenLink;
use ao_identity::{AgentIdentity, DEFAULT_APPROVAL_ABOVE_SATS, parse_public_key};
use ao_types::{Report, SharedClock, SystemClock};
use nostr::Event;

use crate::error::ApprovalError;
use crate::record::{
    ApprovalRecord, ApprovalStatus, PendingApproval, Use, Verdict, new_request_id,
};
use crate::store::{ApprovalStore, MemoryApprovalStore};

mod store_sync;

use store_sync::State;

/// How long a request waits for a decision before it expires: 24 hours.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3_600);

/// How old a signed decision may be when it is presented: 1 hour.
pub const DEFAULT_MAX_EVENT_AGE: Duration = Duration::from_secs(3_600);

/// How many undecided requests an agent may have at once: 64.
pub const DEFAULT_MAX_PENDING: usize = 64;

/// How long an approved request stays usable after its decision: 1 hour.
pub const DEFAULT_USABLE_FOR: Duration = Duration::from_secs(3_600);

/// Who decides when no key signs: the caller of `approve` or `reject`.
const LOCAL_OPERATOR: &str = "local operator";

/// The spec's approval coordinator for one agent: files requests, takes decisions, and keeps both.
///
/// Used through `&self` from any number of threads and tasks (`Send + Sync`).
///
/// ```
/// use ao_approvals::{ApprovalStatus, SolverAgentCoordinator};
/// use ao_identity::{AgentIdentity, AutonomyLevel};
///
/// let identity = AgentIdentity::new("pk", "Agent", "model")
///     .with_autonomy(AutonomyLevel::SemiAutonomous);
/// let coordinator = SolverAgentCoordinator::new(identity);
/// assert!(coordinator.requires_approval("purchase_skill", 5000));
/// let id = coordinator.request_approval("purchase_skill", "Buy a skill", 5000);
/// coordinator.reject(&id)?;
/// assert_eq!(coordinator.status(&id), Some(ApprovalStatus::Rejected));
/// // Deciding twice is an error that changes nothing.
/// assert!(coordinator.approve(&id).is_err());
/// # Ok::<(), ao_approvals::ApprovalError>(())
/// ```
pub struct SolverAgentCoordinator {
    identity: AgentIdentity,
    approval_above_sats: u64,
    expiry_secs: u64,
    max_event_age_secs: u64,
    guardians: Option<(Vec<String>, u32)>,
    unsigned_override: Option<bool>,
    max_pending: usize,
    usable_for_secs: u64,
    clock: SharedClock,
    store: Arc<dyn ApprovalStore>,
    state: Mutex<State>,
}

impl fmt::Debug for SolverAgentCoordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SolverAgentCoordinator")
            .field("agent", &self.identity.name)
            .field("autonomy", &self.identity.autonomy_level)
            .field("approval_above_sats", &self.approval_above_sats)
            .field("guardians", &self.guardians)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl SolverAgentCoordinator {
    /// A coordinator for `identity`: approval threshold 1000 sats, requests expire after 24 hours,
    /// kept in memory until [`with_store`](SolverAgentCoordinator::with_store).
    pub fn new(identity: AgentIdentity) -> Self {
        Self {
            identity,
            approval_above_sats: DEFAULT_APPROVAL_ABOVE_SATS,
            expiry_secs: DEFAULT_EXPIRY.as_secs(),
            max_event_age_secs: DEFAULT_MAX_EVENT_AGE.as_secs(),
            guardians: None,
            unsigned_override: None,
            max_pending: DEFAULT_MAX_PENDING,
            usable_for_secs: DEFAULT_USABLE_FOR.as_secs(),
            clock: Arc::new(SystemClock),
            store: Arc::new(MemoryApprovalStore::new()),
            state: Mutex::new(State::default()),
        }
    }

    /// Sets the cost above which a semi-autonomous agent needs approval (default 1000 sats).
    pub fn with_approval_above_sats(mut self, sats: u64) -> Self {
        self.approval_above_sats = sats;
        self
    }

    /// Sets how long a request waits before it expires (default 24 hours; at least 1 second).
    pub fn with_expiry(mut self, expiry: Duration) -> Self {
        self.expiry_secs = expiry.as_secs().max(1);
        self
    }

    /// Sets how many undecided requests the agent may have at once (default 64; at least 1): a
    /// new request past it is refused with [`ApprovalError::TooManyPending`], so an agent cannot
    /// flood its operator, the store or the audit log.
    pub fn with_max_pending(mut self, max: usize) -> Self {
        self.max_pending = max.max(1);
        self
    }

    /// Sets how long an approved request stays usable after its decision (default 1 hour).
    pub fn with_approval_usable_for(mut self, window: Duration) -> Self {
        self.usable_for_secs = window.as_secs();
        self
    }

    /// Sets how old a signed decision may be when presented (default 1 hour).
    pub fn with_max_event_age(mut self, age: Duration) -> Self {
        self.max_event_age_secs = age.as_secs();
        self
    }

    /// Sets the clock (default: the system clock).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Requires `k` distinct guardians among `pubkeys` (hex or npub) to approve each new request;
    /// one guardian's denial rejects it. The guardians replace the operator as approvers.
    pub fn with_guardians<I, S>(mut self, pubkeys: I, k: u32) -> Result<Self, ApprovalError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut keys: Vec<String> = Vec::new();
        for key in pubkeys {
            let parsed =
                parse_public_key(key.as_ref()).map_err(|e| ApprovalError::InvalidGuardians {
                    reason: e.to_string(),
                })?;
            let hex = parsed.to_hex();
            if parse_public_key(&self.identity.agent_pubkey).is_ok_and(|agent| agent == parsed) {
                return Err(ApprovalError::InvalidGuardians {
                    reason: "the agent's own key cannot be its guardian".into(),
                });
            }
            if keys.contains(&hex) {
                return Err(ApprovalError::InvalidGuardians {
                    reason: format!("guardian `{hex}` is listed twice"),
                });
            }
            keys.push(hex);
        }
        let n = u32::try_from(keys.len()).unwrap_or(u32::MAX);
        if k == 0 || k > n {
            return Err(ApprovalError::InvalidGuardians {
                reason: format!("{k} of {n} guardians can never be met; give 1 <= k <= {n}"),
            });
        }
        self.guardians = Some((keys, k));
        Ok(self)
    }

    /// Whether an unsigned [`approve`](SolverAgentCoordinator::approve) counts. By default it does
    /// only when no operator key and no guardians are configured: otherwise the agent holding the
    /// coordinator could approve itself. Unsigned rejections always count.
    pub fn with_unsigned_approvals(mut self, allowed: bool) -> Self {
        self.unsigned_override = Some(allowed);
        self
    }

    /// Keeps requests and decisions in `store`, and loads this agent's earlier requests from it:
    /// pending requests are pending again after a restart, decided ones keep their decision.
    pub fn with_store(
        mut self,
        store: impl ApprovalStore + 'static,
    ) -> Result<Self, ApprovalError> {
        let now = self.clock.now()?;
        let records = store.load_agent(&self.identity.name)?;
        let policy = self.policy();
        let mut state = State::default();
        for record in records {
            // Nothing read back is trusted: each decision is checked again under the policy in
            // force. What is settled stays in the store until asked for.
            let record = record.reverified(&policy);
            if !record.is_settled_at(now, self.usable_for_secs) {
                state.insert(record, now);
            }
        }
        self.state = Mutex::new(state);
        self.store = Arc::new(store);
        Ok(self)
    }

    /// The agent's identity.
    pub fn identity(&self) -> &AgentIdentity {
        &self.identity
    }

    /// Whether `action` costing `cost_sats` needs approval: always for a supervised agent, above
    /// the threshold for a semi-autonomous one, never for a fully autonomous one.
    pub fn requires_approval(&self, action: &str, cost_sats: u64) -> bool {
        let required = self
            .identity
            .autonomy_level
            .requires_approval(cost_sats, self.approval_above_sats);
        tracing::debug!(agent = %self.identity.name, action, cost_sats, required, "approval check");
        required
    }

    /// Files a request and returns its id.
    ///
    /// If the store cannot take it, the request still waits in memory (it can only be decided,
    /// never approved by default) and the failure is logged; use
    /// [`try_request_approval`](SolverAgentCoordinator::try_request_approval) to get the error.
    /// If the request cannot be filed at all (the clock or the coordinator failed), the failure is
    /// logged and the id returned names no request: it can never be approved.
    pub fn request_approval(
        &self,
        action: &str,
        description: &str,
        cost_estimate_sats: u64,
    ) -> String {
        match self.try_request_approval(action, description, cost_estimate_sats) {
            Ok(id) => id,
            Err(ApprovalError::NotStored { request_id, source }) => {
                tracing::error!(agent = %self.identity.name, %request_id, error = %Report::new(&source), "approval request not stored");
                request_id
            }
            Err(error) => {
                let id = new_request_id();
                tracing::error!(agent = %self.identity.name, request_id = %id, error = %Report::new(&error), "approval request not filed");
                id
            }
        }
    }

    /// Files a request and returns its id.
    ///
    /// When the store cannot save it, the request still waits in memory and the error is
    /// [`ApprovalError::NotStored`], which carries its id. Any other error means no request was
    /// filed.
    pub fn try_request_approval(
        &self,
        action: &str,
        description: &str,
        cost_estimate_sats: u64,
    ) -> Result<String, ApprovalError> {
        self.file(action, description, cost_estimate_sats, None)
    }

    /// [`try_request_approval`](SolverAgentCoordinator::try_request_approval) for one request
    /// whose canonical form hashes to `request_hash`: the approval will cover that request and no
    /// other ([`ApprovalError::Mismatch`]).
    pub fn try_request_approval_for(
        &self,
        action: &str,
        description: &str,
        cost_estimate_sats: u64,
        request_hash: &str,
    ) -> Result<String, ApprovalError> {
        self.file(
            action,
            description,
            cost_estimate_sats,
            Some(request_hash.to_owned()),
        )
    }

    fn file(
        &self,
        action: &str,
        description: &str,
        cost_estimate_sats: u64,
        request_hash: Option<String>,
    ) -> Result<String, ApprovalError> {
        let now = self.clock.now()?;
        let mut state = self.lock()?;
        state.forget_settled(now, self.usable_for_secs);
        let waiting: Vec<u64> = state
            .entries
            .values()
            .filter(|e| e.record.status_at(now) == ApprovalStatus::Pending)
            .map(|e| e.record.expires_at)
            .collect();
        if waiting.len() >= self.max_pending {
            return Err(ApprovalError::TooManyPending {
                agent: self.identity.name.clone(),
                max: self.max_pending,
                retry_after_secs: waiting
                    .iter()
                    .min()
                    .map_or(1, |at| at.saturating_sub(now).max(1)),
            });
        }
        let mut id = new_request_id();
        while state.entries.contains_key(&id) {
            id = new_request_id();
        }
        let record = ApprovalRecord {
            request: PendingApproval {
                request_id: id.clone(),
                action_type: action.to_owned(),
                description: description.to_owned(),
                cost_estimate_sats,
                created_at: now,
            },
            agent: self.identity.name.clone(),
            expires_at: now.saturating_add(self.expiry_secs),
            policy: self.policy(),
            votes: Vec::new(),
            decision: None,
            used_at: None,
            request_hash,
            version: 1,
        };
        let saved = self.store.save(&record, record.filed_event());
        state.insert(record, now);
        match saved {
            Ok(_) => Ok(id),
            Err(source) => Err(ApprovalError::NotStored {
                request_id: id,
                source,
            }),
        }
    }

    /// Pending requests, oldest first. Requests past their expiry are left out (an expiry is a
    /// matter of time: nothing is written). An error (clock, lock) is logged and answers an empty
    /// list: nothing is shown as pending that might not be.
    pub fn list_pending(&self) -> Vec<PendingApproval> {
        self.try_list_pending().unwrap_or_else(|error| {
            tracing::error!(agent = %self.identity.name, error = %Report::new(&error), "cannot list pending approvals");
            Vec::new()
        })
    }

    /// [`list_pending`](SolverAgentCoordinator::list_pending), with the error.
    pub fn try_list_pending(&self) -> Result<Vec<PendingApproval>, ApprovalError> {
        self.pending_page(None, usize::MAX)
    }

    /// At most `limit` pending requests, oldest first, starting after request `after` (the last
    /// id of the previous page; `None` for the first page). Listing writes nothing and holds the
    /// agent's lock only to copy at most its pending requests.
    pub fn pending_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<PendingApproval>, ApprovalError> {
        let now = self.clock.now()?;
        let mut pending: Vec<(u64, u64, PendingApproval)> = {
            let mut state = self.lock()?;
            state.forget_settled(now, self.usable_for_secs);
            state
                .entries
                .values()
                .filter(|e| e.record.status_at(now) == ApprovalStatus::Pending)
                .map(|e| {
                    (
                        e.record.request.created_at,
                        e.order,
                        e.record.request.clone(),
                    )
                })
                .collect()
        };
        pending.sort_by_key(|(created, order, _)| (*created, *order));
        let start = after
            .and_then(|id| pending.iter().position(|(_, _, p)| p.request_id == id))
            .map_or(0, |i| i + 1);
        Ok(pending
            .into_iter()
            .skip(start)
            .take(limit)
            .map(|(_, _, p)| p)
            .collect())
    }

    /// How many requests this process keeps in memory: the pending ones, and approved ones not
    /// yet used nor lapsed. Settled requests are forgotten (the store keeps them), so an agent
    /// that files and abandons requests cannot grow this without bound.
    pub fn held(&self) -> usize {
        let Ok(now) = self.clock.now() else {
            return 0;
        };
        self.lock().map_or(0, |mut state| {
            state.forget_settled(now, self.usable_for_secs);
            state.entries.len()
        })
    }

    /// Where a request stands, or `None` for an unknown id.
    pub fn status(&self, id: &str) -> Option<ApprovalStatus> {
        let now = self.clock.now().ok()?;
        Some(self.record(id)?.status_at(now))
    }

    /// A request with its votes and decision, or `None` for an unknown id. A request this
    /// process has forgotten (settled) is read back from the store and checked again.
    pub fn record(&self, id: &str) -> Option<ApprovalRecord> {
        if let Some(entry) = self.lock().ok()?.entries.get(id) {
            return Some(entry.record.clone());
        }
        self.stored(id).ok().flatten()
    }

    /// Approves a request, as the local operator. Refused once an operator key or guardians are
    /// configured (see [`with_unsigned_approvals`](SolverAgentCoordinator::with_unsigned_approvals)).
    pub fn approve(&self, id: &str) -> Result<(), ApprovalError> {
        self.decide(id, Verdict::Approve, LOCAL_OPERATOR, None)
    }

    /// Rejects a request, as the local operator.
    pub fn reject(&self, id: &str) -> Result<(), ApprovalError> {
        self.decide(id, Verdict::Reject, LOCAL_OPERATOR, None)
    }

    /// Decides a request without a signature, naming who decided and why.
    pub fn decide(
        &self,
        id: &str,
        verdict: Verdict,
        decided_by: &str,
        reason: Option<&str>,
    ) -> Result<(), ApprovalError> {
        let reason = reason.map(str::to_owned);
        self.mutate(id, |record, now| {
            let audit = record.decide_unsigned(verdict, decided_by, reason.clone(), now)?;
            Ok(((), audit))
        })
    }

    /// Applies a signed approval (kind 39213, `["decision", "approved"]`) from the operator or a
    /// guardian. Returns the status after it: `Approved`, or `Pending` while more guardians must
    /// sign. Anything that does not verify is an error that changes nothing.
    pub fn approve_signed(&self, event: &Event) -> Result<ApprovalStatus, ApprovalError> {
        self.apply_signed(event, Some(Verdict::Approve))
    }

    /// Applies a signed denial (`["decision", "denied"]`): the request is rejected.
    pub fn reject_signed(&self, event: &Event) -> Result<ApprovalStatus, ApprovalError> {
        self.apply_signed(event, Some(Verdict::Reject))
    }

    /// Applies a signed decision, whichever it says.
    pub fn decide_signed(&self, event: &Event) -> Result<ApprovalStatus, ApprovalError> {
        self.apply_signed(event, None)
    }

    /// Uses approved request `id` for one call of `action` estimated at `cost_sats`. The use is
    /// stored with the request (and audited) before this returns, so the approval cannot allow a
    /// second call, not even after a restart.
    pub fn consume(&self, id: &str, action: &str, cost_sats: u64) -> Result<(), ApprovalError> {
        self.consume_for(id, action, cost_sats, None)
    }

    /// [`consume`](SolverAgentCoordinator::consume) for the request whose canonical form hashes
    /// to `request_hash`: refused with [`ApprovalError::Mismatch`] unless the approval was filed
    /// for that very request. A decision made elsewhere (the CLI, another process) is taken up
    /// first, once it verifies under the policy in force.
    pub fn consume_for(
        &self,
        id: &str,
        action: &str,
        cost_sats: u64,
        request_hash: Option<&str>,
    ) -> Result<(), ApprovalError> {
        let call = Use {
            action,
            cost_sats,
            request_hash,
            usable_for_secs: self.usable_for_secs,
        };
        self.refresh(id)?;
        self.mutate(id, |record, now| {
            let audit = record.consume(&call, now)?;
            Ok(((), audit))
        })
    }

    /// Waits until request `id` is decided or expires, or `timeout` passes. Wakes as soon as the
    /// decision is made, from any thread or task; it does not poll.
    ///
    /// Returns the final status (`Approved`, `Rejected` or `Expired`), or
    /// [`ApprovalError::Timeout`] if it is still pending when the wait ends.
    pub async fn wait_for_decision(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<ApprovalStatus, ApprovalError> {
        let (mut changes, expires_at) = {
            let state = self.lock()?;
            let entry = state
                .entries
                .get(id)
                .ok_or_else(|| ApprovalError::NotFound { id: id.to_owned() })?;
            (entry.watch.subscribe(), entry.record.expires_at)
        };
        // Subscribed first, so a decision made from here on is not missed.
        let status = self
            .status(id)
            .ok_or_else(|| ApprovalError::NotFound { id: id.to_owned() })?;
        if status != ApprovalStatus::Pending {
            return Ok(status);
        }
        let now = self.clock.now()?;
        let until_expiry = Duration::from_secs(expires_at.saturating_sub(now));
        let deadline = tokio::time::Instant::now() + timeout.min(until_expiry);
        // Ends at the deadline (`Err`), or if the coordinator went away (`Ok(Err)`).
        while let Ok(Ok(())) = tokio::time::timeout_at(deadline, changes.changed()).await {
            let status = *changes.borrow_and_update();
            if status != ApprovalStatus::Pending {
                return Ok(status);
            }
        }
        match self.status(id) {
            Some(ApprovalStatus::Pending) => Err(ApprovalError::Timeout { id: id.to_owned() }),
            Some(status) => Ok(status),
            None => Err(ApprovalError::NotFound { id: id.to_owned() }),
        }
    }

    /// Takes up what another process stored for request `id` (a request filed or decided through
    /// another gateway on the same database, or with the CLI): only what verifies under the
    /// policy in force, only moving forward, and whoever waits on it wakes. A request of
    /// another agent, or one the store does not have, changes nothing.
    pub fn take_up(&self, id: &str) -> Result<(), ApprovalError> {
        self.refresh(id)
    }

    /// [`take_up`](SolverAgentCoordinator::take_up) for every request of this agent that is
    /// still open in the store: after announcements may have been missed.
    pub fn take_up_all(&self) -> Result<(), ApprovalError> {
        let now = self.clock.now()?;
        for record in self.store.load_agent(&self.identity.name)? {
            if !record.is_settled_at(now, self.usable_for_secs) {
                self.refresh(record.id())?;
            }
        }
        Ok(())
    }

    /// Checks the audit log's hash chain: `Ok(Ok(n))` for a sound chain of `n` entries,
    /// `Ok(Err(link))` for the first broken link.
    pub fn verify_audit_log(&self) -> Result<Result<u64, BrokenLink>, ApprovalError> {
        self.store
            .verify()
            .map_err(|e| ApprovalError::Store(crate::error::ApprovalStoreError::read(e)))
    }
}
