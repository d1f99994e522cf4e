//! Admission: whether a call may go ahead, and what it holds when it does. Route the agent,
//! estimate the call at the dearest backend it may fall back to, reserve that against its
//! budgets, then ask for (or use) an approval where its autonomy requires one.

use ao_approvals::{ApprovalError, ApprovalStatus, SolverAgentCoordinator};
use ao_routing::BackendConfig;
use ao_routing::http::ChatRequest;
use ao_types::{TokenUsage, utc_day_start};

use crate::error::OrchestratorError;
use crate::orchestrator::{CallOptions, Orchestrator};
use crate::settlement::ReservationGuard;

/// The approval action a chat completion is filed under.
pub(crate) const COMPLETION_ACTION: &str = "chat.completion";

/// What admission produced: the reservation, the chain to try, and the request as it will be
/// sent.
pub(crate) struct Admitted {
    pub(crate) guard: ReservationGuard,
    pub(crate) chain: Vec<BackendConfig>,
    pub(crate) request: ChatRequest,
}

impl Orchestrator {
    /// Admits `request` for `agent`, or says why not. Nothing has reached a backend either way.
    pub(crate) async fn admit(
        &self,
        agent: &str,
        request: &ChatRequest,
        options: &CallOptions,
    ) -> Result<Admitted, OrchestratorError> {
        let inner = self.inner();
        let coordinator =
            inner
                .agents
                .get(agent)
                .ok_or_else(|| OrchestratorError::UnknownAgent {
                    agent: agent.to_owned(),
                })?;
        let chain = self.live_chain(agent)?;
        let (request, estimate) = self.capped(request);
        // Priced at the dearest backend the call may fall back to.
        let estimate_sats = chain
            .iter()
            .map(|b| b.calculate_cost(estimate.input_tokens, estimate.output_tokens))
            .max()
            .ok_or_else(|| OrchestratorError::NoLiveBackend {
                agent: agent.to_owned(),
            })?;
        let now = inner.clock.now()?;
        let session = options.session_start.unwrap_or_else(|| utc_day_start(now));
        let id =
            inner
                .tracker
                .reserve_with_tokens(agent, session, estimate_sats, estimate.total())?;
        let mut guard =
            ReservationGuard::new(self.clone(), agent, id, estimate, estimate_sats, now);
        guard.set_approval(self.approve(coordinator, estimate_sats, options).await?);
        Ok(Admitted {
            guard,
            chain,
            request,
        })
    }

    /// The agent's fallback chain, limited to backends with a live client.
    fn live_chain(&self, agent: &str) -> Result<Vec<BackendConfig>, OrchestratorError> {
        let inner = self.inner();
        let chain: Vec<BackendConfig> = inner
            .router
            .fallback_chain(agent)
            .into_iter()
            .filter(|b| inner.pool.get(b.provider).is_some())
            .cloned()
            .collect();
        if chain.is_empty() {
            inner.router.route(agent)?;
            return Err(OrchestratorError::NoLiveBackend {
                agent: agent.to_owned(),
            });
        }
        Ok(chain)
    }

    /// The request as it will be sent, and its estimate. Its output is capped at what the
    /// estimate assumes, so it cannot cost more than was reserved (and approved) by asking for
    /// no limit.
    fn capped(&self, request: &ChatRequest) -> (ChatRequest, TokenUsage) {
        let mut request = request.clone();
        let output_limit = request
            .output_limit()
            .unwrap_or(self.inner().default_max_tokens);
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
        (request, estimate)
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
            use_approval(coordinator, id, estimate_sats)?;
            return Ok(Some(id.clone()));
        }
        let description = format!(
            "chat completion by agent `{}`, estimated at {estimate_sats} sats",
            coordinator.identity().name
        );
        let request_id = coordinator
            .try_request_approval(COMPLETION_ACTION, &description, estimate_sats)
            .map_err(|(_, e)| OrchestratorError::Approval(e))?;
        let wait = self.inner().approval_wait;
        if wait.is_zero() {
            return Err(OrchestratorError::NeedsApproval { request_id });
        }
        match coordinator.wait_for_decision(&request_id, wait).await {
            Ok(ApprovalStatus::Approved) => {
                use_approval(coordinator, &request_id, estimate_sats)?;
                Ok(Some(request_id))
            }
            Ok(status) => Err(OrchestratorError::NotApproved {
                request_id,
                reason: format!("it was {status}"),
                status: Some(status),
            }),
            Err(ApprovalError::Timeout { .. }) => {
                Err(OrchestratorError::NeedsApproval { request_id })
            }
            Err(e) => Err(OrchestratorError::Approval(e)),
        }
    }
}

/// Uses approval `id` for one completion estimated at `estimate_sats`; the use is stored with the
/// request, so it allows one call, across restarts too.
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
