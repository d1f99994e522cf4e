use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use ao_approvals::{ApprovalError, ApprovalStatus, SolverAgentCoordinator};
use ao_audit::{AuditEvent, AuditLog};
use ao_budget::{CostRecord, CostTracker, MAX_STORED_AMOUNT, ReservationId};
use ao_hooks::{
    ApprovalHook, AuditHook, CostTrackingHook, HookManager, HookResult, ToolCall, ToolOutput,
};
use ao_identity::AgentIdentity;
use ao_routing::http::{
    BackendError, BackendPool, ChatRequest, ChatResponse, ChatStream, ClientOptions, FallbackError,
    OpenAiBackend, StreamChunk,
};
use ao_routing::{BackendConfig, BackendProvider, MultiBackendRouter};
use ao_store::SqliteStore;
use ao_types::{SharedClock, TokenUsage, utc_day_start};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::Notify;

use crate::config::Config;
use crate::error::OrchestratorError;

/// The approval action a chat completion is filed under.
const COMPLETION_ACTION: &str = "chat.completion";

/// The parts an [`Orchestrator`] is built from.
pub struct OrchestratorParts {
    /// Routes agents to backends and prices calls.
    pub router: Arc<MultiBackendRouter>,
    /// The live backends.
    pub pool: Arc<BackendPool>,
    /// Budgets.
    pub tracker: Arc<CostTracker>,
    /// One approval coordinator per agent; the agents the orchestrator serves.
    pub agents: Vec<Arc<SolverAgentCoordinator>>,
    /// Where completions and tool calls are audited.
    pub audit: Arc<dyn AuditLog>,
    /// How long a call waits for an approval decision before answering "needs approval".
    pub approval_wait: Duration,
    /// The output tokens assumed for a request without a limit, to estimate its cost.
    pub default_max_tokens: u64,
    /// The clock (the tracker's, normally).
    pub clock: SharedClock,
    /// The hooks tool calls go through; `None` for the three built-in ones (audit, cost tracking,
    /// approvals) over these parts.
    pub hooks: Option<HookManager>,
}

/// One agent the orchestrator serves.
#[derive(Debug, Clone)]
pub struct AgentRuntime {
    /// Its approval coordinator, which holds its identity.
    pub coordinator: Arc<SolverAgentCoordinator>,
}

/// Per-call options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// An approved request presented for this call (after a `NeedsApproval`).
    pub approval_id: Option<String>,
    /// The agent's session start; default the start of the current UTC day, so a restart never
    /// starts a new session.
    pub session_start: Option<u64>,
    /// Return before the cost and the audit entry are durable. They are counted in memory at
    /// once and written in the background; [`Orchestrator::drain`] waits for them.
    pub background_persistence: bool,
}

/// A completed call.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The reply.
    pub response: ChatResponse,
    /// The backend that answered.
    pub backend: BackendProvider,
    /// The cost recorded: the answering backend's prices applied to the reported usage.
    pub cost_sats: u64,
    /// The approval that allowed the call, if one was needed.
    pub approval_id: Option<String>,
}

/// What a [`CompletionStream`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A chunk from the backend.
    Chunk(StreamChunk),
    /// The end: what was recorded.
    Done {
        /// The usage settled (reported, or estimated if the backend reported none).
        usage: TokenUsage,
        /// The cost settled.
        cost_sats: u64,
        /// Whether the usage is an estimate.
        estimated: bool,
    },
}

/// Counts background writes so that shutdown can wait for them.
#[derive(Default)]
struct Pending {
    count: AtomicUsize,
    idle: Notify,
}

