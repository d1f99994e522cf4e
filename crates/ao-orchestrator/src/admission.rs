//! Admission: whether a call may go ahead, and what it holds when it does. Route the agent,
//! estimate the call at the dearest backend it may fall back to, reserve that against its
//! budgets, then ask for (or use) an approval where its autonomy requires one.

use std::collections::HashMap;

use ao_approvals::{ApprovalError, ApprovalStatus, SolverAgentCoordinator};
use ao_routing::http::{
    ChatMessage, ChatRequest, DEFAULT_IMAGE_TOKENS, DEFAULT_MAX_CHOICES, choices, estimate_input,
};
use ao_routing::{BackendConfig, BackendProvider};
use ao_types::{Report, TokenUsage, utc_day_start};
use sha2::{Digest, Sha256};

use crate::error::OrchestratorError;
use crate::orchestrator::{CallOptions, Orchestrator};
use crate::settlement::ReservationGuard;

/// The approval action a chat completion is filed under.
pub(crate) const COMPLETION_ACTION: &str = "chat.completion";

/// How requests are estimated and what they may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRules {
    /// The output tokens assumed for a request that sets no limit (the request sent is capped
    /// at it).
    pub default_max_tokens: u64,
    /// The most choices (`n`) a request may ask for; each is reserved.
    pub max_choices: u64,
    /// The tokens one image costs on each backend; [`DEFAULT_IMAGE_TOKENS`] where unset.
    pub image_tokens: HashMap<BackendProvider, u64>,
}

impl Default for RequestRules {
    fn default() -> Self {
        Self {
            default_max_tokens: 1_024,
            max_choices: DEFAULT_MAX_CHOICES,
            image_tokens: HashMap::new(),
        }
    }
}

