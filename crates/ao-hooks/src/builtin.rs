//! The built-in hooks: budgets, approvals and audit.

use std::sync::Arc;
use std::time::Duration;

use ao_approvals::{ApprovalError, ApprovalStatus, SolverAgentCoordinator};
use ao_audit::{AuditEvent, AuditLog};
use ao_budget::{CostRecord, CostTracker, MAX_STORED_AMOUNT, ReservationId};
use ao_routing::{BackendConfig, MultiBackendRouter};
use ao_types::{Report, SharedClock, SystemClock};
use async_trait::async_trait;
use serde::Serialize;

use crate::call::{ToolCall, ToolOutput};
use crate::hook::{Hook, HookError, HookResult};

/// The reservation `CostTrackingHook` made for a call.
#[derive(Debug, Clone, Copy)]
struct Reserved {
    id: ReservationId,
    estimate_sats: u64,
}

/// Enforces budgets on tool calls.
///
/// - `before_tool` reserves the call's estimate in the [`CostTracker`] (the call's
///   `cost_estimate_sats`, or else the routed backend's price for the call's input, estimated at
///   one token per four bytes of parameters, plus its `max_tokens` of output) and blocks with the
///   budget's own reason when the reservation is refused. The tracker logs a warning when spend
///   crosses the warning threshold.
/// - `after_tool` settles the real cost: the backend's reported usage priced at the backend that
///   answered (the output's `backend`, else the agent's routed one), plus any sats the tool spent
///   directly (`spent_sats`). If nothing was spent (no usage and no direct spend reported), it
///   releases the reservation.
/// - `abort_tool` releases the reservation when a later hook blocks the call.
///
/// The agent charged is always the call's runtime-set agent.
pub struct CostTrackingHook {
    tracker: Arc<CostTracker>,
    router: Arc<MultiBackendRouter>,
    clock: SharedClock,
}

impl CostTrackingHook {
    /// A hook charging `tracker` at `router`'s prices, dating records with the tracker's clock.
    pub fn new(tracker: Arc<CostTracker>, router: Arc<MultiBackendRouter>) -> Self {
        let clock = Arc::clone(tracker.clock());
        Self {
            tracker,
            router,
            clock,
        }
    }

    /// Sets the clock that dates cost records (default: the tracker's clock).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn price_of(&self, call: &ToolCall, output: &ToolOutput) -> Option<&BackendConfig> {
        output
            .backend
            .and_then(|p| self.router.backend(p))
            .or_else(|| self.router.get_backend(call.agent()))
    }
}

/// Tokens of input a call's parameters amount to, at one token per four bytes, rounded up.
fn input_tokens_of(call: &ToolCall) -> u64 {
    let bytes = u64::try_from(call.parameters.to_string().len()).unwrap_or(u64::MAX);
    bytes.div_ceil(4)
}

#[async_trait]
impl Hook for CostTrackingHook {
    fn name(&self) -> &str {
        "cost-tracking"
    }

    fn priority(&self) -> i32 {
        100
    }

    async fn before_tool(&self, call: &mut ToolCall) -> Result<HookResult, HookError> {
        let output_tokens = call.max_tokens.unwrap_or(0);
        let (estimate_sats, estimate_tokens) = match call.cost_estimate_sats {
            Some(sats) => (sats, output_tokens),
            None => {
                let input_tokens = input_tokens_of(call);
                let Some(backend) = self.router.get_backend(call.agent()) else {
                    return Ok(HookResult::block(format!(
                        "agent `{}` has no enabled backend to price the call, and the call carries no cost estimate",
                        call.agent()
                    )));
                };
                (
                    backend.calculate_cost(input_tokens, output_tokens),
                    input_tokens.saturating_add(output_tokens),
                )
            }
        };
        match self.tracker.reserve_with_tokens(
            call.agent(),
            call.session_start,
            estimate_sats,
            estimate_tokens,
        ) {
            Ok(id) => {
                call.extensions.insert(Reserved { id, estimate_sats });
                call.cost_estimate_sats.get_or_insert(estimate_sats);
                Ok(HookResult::Continue)
            }
            Err(refused) => Ok(HookResult::block(Report::new(&refused).to_string())),
        }
    }

    async fn abort_tool(&self, call: &ToolCall, _outcome: &HookResult) {
        if let Some(reserved) = call.extensions.get::<Reserved>()
            && let Err(error) = self.tracker.release(reserved.id)
        {
            tracing::warn!(call = %call.id(), error = %Report::new(&error), "could not release a blocked call's reservation");
        }
    }