impl Pending {
    fn start(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    fn finish(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

struct Inner {
    router: Arc<MultiBackendRouter>,
    pool: Arc<BackendPool>,
    tracker: Arc<CostTracker>,
    agents: HashMap<String, AgentRuntime>,
    audit: Arc<dyn AuditLog>,
    hooks: HookManager,
    approval_wait: Duration,
    default_max_tokens: u64,
    clock: SharedClock,
    pending: Arc<Pending>,
}

/// The runtime that ties identity, routing, budgets, approvals, hooks and audit into one call.
/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orchestrator")
            .field("agents", &self.inner.agents.keys().collect::<Vec<_>>())
            .field("pool", &self.inner.pool)
            .finish_non_exhaustive()
    }
}

/// What a call is recorded as.
struct Settlement {
    agent: String,
    reservation: Option<ReservationId>,
    provider: BackendProvider,
    usage: TokenUsage,
    cost_sats: u64,
    estimated: bool,
    outcome: &'static str,
    estimate_sats: u64,
    approval_id: Option<String>,
    error: Option<String>,
}

/// A call's reservation. Every path out of a call settles or releases it: dropped before the
/// request may have reached a backend, it is released; dropped after (the caller went away while
/// a backend was working), it is settled at the estimate, since the backend may have been paid.
struct ReservationGuard {
    orchestrator: Orchestrator,
    agent: String,
    id: Option<ReservationId>,
    estimate_sats: u64,
    approval_id: Option<String>,
    charge_on_drop: Option<(BackendProvider, TokenUsage)>,
}

impl ReservationGuard {
    /// From here on the request may reach `provider`: a drop charges `usage` at the estimate.
    fn dispatched(&mut self, provider: BackendProvider, usage: TokenUsage) {
        self.charge_on_drop = Some((provider, usage));
    }

    /// Releases the reservation: nothing was spent.
    fn release(&mut self) {
        if let Some(id) = self.id.take()
            && let Err(error) = self.orchestrator.inner.tracker.release(id)
        {
            tracing::warn!(%error, "could not release a reservation");
        }
    }

    /// The settlement of this call, taking the reservation out of the guard.
    fn settlement(
        &mut self,
        provider: BackendProvider,
        usage: TokenUsage,
        cost_sats: u64,
        estimated: bool,
        outcome: &'static str,
        error: Option<String>,
    ) -> Settlement {
        Settlement {
            agent: self.agent.clone(),
            reservation: self.id.take(),
            provider,
            usage,
            cost_sats,
            estimated,
            outcome,
            estimate_sats: self.estimate_sats,
            approval_id: self.approval_id.clone(),
            error,
        }
    }
}

impl Drop for ReservationGuard {
    fn drop(&mut self) {
        if self.id.is_none() {
            return;
        }
        match self.charge_on_drop.take() {
            None => self.release(),
            Some((provider, usage)) => {
                let settlement = self.settlement(
                    provider,
                    usage,
                    self.estimate_sats,
                    true,
                    "cancelled",
                    Some("the caller went away while a backend was working".into()),
                );
                self.orchestrator.spawn(settlement);
            }
        }
    }
}

/// What admission produced: the reservation, the chain to try, the request as it will be sent,
/// and the estimate's tokens.
struct Admitted {
    guard: ReservationGuard,
    chain: Vec<BackendConfig>,
    request: ChatRequest,
    estimate: TokenUsage,
}

#[derive(Serialize)]
struct CompletionAudit<'a> {
    backend: Option<&'a str>,
    outcome: &'a str,
    input_tokens: u64,
    output_tokens: u64,
    cost_sats: u64,
    estimate_sats: u64,
    estimated_usage: bool,
    approval_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Orchestrator {
    /// An orchestrator from its parts. Without hooks of the caller's, the hooks for
    /// [`run_tool`](Orchestrator::run_tool) are the three built-in ones, over the same tracker,
    /// router, coordinators and audit log.
    pub fn new(mut parts: OrchestratorParts) -> Self {
        let hooks = parts
            .hooks
            .take()
            .unwrap_or_else(|| Self::builtin_hooks(&parts));
        let agents = parts
            .agents
            .into_iter()
            .map(|c| (c.identity().name.clone(), AgentRuntime { coordinator: c }))
            .collect();
        Self {
            inner: Arc::new(Inner {
                router: parts.router,
                pool: parts.pool,
                tracker: parts.tracker,
                agents,
                audit: parts.audit,
                hooks,
                approval_wait: parts.approval_wait,
                default_max_tokens: parts.default_max_tokens,
                clock: parts.clock,
                pending: Arc::new(Pending::default()),
            }),
        }
    }

    /// Audit, cost tracking and approvals, over `parts`.
    fn builtin_hooks(parts: &OrchestratorParts) -> HookManager {
        let mut hooks = HookManager::new();
        hooks.register(
            AuditHook::new(Arc::clone(&parts.audit)).with_clock(Arc::clone(&parts.clock)),
        );
        hooks.register(CostTrackingHook::new(
            Arc::clone(&parts.tracker),
            Arc::clone(&parts.router),
        ));
        if let Some((first, rest)) = parts.agents.split_first() {
            let mut approval = ApprovalHook::new(Arc::clone(first));
            for coordinator in rest {
                approval = approval.with_agent(Arc::clone(coordinator));
            }
            if !parts.approval_wait.is_zero() {
                approval = approval.waiting(parts.approval_wait);
            }
            hooks.register(approval);
        }
        hooks
    }

    /// An orchestrator as `config` describes it: the SQLite database under the data directory
    /// (created if missing), the ledger and approvals in it, one HTTP client per enabled backend
    /// (a backend whose API key variable is unset is an error now, not at the first call).
    pub fn from_config(config: &Config) -> Result<(Self, SqliteStore), OrchestratorError> {
        let setup =
            |what: &str, e: &dyn fmt::Display| OrchestratorError::Setup(format!("{what}: {e}"));
        let db = config.database_path();
        if let Some(dir) = db.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| setup(&format!("data directory `{}`", dir.display()), &e))?;
        }
        let store = SqliteStore::open(&db).map_err(|e| setup("database", &e))?;

