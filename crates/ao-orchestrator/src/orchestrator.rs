//! The public API: [`Orchestrator`], what it is built from, and its calls.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ao_approvals::SolverAgentCoordinator;
use ao_audit::AuditLog;
use ao_budget::{CostTracker, RateLimiter};
use ao_dvm::{PaymentLedger, Wallet};
use ao_hooks::{
    ApprovalHook, AuditHook, CostTrackingHook, HookManager, HookResult, ToolCall, ToolOutput,
};
use ao_routing::http::{Answered, BackendPool, ChatRequest, ChatResponse, FallbackError};
use ao_routing::{BackendConfig, BackendProvider, MultiBackendRouter};
use ao_store::pg::SharedBudgets;
use ao_types::SharedClock;

use crate::admission::{Admitted, RequestRules};
use crate::budgets::{Budgets, Spend};
use crate::error::OrchestratorError;
use crate::settlement::{BudgetGate, Metered, Outcome, Pending};
use crate::signing::AgentSigning;
use crate::streaming::CompletionStream;

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
    /// How requests are estimated and what they may ask for.
    pub requests: RequestRules,
    /// Per-agent rate limits.
    pub rates: RateLimiter,
    /// Budgets shared by every gateway on a PostgreSQL database; `None` keeps completions'
    /// budgets in `tracker`.
    pub shared_budgets: Option<SharedBudgets>,
    /// The clock (the tracker's, normally).
    pub clock: SharedClock,
    /// The hooks tool calls go through; `None` for the three built-in ones (audit, cost tracking,
    /// approvals) over these parts.
    pub hooks: Option<HookManager>,
    /// What signs the agent's own events (its profile, audit checkpoints) through its signer
    /// nodes; `None` when no `[signing]` is configured.
    pub signing: Option<Arc<AgentSigning>>,
    /// The wallet that pays invoices ([`Orchestrator::pay_invoice`]), and where payments are
    /// written down; `None`: no invoice is paid.
    pub payments: Option<Payments>,
}

/// A wallet and the ledger that keeps its payments at most once.
#[derive(Debug, Clone)]
pub struct Payments {
    /// The wallet that pays.
    pub wallet: Arc<dyn Wallet>,
    /// Where each payment is written down, by payment hash, before the wallet is asked.
    pub ledger: Arc<dyn PaymentLedger>,
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
    /// The cost recorded: the answering backend's prices applied to the reported usage, or, for
    /// a backend billed per call (a DVM paid over Lightning), what was paid, fees included.
    pub cost_sats: u64,
    /// The approval that allowed the call, if one was needed.
    pub approval_id: Option<String>,
}