    async fn after_tool(
        &self,
        call: &ToolCall,
        output: &mut ToolOutput,
    ) -> Result<HookResult, HookError> {
        let Some(reserved) = call.extensions.get::<Reserved>().copied() else {
            return Ok(HookResult::Continue);
        };
        let usage = output.usage.filter(|u| !u.is_zero());
        if usage.is_none() && output.spent_sats.is_none() {
            // Nothing was spent: no tokens reported, no payment made.
            self.tracker.release(reserved.id).map_err(HookError::new)?;
            output.cost_sats = Some(0);
            return Ok(HookResult::Continue);
        }
        let usage = usage.unwrap_or_default();
        // Spend that happened is always recorded. With no price known, the estimate stands in.
        let (provider, token_cost) = match self.price_of(call, output) {
            Some(backend) => (
                backend.provider,
                backend.calculate_cost(usage.input_tokens, usage.output_tokens),
            ),
            None => (
                output
                    .backend
                    .unwrap_or(self.router.routed_provider(call.agent())),
                reserved.estimate_sats,
            ),
        };
        let cost_sats = token_cost
            .saturating_add(output.spent_sats.unwrap_or(0))
            .min(MAX_STORED_AMOUNT);
        let record = CostRecord {
            agent_name: call.agent().to_string(),
            backend: provider,
            input_tokens: usage.input_tokens.min(MAX_STORED_AMOUNT / 2),
            output_tokens: usage.output_tokens.min(MAX_STORED_AMOUNT / 2),
            cost_sats,
            timestamp: self.clock.now().map_err(HookError::new)?,
        };
        output.cost_sats = Some(cost_sats);
        self.tracker
            .settle(reserved.id, record)
            .map_err(HookError::new)?;
        Ok(HookResult::Continue)
    }
}

/// Asks for approval where the agent's autonomy requires it.
///
/// `before_tool` asks the agent's [`SolverAgentCoordinator`] whether the call (its tool name and
/// cost estimate, which `CostTrackingHook` fills in when it runs first) needs approval. If it does:
///
/// - a call presenting an approved request (`approval_id`) for the same tool and at least its cost
///   goes ahead, once per approval;
/// - otherwise a request is filed and the call stops with [`HookResult::NeedsApproval`], or, with
///   [`waiting`](ApprovalHook::waiting), the hook waits for the decision and continues or blocks.
///
/// A call of an agent without a coordinator here is blocked: no policy, no action.
pub struct ApprovalHook {
    coordinators: Vec<Arc<SolverAgentCoordinator>>,
    wait: Option<Duration>,
}

impl ApprovalHook {
    /// A hook applying `coordinator`'s policy to its agent's calls.
    pub fn new(coordinator: Arc<SolverAgentCoordinator>) -> Self {
        Self {
            coordinators: vec![coordinator],
            wait: None,
        }
    }

    /// Also applies `coordinator`'s policy to its agent's calls.
    pub fn with_agent(mut self, coordinator: Arc<SolverAgentCoordinator>) -> Self {
        self.coordinators.push(coordinator);
        self
    }

    /// Waits up to `timeout` for a decision instead of returning `NeedsApproval`.
    pub fn waiting(mut self, timeout: Duration) -> Self {
        self.wait = Some(timeout);
        self
    }

    /// Uses approval `id` for `call`, or says why it cannot be used.
    fn use_approval(
        coordinator: &SolverAgentCoordinator,
        call: &ToolCall,
        id: &str,
        cost: u64,
    ) -> Result<HookResult, HookError> {
        match coordinator.consume(id, &call.tool_name, cost) {
            Ok(()) => Ok(HookResult::Continue),
            Err(
                error @ (ApprovalError::NotFound { .. }
                | ApprovalError::NotApproved { .. }
                | ApprovalError::AlreadyUsed { .. }
                | ApprovalError::DoesNotCover { .. }
                | ApprovalError::Expired { .. }),
            ) => Ok(HookResult::block(error.to_string())),
            Err(error) => Err(HookError::new(error)),
        }
    }
}

#[async_trait]
impl Hook for ApprovalHook {
    fn name(&self) -> &str {
        "approval"
    }

    fn priority(&self) -> i32 {
        50
    }