        let mut tracker = CostTracker::new();
        if let Some(budget) = &config.default_budget {
            tracker = tracker.with_default_budget(budget.budget());
            if let Some(cap) = budget.daily_token_cap {
                tracker = tracker.with_default_daily_token_cap(cap);
            }
        }
        let mut router = MultiBackendRouter::new(*config.default_backend.get_ref());
        let mut pool = BackendPool::new();
        for entry in &config.backends {
            let mut backend = BackendConfig::new(
                *entry.provider.get_ref(),
                entry.model.clone(),
                entry.cost_per_1k_input,
                entry.cost_per_1k_output,
            )
            .with_enabled(entry.enabled);
            backend.endpoint = entry.endpoint.as_ref().map(|e| e.get_ref().clone());
            if entry.enabled {
                let defaults = ClientOptions::default();
                let options = ClientOptions {
                    timeout: entry
                        .timeout_secs
                        .map_or(defaults.timeout, Duration::from_secs),
                    max_retries: entry.max_retries.unwrap_or(defaults.max_retries),
                    ..defaults
                };
                let client =
                    OpenAiBackend::new(backend.clone(), entry.api_key_env.as_deref(), options)
                        .map_err(|e| setup("backend", &e))?;
                pool = pool.with_backend(Arc::new(client));
            }
            router = router.add_backend(backend);
        }
        let mut coordinators = Vec::new();
        for (name, agent) in &config.agents {
            if let Some(backend) = &agent.backend {
                router = router.route_agent(name.clone(), *backend.get_ref());
            }
            if let Some(budget) = &agent.budget {
                tracker = tracker.with_budget(name.clone(), budget.budget());
                if let Some(cap) = budget.daily_token_cap {
                    tracker = tracker.with_daily_token_cap(name.clone(), cap);
                }
            }
            let model = agent.model.clone().unwrap_or_else(|| {
                router
                    .get_backend(name)
                    .map(|b| b.model.clone())
                    .unwrap_or_default()
            });
            let pubkey = agent
                .pubkey
                .as_ref()
                .map(|k| k.get_ref().clone())
                .unwrap_or_default();
            let mut identity =
                AgentIdentity::new(pubkey, name.clone(), model).with_autonomy(agent.autonomy);
            if let Some(operator) = &agent.operator {
                identity = identity.with_operator(operator.get_ref().clone());
            }
            let mut coordinator = SolverAgentCoordinator::new(identity)
                .with_expiry(Duration::from_secs(config.approvals.expiry_secs));
            if let Some(threshold) = agent.approval_threshold_sats {
                coordinator = coordinator.with_approval_threshold_sats(threshold);
            }
            if !agent.guardians.is_empty() {
                let required = agent
                    .guardians_required
                    .unwrap_or(u32::try_from(agent.guardians.len()).unwrap_or(u32::MAX));
                coordinator = coordinator
                    .with_guardians(
                        agent.guardians.iter().map(|g| g.get_ref().clone()),
                        required,
                    )
                    .map_err(|e| setup(&format!("agents.{name}"), &e))?;
            }
            let coordinator = coordinator
                .with_store(store.clone())
                .map_err(|e| setup("approvals", &e))?;
            coordinators.push(Arc::new(coordinator));
        }
        // A reservation must outlive the slowest call it covers: an approval wait, then every
        // try at every backend of a chain, with backoff. Long streams renew their lease.
        let defaults = ClientOptions::default();
        let slowest_call: Duration = config
            .backends
            .iter()
            .filter(|b| b.enabled)
            .map(|b| {
                let timeout = b.timeout_secs.map_or(defaults.timeout, Duration::from_secs);
                let retries = b.max_retries.unwrap_or(defaults.max_retries);
                timeout.saturating_mul(retries.saturating_add(1))
                    + defaults.max_backoff.saturating_mul(retries)
            })
            .sum();
        let lease = (Duration::from_secs(config.approvals.wait_secs)
            + slowest_call
            + Duration::from_secs(60))
        .max(ao_budget::DEFAULT_LEASE);
        let tracker = tracker
            .with_reservation_lease(lease)
            .with_ledger(store.clone())
            .map_err(|e| setup("ledger", &e))?;
        let clock = Arc::clone(tracker.clock());
        let orchestrator = Self::new(OrchestratorParts {
            router: Arc::new(router),
            pool: Arc::new(pool),
            tracker: Arc::new(tracker),
            agents: coordinators,
            audit: Arc::new(store.clone()),
            approval_wait: Duration::from_secs(config.approvals.wait_secs),
            default_max_tokens: 1_024,
            clock,
            hooks: None,
        });
        Ok((orchestrator, store))
    }

    /// The agent named `name`.
    pub fn agent(&self, name: &str) -> Option<&AgentRuntime> {
        self.inner.agents.get(name)
    }

    /// The agents' names.
    pub fn agent_names(&self) -> impl Iterator<Item = &str> {
        self.inner.agents.keys().map(String::as_str)
    }

    /// The budgets.
    pub fn tracker(&self) -> &Arc<CostTracker> {
        &self.inner.tracker
    }

    /// The router.
    pub fn router(&self) -> &Arc<MultiBackendRouter> {
        &self.inner.router
    }

    /// The live backends.
    pub fn pool(&self) -> &Arc<BackendPool> {
        &self.inner.pool
    }

    /// The hooks tool calls go through.
    pub fn hooks(&self) -> &HookManager {
        &self.inner.hooks
    }

    /// The audit log.
    pub fn audit(&self) -> &Arc<dyn AuditLog> {
        &self.inner.audit
    }

    /// Background writes not yet finished.
    pub fn pending_writes(&self) -> usize {
        self.inner.pending.count.load(Ordering::SeqCst)
    }

    /// Waits until every background write (settled costs, audit entries) is done.
    pub async fn drain(&self) {
        loop {
            let idle = self.inner.pending.idle.notified();
            if self.pending_writes() == 0 {
                return;
            }
            idle.await;
        }
    }

    /// [`complete_with`](Orchestrator::complete_with) with default options.
    pub async fn complete(
        &self,
        agent: &str,
        request: ChatRequest,
    ) -> Result<Completion, OrchestratorError> {
        self.complete_with(agent, request, CallOptions::default())
            .await
    }

    /// Runs a chat completion for `agent`: route, estimate, reserve, approval, backends with
    /// fallback, settle at the answering backend's prices, audit.
    pub async fn complete_with(
        &self,
        agent: &str,
        request: ChatRequest,
        options: CallOptions,
    ) -> Result<Completion, OrchestratorError> {
        let mut admitted = self.admit(agent, &request, &options).await?;
        let chain: Vec<&BackendConfig> = admitted.chain.iter().collect();
        admitted
            .guard
            .dispatched(chain[0].provider, admitted.estimate);
        match self.inner.pool.complete(&chain, &admitted.request).await {
            Ok((provider, response)) => {
                let cost_sats = self.price(provider, response.usage);
                let settlement = admitted.guard.settlement(
                    provider,
                    response.usage,
                    cost_sats,
                    false,
                    "completed",
                    None,
                );
                self.persist(settlement, options.background_persistence)
                    .await;
                Ok(Completion {
                    response,
                    backend: provider,
                    cost_sats,
                    approval_id: admitted.guard.approval_id.clone(),
                })
            }
            Err(fallback) => {
                self.fail(&mut admitted, &fallback, options.background_persistence)
                    .await;
                Err(OrchestratorError::Backend(fallback))
            }
        }
    }

    /// Like [`complete_with`](Orchestrator::complete_with), streaming the reply. The cost is
    /// settled when the stream ends: the usage the backend reported on its final chunk, or, if it
    /// reported none or the stream was cut off or dropped, an estimate from the text received.
    pub async fn complete_stream(
        &self,
        agent: &str,
        request: ChatRequest,
        options: CallOptions,
    ) -> Result<CompletionStream, OrchestratorError> {
        let mut admitted = self.admit(agent, &request, &options).await?;
        let chain: Vec<&BackendConfig> = admitted.chain.iter().collect();
        admitted
            .guard
            .dispatched(chain[0].provider, admitted.estimate);
        match self.inner.pool.stream(&chain, &admitted.request).await {
            Ok((provider, stream)) => Ok(CompletionStream {
                orchestrator: self.clone(),
                agent: agent.to_owned(),
                provider,
                inner: stream,
                admitted: Some(admitted),
                text_bytes: 0,
                usage: None,
                finished: false,
                renewed: std::time::Instant::now(),
            }),
            Err(fallback) => {
                self.fail(&mut admitted, &fallback, options.background_persistence)
                    .await;
                Err(OrchestratorError::Backend(fallback))
            }
        }
    }

    /// Runs a tool call through the hooks: budgets, approvals and audit before, the tool, then
    /// costs and audit after. A block or a pending approval is an error and the tool does not run.
    pub async fn run_tool<F, Fut>(
        &self,
        mut call: ToolCall,
        tool: F,
    ) -> Result<ToolOutput, OrchestratorError>
    where
        F: FnOnce(&ToolCall) -> Fut,
        Fut: Future<Output = ToolOutput>,
    {
        if !self.inner.agents.contains_key(call.agent().as_str()) {
            return Err(OrchestratorError::UnknownAgent {
                agent: call.agent().to_string(),
            });
        }
        match self.inner.hooks.dispatch_before_tool(&mut call).await {
            HookResult::Continue => {}
            HookResult::Block { reason } => return Err(OrchestratorError::ToolBlocked { reason }),
            HookResult::NeedsApproval { request_id } => {
                return Err(OrchestratorError::ToolNeedsApproval { request_id });
            }
        }
        let mut output = tool(&call).await;
        match self
            .inner
            .hooks
            .dispatch_after_tool(&call, &mut output)
            .await
        {
            HookResult::Continue => Ok(output),
            HookResult::Block { reason } | HookResult::NeedsApproval { request_id: reason } => {
                Err(OrchestratorError::ToolBlocked { reason })
            }
        }
    }

    fn price(&self, provider: BackendProvider, usage: TokenUsage) -> u64 {
        self.inner.router.backend(provider).map_or(0, |b| {
            b.calculate_cost(usage.input_tokens, usage.output_tokens)
        })
    }

    async fn admit(
        &self,
        agent: &str,
        request: &ChatRequest,
        options: &CallOptions,
    ) -> Result<Admitted, OrchestratorError> {
        let runtime =
            self.inner
                .agents
                .get(agent)
                .ok_or_else(|| OrchestratorError::UnknownAgent {
                    agent: agent.to_owned(),
                })?;
        let chain: Vec<BackendConfig> = self
            .inner
            .router
            .fallback_chain(agent)
            .into_iter()
            .filter(|b| self.inner.pool.get(b.provider).is_some())
            .cloned()
            .collect();
        if chain.is_empty() {
            self.inner.router.route(agent)?;
            return Err(OrchestratorError::Setup(format!(
                "agent `{agent}` is routed to backends without a live client"
            )));
        }
        // The request as it will be sent: its output is capped at what the estimate assumed, so
        // it cannot cost more than was reserved (and approved) by asking for no limit.
        let mut request = request.clone();
        let output_limit = request
            .output_limit()
            .unwrap_or(self.inner.default_max_tokens);
        if request.max_completion_tokens.is_some() {
            request.max_completion_tokens = Some(output_limit);
        }
        if request.max_tokens.is_some() || request.max_completion_tokens.is_none() {
            request.max_tokens = Some(output_limit);
        }
        let choices = request
            .extra
            .get("n")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1)
            .max(1);
        let extra_tokens = serde_json::to_string(&request.extra)
            .map_or(0, |text| ao_routing::http::estimate_tokens(&text));
        let estimate = TokenUsage::new(
            request
                .estimated_input_tokens()
                .saturating_add(extra_tokens),
            output_limit.saturating_mul(choices),
        );
        // Priced at the dearest backend the call may fall back to.
        let estimate_sats = chain
            .iter()
            .map(|b| b.calculate_cost(estimate.input_tokens, estimate.output_tokens))
            .max()
            .unwrap_or(0);
        let now = self.inner.clock.now()?;
        let session = options.session_start.unwrap_or_else(|| utc_day_start(now));
        let id = self.inner.tracker.reserve_with_tokens(
            agent,
            session,
            estimate_sats,
            estimate.total(),
        )?;
        let mut guard = ReservationGuard {
            orchestrator: self.clone(),
            agent: agent.to_owned(),
            id: Some(id),
            estimate_sats,
            approval_id: None,
            charge_on_drop: None,
        };
        guard.approval_id = self
            .approve(&runtime.coordinator, estimate_sats, options)
            .await?;
        Ok(Admitted {
            guard,
            chain,
            request,
            estimate,
        })
    }

    /// Decides whether the call may go ahead without, with a presented, or with a new approval.
    async fn approve(
        &self,
        coordinator: &SolverAgentCoordinator,
        estimate_sats: u64,
        options: &CallOptions,
    ) -> Result<Option<String>, OrchestratorError> {
        if !coordinator.requires_approval(COMPLETION_ACTION, estimate_sats) {
            return Ok(None);
        }
        if let Some(id) = &options.approval_id {
            Self::use_approval(coordinator, id, estimate_sats)?;
            return Ok(Some(id.clone()));
        }
        let description = format!(
            "chat completion by agent `{}`, estimated at {estimate_sats} sats",
            coordinator.identity().name
        );
        let request_id = coordinator
            .try_request_approval(COMPLETION_ACTION, &description, estimate_sats)
            .map_err(|(_, e)| OrchestratorError::Approval(e))?;
        if self.inner.approval_wait.is_zero() {
            return Err(OrchestratorError::NeedsApproval { request_id });
        }
        match coordinator
            .wait_for_decision(&request_id, self.inner.approval_wait)
            .await
        {
            Ok(ApprovalStatus::Approved) => {
                Self::use_approval(coordinator, &request_id, estimate_sats)?;
                Ok(Some(request_id))
            }
            Ok(status) => Err(OrchestratorError::NotApproved {
                request_id,
                reason: format!("it was {status}"),
                status: Some(status),
            }),
            Err(ao_approvals::ApprovalError::Timeout { .. }) => {
                Err(OrchestratorError::NeedsApproval { request_id })
            }
            Err(e) => Err(OrchestratorError::Approval(e)),
        }
    }

    /// Uses approval `id` for one completion estimated at `estimate_sats`; the use is stored with
    /// the request, so it allows one call, across restarts too.
    fn use_approval(
        coordinator: &SolverAgentCoordinator,
        id: &str,
        estimate_sats: u64,
    ) -> Result<(), OrchestratorError> {
        coordinator
            .consume(id, COMPLETION_ACTION, estimate_sats)
            .map_err(|error| {
                let status = match &error {
                    ApprovalError::NotApproved { status, .. } => Some(*status),
                    ApprovalError::AlreadyUsed { .. } | ApprovalError::DoesNotCover { .. } => {
                        Some(ApprovalStatus::Approved)
                    }
                    ApprovalError::Expired { .. } => Some(ApprovalStatus::Expired),
                    ApprovalError::NotFound { .. } => None,
                    _ => return OrchestratorError::Approval(error),
                };
                OrchestratorError::NotApproved {
                    request_id: id.to_owned(),
                    reason: error.to_string(),
                    status,
                }
            })
    }

    /// Settles (or releases) and audits a failed call. A malformed reply may have been paid for:
    /// its estimate is recorded. Anything else (unreachable, timeout, 429, 5xx) spent nothing.
    async fn fail(&self, admitted: &mut Admitted, fallback: &FallbackError, background: bool) {
        let paid = fallback
            .attempts
            .last()
            .filter(|a| matches!(a.error, BackendError::Malformed { .. }))
            .map(|a| a.provider);
        let settlement = match paid {
            Some(provider) => admitted.guard.settlement(
                provider,
                admitted.estimate,
                admitted.guard.estimate_sats,
                true,
                "failed",
                Some(fallback.to_string()),
            ),
            None => {
                admitted.guard.release();
                let provider = admitted
                    .chain
                    .first()
                    .map_or(BackendProvider::Local, |b| b.provider);
                admitted.guard.settlement(
                    provider,
                    TokenUsage::default(),
                    0,
                    false,
                    "failed",
                    Some(fallback.to_string()),
                )
            }
        };
        self.persist(settlement, background).await;
    }

    /// Counts a settlement in the budget now (in memory), and returns the blocking job that makes
    /// it durable and audits it.
    fn settlement_job(&self, s: Settlement) -> impl FnOnce() + Send + 'static {
        let tracker = Arc::clone(&self.inner.tracker);
        let audit = Arc::clone(&self.inner.audit);
        let pending = Arc::clone(&self.inner.pending);
        let now = self.inner.clock.now().unwrap_or(0);
        let counted = s.reservation.map(|id| {
            let record = CostRecord {
                agent_name: s.agent.clone(),
                backend: s.provider,
                input_tokens: s.usage.input_tokens.min(MAX_STORED_AMOUNT / 2),
                output_tokens: s.usage.output_tokens.min(MAX_STORED_AMOUNT / 2),
                cost_sats: s.cost_sats.min(MAX_STORED_AMOUNT),
                timestamp: now,
            };
            tracker.settle_counted(id, record)
        });
        pending.start();
        move || {
            match counted {
                Some(Ok(unwritten)) => {
                    if let Err(error) = tracker.write(unwritten) {
                        tracing::error!(agent = s.agent, %error, "cost not written durably");
                    }
                }
                Some(Err(error)) => {
                    tracing::error!(agent = s.agent, %error, "cost not settled");
                }
                None => {}
            }
            let detail = CompletionAudit {
                backend: Some(s.provider.as_str()),
                outcome: s.outcome,
                input_tokens: s.usage.input_tokens,
                output_tokens: s.usage.output_tokens,
                cost_sats: s.cost_sats,
                estimate_sats: s.estimate_sats,
                estimated_usage: s.estimated,
                approval_id: s.approval_id.as_deref(),
                error: s.error,
            };
            match AuditEvent::from_serialize(now, "completion", s.agent.as_str(), &detail) {
                Ok(event) => {
                    if let Err(error) = audit.append(event) {
                        tracing::error!(agent = s.agent, %error, "completion not audited");
                    }
                }
                Err(error) => tracing::error!(agent = s.agent, %error, "completion not audited"),
            }
            pending.finish();
        }
    }

    /// Records a settlement in the background (counted for [`drain`](Orchestrator::drain)), from
    /// anywhere, `Drop` included.
    fn spawn(&self, settlement: Settlement) {
        let job = self.settlement_job(settlement);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(job)),
            Err(_) => job(),
        }
    }

    /// Records a settlement: awaited, or in the background.
    async fn persist(&self, settlement: Settlement, background: bool) {
        let job = tokio::task::spawn_blocking(self.settlement_job(settlement));
        if !background && let Err(error) = job.await {
            tracing::error!(%error, "a settlement task failed");
        }
    }
}