impl RequestRules {
    fn image_tokens(&self, provider: BackendProvider) -> u64 {
        self.image_tokens
            .get(&provider)
            .copied()
            .unwrap_or(DEFAULT_IMAGE_TOKENS)
    }
}

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
        let (request, estimates) = self.capped(request, &chain)?;
        // Priced at the dearest backend the call may fall back to, and held in tokens at the
        // largest count.
        let (estimate, estimate_sats) = estimates
            .iter()
            .zip(&chain)
            .map(|(usage, b)| {
                // A backend billed per call (a DVM's bid) reserves at least its bid.
                let bid = inner
                    .pool
                    .get(b.provider)
                    .and_then(|client| client.bid_sats())
                    .unwrap_or(0);
                (
                    *usage,
                    b.calculate_cost(usage.input_tokens, usage.output_tokens)
                        .max(bid),
                )
            })
            .max_by_key(|(usage, sats)| (*sats, usage.total()))
            .ok_or_else(|| OrchestratorError::NoLiveBackend {
                agent: agent.to_owned(),
            })?;
        let now = inner.clock.now()?;
        let session = options.session_start.unwrap_or_else(|| utc_day_start(now));
        // Rate limits first: a call refused by them reserves nothing.
        let permit = inner
            .rates
            .admit(agent, estimate.total(), now)
            .map_err(OrchestratorError::RateLimited)?;
        let first =
            chain
                .first()
                .map(|b| b.provider)
                .ok_or_else(|| OrchestratorError::NoLiveBackend {
                    agent: agent.to_owned(),
                })?;
        let id = inner
            .budgets
            .reserve(agent, session, estimate_sats, estimate, first, now)
            .await?;
        let mut guard = ReservationGuard::new(
            self.clone(),
            agent,
            session,
            id,
            (estimate, estimate_sats),
            now,
        );
        guard.hold_rate_permit(permit);
        guard.set_approval(
            self.approve(coordinator, estimate_sats, &request, options)
                .await?,
        );
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

    /// The request as it will be sent, and its estimate on each backend of `chain`: an upper
    /// bound on what that backend can bill (see `ao_routing::http::estimate_input`). Its output
    /// is capped at what the estimate assumes, so it cannot cost more than was reserved (and
    /// approved) by asking for no limit; every choice (`n`) is counted.
    fn capped(
        &self,
        request: &ChatRequest,
        chain: &[BackendConfig],
    ) -> Result<(ChatRequest, Vec<TokenUsage>), OrchestratorError> {
        let rules = &self.inner().requests;
        let mut request = request.clone();
        let output_limit = request.output_limit().unwrap_or(rules.default_max_tokens);
        if request.max_completion_tokens.is_some() {
            request.max_completion_tokens = Some(output_limit);
        }
        if request.max_tokens.is_some() || request.max_completion_tokens.is_none() {
            request.max_tokens = Some(output_limit);
        }
        let output = output_limit.saturating_mul(choices(&request, rules.max_choices)?);
        let input = estimate_input(&request)?;
        let estimates = chain
            .iter()
            .map(|b| TokenUsage::new(input.tokens(rules.image_tokens(b.provider)), output))
            .collect();
        Ok((request, estimates))
    }

    /// Decides whether the call may go ahead without, with a presented, or with a new approval.
    async fn approve(
        &self,
        coordinator: &SolverAgentCoordinator,
        estimate_sats: u64,
        request: &ChatRequest,
        options: &CallOptions,
    ) -> Result<Option<String>, OrchestratorError> {
        if !coordinator.requires_approval(COMPLETION_ACTION, estimate_sats) {
            return Ok(None);
        }
        // Hashed only when an approval is involved: most calls never need it.
        let request_hash = &request_hash(request);
        if let Some(id) = &options.approval_id {
            use_approval(coordinator, id, estimate_sats, request_hash)?;
            return Ok(Some(id.clone()));
        }
        let description = format!(
            "chat completion by agent `{}`, estimated at {estimate_sats} sats: {}",
            coordinator.identity().name,
            summary(request)
        );
        let request_id = coordinator
            .try_request_approval_for(COMPLETION_ACTION, &description, estimate_sats, request_hash)
            .map_err(OrchestratorError::Approval)?;
        let wait = self.inner().approval_wait;
        if wait.is_zero() {
            return Err(OrchestratorError::NeedsApproval { request_id });
        }
        match coordinator.wait_for_decision(&request_id, wait).await {
            Ok(ApprovalStatus::Approved) => {
                use_approval(coordinator, &request_id, estimate_sats, request_hash)?;
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
    request_hash: &str,
) -> Result<(), OrchestratorError> {
    coordinator
        .consume_for(id, COMPLETION_ACTION, estimate_sats, Some(request_hash))
        .map_err(|error| {
            let status = match &error {
                ApprovalError::Mismatch { .. } => {
                    return OrchestratorError::ApprovalMismatch {
                        request_id: id.to_owned(),
                    };
                }
                ApprovalError::Lapsed { .. } => Some(ApprovalStatus::Approved),
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
                reason: Report::new(&error).to_string(),
                status,
            }
        })
}

/// The hash an approval is bound to: SHA-256 of the request as it will be sent (model, messages,
/// tools, the capped output limit, `n`, every other field), in a canonical form with object keys
/// sorted; whether it streams does not count.
pub(crate) fn request_hash(request: &ChatRequest) -> String {
    let mut value = serde_json::to_value(request).unwrap_or(serde_json::Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.remove("stream");
        map.remove("stream_options");
    }
    let mut canonical = String::new();
    canonical_json(&value, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// `value` as JSON with every object's keys in sorted order.
fn canonical_json(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The most characters of the agent's last message an approval's description quotes.
const QUOTED_CHARS: usize = 200;

/// What an operator needs to decide on a completion: its model, its size and the start of the
/// agent's last message, quoted with control characters removed (the description is shown in
/// terminals and in the console, always as text).
pub(crate) fn summary(request: &ChatRequest) -> String {
    let last = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .or(request.messages.last())
        .map(ChatMessage::text)
        .unwrap_or_default();
    let words: Vec<&str> = last.split_whitespace().collect();
    let flat = words.join(" ");
    let mut quoted: String = flat
        .chars()
        .filter(|c| !c.is_control())
        .take(QUOTED_CHARS)
        .collect();
    if flat.chars().filter(|c| !c.is_control()).count() > QUOTED_CHARS {
        quoted.push('…');
    }
    let limit = request
        .output_limit()
        .map_or_else(|| "the default".to_owned(), |n| n.to_string());
    format!(
        "model `{}`, {} message(s), at most {limit} output tokens; last message: \"{quoted}\"",
        request
            .model
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect::<String>(),
        request.messages.len(),
    )
}