    async fn before_tool(&self, call: &mut ToolCall) -> Result<HookResult, HookError> {
        let Some(coordinator) = self
            .coordinators
            .iter()
            .find(|c| c.identity().name == call.agent().as_str())
        else {
            return Ok(HookResult::block(format!(
                "agent `{}` has no approval policy; register its coordinator with the approval hook",
                call.agent()
            )));
        };
        // A call without an estimate is priced as the dearest possible: it cannot slip under the
        // threshold by saying nothing.
        let cost = call.cost_estimate_sats.unwrap_or(u64::MAX);
        if !coordinator.requires_approval(&call.tool_name, cost) {
            return Ok(HookResult::Continue);
        }
        if let Some(id) = call.approval_id.clone() {
            return Self::use_approval(coordinator, call, &id, cost);
        }
        let description = format!(
            "tool `{}` called by agent `{}`, estimated at {cost} sats",
            call.tool_name,
            call.agent()
        );
        let request_id = coordinator
            .try_request_approval(&call.tool_name, &description, cost)
            .map_err(HookError::new)?;
        let Some(timeout) = self.wait else {
            return Ok(HookResult::NeedsApproval { request_id });
        };
        match coordinator.wait_for_decision(&request_id, timeout).await {
            Ok(ApprovalStatus::Approved) => {
                let result = Self::use_approval(coordinator, call, &request_id, cost)?;
                call.approval_id = Some(request_id);
                Ok(result)
            }
            Ok(status) => Ok(HookResult::block(format!(
                "approval `{request_id}` was {status}"
            ))),
            Err(ApprovalError::Timeout { .. }) => Ok(HookResult::block(format!(
                "no decision on approval `{request_id}` within {timeout:?}"
            ))),
            Err(error) => Err(HookError::new(error)),
        }
    }
}

/// Writes one audit entry per tool call: the agent, the tool, the decision and the cost.
///
/// It has the highest priority, so it runs first before a tool and last after it: it learns the
/// outcome from `abort_tool` (`tool.blocked`, `tool.needs_approval`) or from `after_tool`
/// (`tool.completed`, with the cost `CostTrackingHook` recorded). An entry that cannot be written
/// after the tool ran makes `dispatch_after_tool` answer with a block naming the failure.
pub struct AuditHook {
    log: Arc<dyn AuditLog>,
    clock: SharedClock,
}

impl AuditHook {
    /// A hook writing to `log`.
    pub fn new(log: Arc<dyn AuditLog>) -> Self {
        Self {
            log,
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets the clock that dates entries (default: the system clock).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn write<T: Serialize>(
        &self,
        call: &ToolCall,
        kind: &str,
        detail: &T,
    ) -> Result<(), HookError> {
        let now = self.clock.now().map_err(HookError::new)?;
        let event = AuditEvent::from_serialize(now, kind, call.agent().as_str(), detail)
            .map_err(HookError::new)?;
        self.log.append(event).map(|_| ()).map_err(HookError::new)
    }
}

/// The detail of a tool call's audit entry.
#[derive(Serialize)]
struct CallDetail<'a> {
    call: u64,
    tool: &'a str,
    decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    estimate_sats: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_error: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_sats: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    approval_id: Option<&'a str>,
}

impl<'a> CallDetail<'a> {
    fn of(call: &'a ToolCall, decision: &'static str) -> Self {
        Self {
            call: call.id().as_u64(),
            tool: &call.tool_name,
            decision,
            reason: None,
            request_id: None,
            estimate_sats: call.cost_estimate_sats,
            is_error: None,
            cost_sats: None,
            input_tokens: None,
            output_tokens: None,
            approval_id: call.approval_id.as_deref(),
        }
    }
}

#[async_trait]
impl Hook for AuditHook {
    fn name(&self) -> &str {
        "audit"
    }

    fn priority(&self) -> i32 {
        1000
    }

    async fn abort_tool(&self, call: &ToolCall, outcome: &HookResult) {
        let (kind, detail) = match outcome {
            HookResult::NeedsApproval { request_id } => (
                "tool.needs_approval",
                CallDetail {
                    request_id: Some(request_id),
                    ..CallDetail::of(call, "needs_approval")
                },
            ),
            HookResult::Block { reason } => (
                "tool.blocked",
                CallDetail {
                    reason: Some(reason),
                    ..CallDetail::of(call, "blocked")
                },
            ),
            HookResult::Continue => return,
        };
        if let Err(error) = self.write(call, kind, &detail) {
            tracing::error!(call = %call.id(), error = %Report::new(&error), "could not audit a blocked call");
        }
    }

    async fn after_tool(
        &self,
        call: &ToolCall,
        output: &mut ToolOutput,
    ) -> Result<HookResult, HookError> {
        let usage = output.usage.unwrap_or_default();
        let detail = CallDetail {
            is_error: Some(output.is_error),
            cost_sats: Some(output.cost_sats.unwrap_or(0)),
            input_tokens: Some(usage.input_tokens),
            output_tokens: Some(usage.output_tokens),
            ..CallDetail::of(call, "allowed")
        };
        self.write(call, "tool.completed", &detail)?;
        Ok(HookResult::Continue)
    }
}