/// A streamed completion. Yields the backend's chunks, then [`StreamEvent::Done`] once the cost
/// is settled. Dropped early, it settles what was received.
pub struct CompletionStream {
    orchestrator: Orchestrator,
    agent: String,
    provider: BackendProvider,
    inner: ChatStream,
    admitted: Option<Admitted>,
    text_bytes: usize,
    usage: Option<TokenUsage>,
    finished: bool,
    renewed: std::time::Instant,
}

impl fmt::Debug for CompletionStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompletionStream")
            .field("agent", &self.agent)
            .field("provider", &self.provider)
            .field("text_bytes", &self.text_bytes)
            .finish_non_exhaustive()
    }
}

/// How often a long stream renews its reservation's lease.
const RENEW_EVERY: Duration = Duration::from_secs(60);

impl CompletionStream {
    /// The backend that is answering.
    pub fn backend(&self) -> BackendProvider {
        self.provider
    }

    /// Keeps the reservation counted while a long stream runs.
    fn renew(&mut self) {
        if self.renewed.elapsed() < RENEW_EVERY {
            return;
        }
        self.renewed = std::time::Instant::now();
        if let Some(id) = self.admitted.as_ref().and_then(|a| a.guard.id)
            && let Err(error) = self.orchestrator.inner.tracker.renew(id)
        {
            tracing::warn!(%error, "could not renew a stream's reservation");
        }
    }