/// What every clone of an [`Orchestrator`] shares.
pub(crate) struct Inner {
    pub(crate) router: Arc<MultiBackendRouter>,
    pub(crate) pool: Arc<BackendPool>,
    pub(crate) tracker: Arc<CostTracker>,
    pub(crate) agents: HashMap<String, Arc<SolverAgentCoordinator>>,
    pub(crate) audit: Arc<dyn AuditLog>,
    pub(crate) hooks: HookManager,
    pub(crate) approval_wait: Duration,
    pub(crate) requests: RequestRules,
    pub(crate) rates: RateLimiter,
    /// Where completions' budgets are kept.
    pub(crate) budgets: Budgets,
    /// How often a call's reservations are renewed while it runs.
    pub(crate) renew_every: Duration,
    /// Sats charged beyond what was reserved, since the start.
    pub(crate) overage_sats: AtomicU64,
    pub(crate) clock: SharedClock,
    pub(crate) pending: Arc<Pending>,
    /// The wallet and its payment ledger, if invoices may be paid.
    pub(crate) payments: Option<Payments>,
    pub(crate) signing: Option<Arc<AgentSigning>>,
    /// With budgets in PostgreSQL: what other gateways announce about approvals.
    _approvals: Option<ao_store::pg::Listener>,
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

impl Orchestrator {
    /// An orchestrator from its parts. Without hooks of the caller's, the hooks for
    /// [`run_tool`](Orchestrator::run_tool) are the three built-in ones, over the same tracker,
    /// router, coordinators and audit log. Calls a crash left dispatched and unsettled, which the
    /// tracker charged when it opened its ledger, are audited now.
    pub fn new(mut parts: OrchestratorParts) -> Self {
        let hooks = parts.hooks.take().unwrap_or_else(|| builtin_hooks(&parts));
        let agents = parts
            .agents
            .into_iter()
            .map(|c| (c.identity().name.clone(), c))
            .collect();
        let budgets = match parts.shared_budgets.take() {
            Some(shared) => Budgets::Shared(Arc::new(shared)),
            None => Budgets::Local(Arc::clone(&parts.tracker)),
        };
        // Renewed well within the lease, and at least every minute.
        let renew_every = Duration::from_secs(
            (parts.tracker.lease_secs() / 3)
                .clamp(1, 60)
                .min(budgets.lease_secs().map_or(60, |l| (l / 3).max(1))),
        );
        let approvals = match &budgets {
            Budgets::Shared(shared) => crate::cluster::follow_approvals(shared.store(), &agents),
            Budgets::Local(_) => None,
        };
        let orchestrator = Self {
            inner: Arc::new(Inner {
                router: parts.router,
                pool: parts.pool,
                tracker: parts.tracker,
                agents,
                audit: parts.audit,
                hooks,
                approval_wait: parts.approval_wait,
                requests: parts.requests,
                rates: parts.rates,
                budgets,
                renew_every,
                overage_sats: AtomicU64::new(0),
                clock: parts.clock,
                pending: Arc::new(Pending::default()),
                payments: parts.payments.take(),
                signing: parts.signing,
                _approvals: approvals,
            }),
        };
        orchestrator.audit_recovered();
        orchestrator.recover_shared_holds();
        orchestrator
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    pub(crate) fn inner_arc(&self) -> Arc<Inner> {
        Arc::clone(&self.inner)
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// The approval coordinator of the agent named `name`, which holds its identity; `None` for
    /// an agent the orchestrator does not serve.
    pub fn coordinator(&self, name: &str) -> Option<&Arc<SolverAgentCoordinator>> {
        self.inner.agents.get(name)
    }

    /// The agents' names.
    pub fn agent_names(&self) -> impl Iterator<Item = &str> {
        self.inner.agents.keys().map(String::as_str)
    }

    /// What signs the agent's own events through its signer nodes, when `[signing]` is
    /// configured.
    pub fn signing(&self) -> Option<&Arc<AgentSigning>> {
        self.inner.signing.as_ref()
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

    /// The clock every decision and record is dated by.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Sats charged beyond what was reserved for the calls that incurred them, since the start:
    /// a provider that bills more than the estimate bounded.
    pub fn overage_sats(&self) -> u64 {
        self.inner.overage_sats.load(Ordering::Relaxed)
    }

    /// What `agent` has used today, and where it stands, wherever its budget is kept (in this
    /// process, or shared in PostgreSQL).
    pub async fn spend(&self, agent: &str) -> Result<Spend, OrchestratorError> {
        let now = self.inner.clock.now()?;
        Ok(self.inner.budgets.spend(agent, now).await?)
    }

    /// Whether completions' budgets are shared with other gateways (PostgreSQL).
    pub fn budgets_are_shared(&self) -> bool {
        matches!(self.inner.budgets, Budgets::Shared(_))
    }

    /// Background writes not yet finished.
    pub fn pending_writes(&self) -> usize {
        self.inner.pending.count()
    }

    /// Waits until every background write (settled costs, audit entries) is done.
    pub async fn drain(&self) {
        self.inner.pending.idle().await;
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
        let pool = Arc::clone(&self.inner.pool);
        let (mut admitted, answered) = self
            .dispatch(agent, &request, &options, async |chain, request, gate| {
                pool.complete(chain, request, gate).await
            })
            .await?;
        let billed_failures = answered.billed_failures();
        let Answered {
            provider,
            value: response,
            failed,
        } = answered;
        admitted.guard.failed_attempts(&failed);
        admitted.guard.billed(response.billed_sats);
        let outcome = Outcome::Completed(Metered::Reported(response.usage));
        let settlement =
            admitted
                .guard
                .settle(&admitted.chain, provider, outcome, billed_failures, None);
        let cost_sats = settlement.cost_sats();
        self.record(settlement, options.background_persistence)
            .await;
        Ok(Completion {
            response,
            backend: provider,
            cost_sats,
            approval_id: admitted.guard.approval_id().cloned(),
        })
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
        let pool = Arc::clone(&self.inner.pool);
        let (admitted, answered) = self
            .dispatch(agent, &request, &options, async |chain, request, gate| {
                pool.stream(chain, request, gate).await
            })
            .await?;
        Ok(CompletionStream::new(
            self.clone(),
            agent,
            answered,
            admitted,
        ))
    }

    /// The path every completion shares: admit the call, send it along the chain with `send`
    /// (which asks the budget before each retry), and, when no backend answers, settle or
    /// release it and say why.
    async fn dispatch<T>(
        &self,
        agent: &str,
        request: &ChatRequest,
        options: &CallOptions,
        send: impl AsyncFnOnce(
            &[&BackendConfig],
            &ChatRequest,
            &BudgetGate,
        ) -> Result<Answered<T>, FallbackError>,
    ) -> Result<(Admitted, Answered<T>), OrchestratorError> {
        let mut admitted = self.admit(agent, request, options).await?;
        let chain: Vec<&BackendConfig> = admitted.chain.iter().collect();
        let first =
            chain
                .first()
                .map(|b| b.provider)
                .ok_or_else(|| OrchestratorError::NoLiveBackend {
                    agent: agent.to_owned(),
                })?;
        // Write-ahead: the reservation is durable before the request leaves, so a crash from
        // here on cannot refund the call. If it cannot be written, nothing is sent.
        admitted.guard.hold(first).await?;
        admitted.guard.dispatched(first);
        if self.budgets_are_shared() {
            // Other gateways charge a hold whose lease runs out: keep this one's alive.
            admitted.guard.keep_renewed();
        }
        let gate = admitted.guard.gate();
        match send(&chain, &admitted.request, &gate).await {
            Ok(answered) => Ok((admitted, answered)),
            Err(fallback) => {
                let settlement = admitted.guard.fail(&admitted.chain, &fallback);
                self.record(settlement, options.background_persistence)
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
            HookResult::Block { reason } => Err(OrchestratorError::ToolBlocked { reason }),
            // An approval asked for after the tool ran cannot stop it: the result is withheld.
            HookResult::NeedsApproval { request_id } => Err(OrchestratorError::ToolBlocked {
                reason: format!(
                    "a hook asked for approval `{request_id}` after the tool ran; its result is withheld"
                ),
            }),
        }
    }
}

/// Audit, cost tracking and approvals, over `parts`.
fn builtin_hooks(parts: &OrchestratorParts) -> HookManager {
    let mut hooks = HookManager::new();
    hooks.register(AuditHook::new(Arc::clone(&parts.audit)).with_clock(Arc::clone(&parts.clock)));
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