    /// Settles what the stream has so far: the reported usage, or else an estimate (the prompt's
    /// estimated tokens, and one token per four bytes of text received). Once a backend has
    /// started answering, the prompt was processed: spent tokens are never recorded as zero.
    /// Returns the usage, cost and whether it is estimated.
    fn settle(
        &mut self,
        outcome: &'static str,
        error: Option<String>,
    ) -> Option<(TokenUsage, u64, bool)> {
        let mut admitted = self.admitted.take()?;
        let (usage, estimated) = match self.usage {
            Some(usage) => (usage, false),
            None => (
                TokenUsage::new(
                    admitted.estimate.input_tokens,
                    u64::try_from(self.text_bytes)
                        .unwrap_or(u64::MAX)
                        .div_ceil(4),
                ),
                true,
            ),
        };
        let cost = self.orchestrator.price(self.provider, usage);
        let settlement =
            admitted
                .guard
                .settlement(self.provider, usage, cost, estimated, outcome, error);
        self.orchestrator.spawn(settlement);
        Some((usage, cost, estimated))
    }
}

impl Stream for CompletionStream {
    type Item = Result<StreamEvent, OrchestratorError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.text_bytes += chunk.delta.len();
                if chunk.usage.is_some() {
                    self.usage = chunk.usage;
                }
                self.renew();
                Poll::Ready(Some(Ok(StreamEvent::Chunk(chunk))))
            }
            Poll::Ready(Some(Err(error))) => {
                self.finished = true;
                self.settle("cut off", Some(error.to_string()));
                let provider = self.provider;
                Poll::Ready(Some(Err(OrchestratorError::Backend(FallbackError {
                    attempts: vec![ao_routing::http::Attempt { provider, error }],
                }))))
            }
            Poll::Ready(None) => {
                self.finished = true;
                match self.settle("completed", None) {
                    Some((usage, cost_sats, estimated)) => {
                        Poll::Ready(Some(Ok(StreamEvent::Done {
                            usage,
                            cost_sats,
                            estimated,
                        })))
                    }
                    None => Poll::Ready(None),
                }
            }
        }
    }
}

impl Drop for CompletionStream {
    fn drop(&mut self) {
        if self.admitted.is_some() {
            self.settle(
                "dropped",
                Some("the client went away before the end".into()),
            );
        }
    }
}
